//! Which homeserver a report goes to (DESIGN §13): a managed room's own; for one passed through,
//! the homeserver whose `server_name` or URL host is the request's `Host`, else the default one.

use std::sync::Arc;

use crate::app::App;
use crate::matrix;

/// The client of homeserver `id` (a managed room's), or the default one's if the config no
/// longer has it.
pub fn of_room(app: &App, id: &str) -> Arc<matrix::Client> {
    match app.link(id) {
        Some(link) => link.client.clone(),
        None => app.homeserver(),
    }
}

/// The client of the homeserver the request was meant for, by its `Host` header.
pub fn for_host(app: &App, host: Option<&str>) -> Arc<matrix::Client> {
    let config = app.config();
    let host = host.map(|host| strip_port(host).to_ascii_lowercase());
    let chosen = host.and_then(|host| {
        config
            .homeservers()
            .find(|homeserver| {
                homeserver
                    .homeserver
                    .server_name
                    .as_str()
                    .eq_ignore_ascii_case(&host)
                    || homeserver
                        .homeserver
                        .url
                        .host_str()
                        .is_some_and(|url_host| url_host.eq_ignore_ascii_case(&host))
            })
            .map(|homeserver| homeserver.id.to_owned())
    });
    chosen
        .and_then(|id| app.link(&id))
        .map_or_else(|| app.homeserver(), |link| link.client.clone())
}

/// `host:port` → `host` (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn the_port_is_left_out() {
        assert_eq!(strip_port("matrix.example.org:8448"), "matrix.example.org");
        assert_eq!(strip_port("matrix.example.org"), "matrix.example.org");
        assert_eq!(strip_port("[::1]:8008"), "[::1]");
    }
}
