//! What every report request carries besides its ids: the reporter's access token (the
//! `Authorization` header, or Synapse's older `?access_token=`), the `Host` and the body.

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri, header};

use crate::reports::Report;

/// The report, or `None` when the request carries no access token.
pub fn report(
    headers: &HeaderMap,
    uri: &Uri,
    room_id: String,
    event_id: Option<String>,
    body: Bytes,
) -> Option<Report> {
    let access_token = bearer(headers).or_else(|| query_token(uri))?;
    Some(Report {
        room_id,
        event_id,
        path: uri.path().to_owned(),
        access_token,
        host: headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    })
}

/// Whether the daemon itself forwarded this request (a loop through the proxy).
pub fn came_back(headers: &HeaderMap) -> bool {
    headers.contains_key(crate::reports::FORWARDED_HEADER)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    crate::api::bearer::token(headers).map(str::to_owned)
}

fn query_token(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_header_or_the_query_and_the_path_keeps_no_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer syt_abc".parse().unwrap());
        headers.insert(header::HOST, "matrix.example.org".parse().unwrap());
        let uri: Uri = "/_matrix/client/v3/rooms/!r/report?access_token=other"
            .parse()
            .unwrap();
        let report = report(&headers, &uri, "!r".into(), None, Bytes::new()).unwrap();
        assert_eq!(report.access_token, "syt_abc");
        assert_eq!(report.path, "/_matrix/client/v3/rooms/!r/report");
        assert_eq!(report.host.as_deref(), Some("matrix.example.org"));
        let queried = super::report(&HeaderMap::new(), &uri, "!r".into(), None, Bytes::new());
        assert_eq!(queried.unwrap().access_token, "other");
        let bare: Uri = "/_matrix/client/v3/rooms/!r/report".parse().unwrap();
        assert!(super::report(&HeaderMap::new(), &bare, "!r".into(), None, Bytes::new()).is_none());
    }
}
