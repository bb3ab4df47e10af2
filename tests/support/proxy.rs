//! A TCP proxy in front of PostgreSQL that a test can cut and restore: a database outage on demand,
//! without touching the server other tests use.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct Proxy {
    pub port: u16,
    upstream: SocketAddr,
    tasks: Option<JoinSet<()>>,
}

impl Proxy {
    /// Listens on a free port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let mut proxy = Self {
            port: super::python::free_port(),
            upstream,
            tasks: None,
        };
        proxy.restore().await;
        proxy
    }

    /// Closes the listener and every forwarded connection.
    pub fn cut(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
        }
    }

    /// Listens again on the same port. (An aborted task drops its listener when the runtime next
    /// gets to it, so right after a cut the port may still be held for a moment.)
    pub async fn restore(&mut self) {
        self.cut();
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 200 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(error) => panic!("bind the proxy port {}: {error}", self.port),
            }
        };
        let upstream = self.upstream;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }
}

/// `postgres://user@host:port/db` with host and port replaced by the proxy's.
pub fn through_proxy(url: &str, port: u16) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("a PostgreSQL URL");
    parsed.set_host(Some("127.0.0.1")).expect("set host");
    parsed.set_port(Some(port)).expect("set port");
    parsed.to_string()
}

/// The socket address of a PostgreSQL URL.
pub fn address_of(url: &str) -> SocketAddr {
    let parsed = reqwest::Url::parse(url).expect("a PostgreSQL URL");
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", parsed.port().unwrap_or(5432))
        .parse()
        .expect("an IP address in the PostgreSQL URL")
}
