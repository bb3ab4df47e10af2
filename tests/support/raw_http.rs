//! HTTP over a bare TCP socket, for clients that give up: the request is written whole, the answer
//! is awaited for a moment, and then the connection is closed as `wrk` or a restarted proxy would.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `method path` with `body` to `127.0.0.1:port` and waits at most `patience` for the whole
/// answer. Returns its status when it came in time; `None` when the client gave up (the connection
/// is closed then, with the request possibly still being served).
pub async fn send_then_give_up(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
    patience: Duration,
) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(body).await.ok()?;
    let mut answer = Vec::new();
    match tokio::time::timeout(patience, stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => status_of(&answer),
        _ => None,
    }
}

/// The status code of an HTTP/1.1 answer (`HTTP/1.1 200 OK…`).
pub fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\r').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}
