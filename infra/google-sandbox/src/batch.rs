//! `POST /batch/calendar/v3`: Google's multipart/mixed batch format. Each part is an HTTP
//! request dispatched through the full router (so auth, faults and the request log apply per
//! part); answers come back as `application/http` parts with `Content-ID: <response-…>`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tower::ServiceExt;

use crate::errors::{ApiError, Surface};
use crate::Sandbox;

const MAX_PARTS: usize = 1000;

pub fn routes() -> Router<Sandbox> {
    Router::new().route("/batch/calendar/v3", post(batch))
}

/// One parsed part.
#[derive(Debug)]
pub struct Part {
    pub content_id: Option<String>,
    pub method: Method,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn bad(message: &str) -> ApiError {
    ApiError::new(
        Surface::Calendar,
        StatusCode::BAD_REQUEST,
        "badRequest",
        message,
    )
}

fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/mixed")
    {
        return None;
    }
    ct.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits `text` at the first blank line (CRLF or LF).
fn split_head(text: &str) -> (&str, &str) {
    let crlf = text.find("\r\n\r\n").map(|i| (i, 4));
    let lf = text.find("\n\n").map(|i| (i, 2));
    let cut = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match cut {
        Some((i, n)) => (&text[..i], &text[i + n..]),
        None => (text, ""),
    }
}

fn header_lines(head: &str) -> Vec<(String, String)> {
    head.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Parses a multipart/mixed batch body.
pub fn parse(body: &str, boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    for chunk in body.split(delim.as_str()).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.trim_start_matches(['\r', '\n']);
        if chunk.trim().is_empty() {
            continue;
        }
        let (outer_head, http) = split_head(chunk);
        let outer = header_lines(outer_head);
        let content_id = outer
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-id"))
            .map(|(_, v)| v.trim_start_matches('<').trim_end_matches('>').to_string());
        let http = http.trim_start_matches(['\r', '\n']);
        let (req_head, req_body) = split_head(http);
        let mut lines = req_head.lines();
        let request_line = lines.next().ok_or("empty part")?;
        let mut words = request_line.split_whitespace();
        let method = words
            .next()
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .ok_or("invalid request line")?;
        let target = words.next().ok_or("invalid request line")?.to_string();
        let headers = header_lines(&lines.collect::<Vec<_>>().join("\n"));
        let body = req_body.trim_end_matches(['\r', '\n']).as_bytes().to_vec();
        parts.push(Part {
            content_id,
            method,
            target,
            headers,
            body,
        });
    }
    Ok(parts)
}

/// Path and query of a part's target (absolute Google URLs are accepted).
fn local_target(target: &str) -> String {
    if let Some(rest) = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))
    {
        return match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        };
    }
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{target}")
    }
}

async fn dispatch(router: Router, part: Part, auth: Option<HeaderValue>) -> Response {
    let target = local_target(&part.target);
    if target.starts_with("/batch") {
        return bad("Nested batch requests are not allowed.").into_response();
    }
    let mut builder = Request::builder().method(part.method).uri(target);
    let mut has_auth = false;
    for (k, v) in &part.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            if name == header::AUTHORIZATION {
                has_auth = true;
            }
            if name == header::CONTENT_LENGTH {
                continue;
            }
            builder = builder.header(name, value);
        }
    }
    if !has_auth {
        if let Some(a) = auth {
            builder = builder.header(header::AUTHORIZATION, a);
        }
    }
    let req = match builder.body(Body::from(part.body)) {
        Ok(r) => r,
        Err(_) => return bad("Invalid request in batch part.").into_response(),
    };
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

async fn batch(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(boundary) = boundary(&headers) else {
        return bad("Batch requests must be multipart/mixed with a boundary.").into_response();
    };
    let text = String::from_utf8_lossy(&body);
    let parts = match parse(&text, &boundary) {
        Ok(p) => p,
        Err(e) => return bad(&format!("Invalid batch part: {e}")).into_response(),
    };
    if parts.is_empty() {
        return bad("The batch request contains no parts.").into_response();
    }
    if parts.len() > MAX_PARTS {
        return bad("A batch request cannot contain more than 1000 requests.").into_response();
    }
    let auth = headers.get(header::AUTHORIZATION).cloned();
    let router = sandbox.router();
    let out_boundary = format!("batch_{}", crate::ids::token(12));
    let mut out = String::new();
    for part in parts {
        let id = part.content_id.clone();
        let resp = dispatch(router.clone(), part, auth.clone()).await;
        let status = resp.status();
        let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
        let etag = resp.headers().get(header::ETAG).cloned();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        out.push_str(&format!(
            "--{out_boundary}\r\nContent-Type: application/http\r\n"
        ));
        if let Some(id) = id {
            out.push_str(&format!("Content-ID: <response-{id}>\r\n"));
        }
        out.push_str(&format!(
            "\r\nHTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ));
        if let Some(ct) = ct.as_ref().and_then(|v| v.to_str().ok()) {
            out.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if let Some(etag) = etag.as_ref().and_then(|v| v.to_str().ok()) {
            out.push_str(&format!("ETag: {etag}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
        out.push_str(&String::from_utf8_lossy(&bytes));
        out.push_str("\r\n");
    }
    out.push_str(&format!("--{out_boundary}--\r\n"));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("multipart/mixed; boundary={out_boundary}"),
        )],
        out,
    )
        .into_response()
}
