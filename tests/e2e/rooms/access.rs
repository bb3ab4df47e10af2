//! Who may declare what: a tenant's token reaches only its own tenant, and bad input is refused
//! with an error naming the field.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::user;
use crate::environment::{fresh_config, port_turn, ready_daemon_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_reaches_only_its_own_tenant_and_bad_input_names_the_field() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let (a, b) = (
        daemon.config.tenant_token("tenantA"),
        daemon.config.tenant_token("ciTenantB"),
    );
    let room = json!({"name": "Secret Chat", "visibility": "private"});
    let path = "/v1/tenants/tenantA/rooms/event/secret";
    let (status, answer) = daemon
        .platform(Method::PUT, path, Some(&a), Some(room.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job_id = answer["job"]["id"].as_i64().unwrap();

    /// A request that must be refused, and how.
    struct Refused<'a> {
        method: Method,
        path: String,
        token: Option<&'a str>,
        body: Option<Value>,
        status: StatusCode,
        code: &'a str,
    }
    let refused = |method, path: &str, token: Option<&'static str>, body, status, code| Refused {
        method,
        path: path.to_owned(),
        token,
        body,
        status,
        code,
    };
    let job_path = format!("/v1/jobs/{job_id}");
    let (a_token, b_token): (&'static str, &'static str) = (a.clone().leak(), b.clone().leak());
    let cases = [
        refused(
            Method::GET,
            path,
            Some(b_token),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        refused(
            Method::PUT,
            path,
            Some(b_token),
            Some(room.clone()),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        refused(
            Method::GET,
            &job_path,
            Some(b_token),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        refused(
            Method::GET,
            path,
            None,
            None,
            StatusCode::UNAUTHORIZED,
            "missing_token",
        ),
        refused(
            Method::GET,
            path,
            Some("not-a-token-of-anyone"),
            None,
            StatusCode::UNAUTHORIZED,
            "unknown_token",
        ),
        refused(
            Method::GET,
            "/v1/tenants/nosuch/rooms/event/secret",
            Some(a_token),
            None,
            StatusCode::NOT_FOUND,
            "unknown_tenant",
        ),
        refused(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/never-declared",
            Some(a_token),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for Refused {
        method,
        path,
        token,
        body,
        status,
        code,
    } in cases
    {
        let (got, answer) = daemon.platform(method.clone(), &path, token, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
        assert!(
            !answer["error"].as_str().unwrap().contains(&a),
            "a token was echoed"
        );
    }

    let invalid: Vec<(&str, Value, &str)> = vec![
        ("/v1/tenants/tenantA/rooms/meeting/x", room.clone(), "kind"),
        (
            "/v1/tenants/tenantA/rooms/event/bad%20slug",
            room.clone(),
            "slug",
        ),
        (path, json!({"visibility": "private"}), "name"),
        (
            path,
            json!({"name": "x", "visibility": "secret"}),
            "visibility",
        ),
        (
            path,
            json!({"name": "x", "visibility": "private", "members": [{"user_id": "@bob:elsewhere.org", "role": "host"}]}),
            "user_id",
        ),
        (
            "/v1/tenants/tenantA/rooms/group/g",
            json!({"name": "x", "visibility": "private", "members": [{"user_id": user("bob"), "role": "guest"}]}),
            "role",
        ),
        (
            path,
            json!({"name": "x", "visibility": "private", "members": [{"user_id": user("bob"), "role": "emperor"}]}),
            "role",
        ),
    ];
    for (path, body, field) in invalid {
        let (status, answer) = daemon
            .platform(Method::PUT, path, Some(&a), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{path} {body}: the error does not name {field}: {answer}"
        );
    }
    let _ = daemon.wait_for_job(job_id, &a).await;
}
