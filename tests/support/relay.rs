//! What the test proxies share (`hold_proxy`, `round_robin`): a request passed on as it came, and
//! the upstream's answer handed back as it came.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::matrix_client::http_client;

/// Sends the request to `upstream` (a base URL) with its method, path, query, headers and body.
pub async fn pass_on(
    upstream: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> reqwest::Result<reqwest::Response> {
    let target = format!(
        "{upstream}{}",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = http_client()
        .request(method.clone(), target)
        .body(body.to_vec());
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    request.send().await
}

/// An upstream's answer, read whole: its status, content type and body.
pub struct Answer {
    pub status: StatusCode,
    content_type: Option<axum::http::HeaderValue>,
    pub body: Bytes,
}

impl Answer {
    pub async fn read(answer: reqwest::Response) -> reqwest::Result<Self> {
        let status = answer.status();
        let content_type = answer.headers().get("content-type").cloned();
        Ok(Self {
            status,
            content_type,
            body: answer.bytes().await?,
        })
    }

    /// The answer as the proxy's own response.
    pub fn into_response(self) -> Response {
        let mut response = Response::builder().status(self.status);
        if let Some(content_type) = self.content_type {
            response = response.header("content-type", content_type);
        }
        response
            .body(Body::from(self.body))
            .expect("a valid response")
    }
}
