//! Calendar's batch endpoint (`POST {calendar_base}/batch/calendar/v3`, `multipart/mixed`):
//! many Calendar requests in one HTTP request, at most [`MAX_PARTS`] parts each (Google's
//! advice), so N requests cost ⌈N/50⌉ HTTP requests.
//!
//! Wire format (Google, "Sending batch requests"): each part is `Content-Type:
//! application/http` with `Content-ID: <item-N>` and holds one HTTP request
//! (`METHOD /calendar/v3/… HTTP/1.1`, headers, JSON body); the outer `Authorization` applies
//! to every part. The answer is `multipart/mixed` with one `application/http` part per
//! request, `Content-ID: <response-item-N>`, holding an HTTP response. Parts are matched by
//! Content-ID, not by position.
//!
//! A failure of the whole HTTP request goes through the retry policy; per-part errors are
//! handed back untouched (the caller decides, e.g. 409 on a retried insert is success).

use super::api::classify_status;
use super::calendar::CalendarRequest;
use super::retry::{with_retry, RetryPolicy};
use super::{Google, GoogleError};
use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Parts per HTTP request (Google recommends at most 50; it accepts up to 1000).
pub const MAX_PARTS: usize = 50;

/// One request of a batch (the same value can be sent alone).
pub type BatchRequest = CalendarRequest;

/// One part of a batch answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResponse {
    pub status: u16,
    /// The part's HTTP headers as sent (names as written; look up with [`Self::header`]).
    pub headers: Vec<(String, String)>,
    /// The part's JSON body; `Null` when empty (e.g. 204), a string when not JSON.
    pub body: Value,
}

impl BatchResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The part's error, sorted like any Google answer; `None` on success.
    pub fn error(&self) -> Option<GoogleError> {
        if self.is_success() {
            return None;
        }
        let bytes = serde_json::to_vec(&self.body).unwrap_or_default();
        Some(classify_status(self.status, &bytes))
    }

    /// The part's body as `T`, or its error.
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, GoogleError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let status = self.status;
        serde_json::from_value(self.body).map_err(|e| GoogleError::Rejected {
            status,
            reason: format!("unexpected answer: {e}"),
        })
    }
}

impl Google {
    /// Sends `requests` through the batch endpoint, at most [`MAX_PARTS`] per HTTP request
    /// (sequentially), and returns one answer per request, in request order. `Err` only when
    /// a whole HTTP request fails after retries; earlier chunks may then have been applied
    /// (make the requests idempotent: client-chosen ids, `If-Match`).
    pub async fn batch(
        &self,
        token: &SecretString,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GoogleError> {
        let url = format!("{}/batch/calendar/v3", self.endpoints.calendar_base);
        let policy = RetryPolicy::current();
        let mut out = Vec::with_capacity(requests.len());
        for (n, chunk) in requests.chunks(MAX_PARTS).enumerate() {
            let first = n * MAX_PARTS;
            let (boundary, body) = encode(chunk, first)?;
            let content_type = format!("multipart/mixed; boundary={boundary}");
            let answer = with_retry(&policy, || {
                self.send_weighted(
                    chunk.len() as u32,
                    token,
                    Method::POST,
                    &url,
                    &[],
                    Some((content_type.as_str(), body.as_slice())),
                )
            })
            .await?;
            let malformed = |what: &str| GoogleError::Rejected {
                status: answer.status,
                reason: format!("malformed batch answer: {what}"),
            };
            let answer_boundary = answer
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(boundary_of)
                .ok_or_else(|| malformed("no multipart boundary"))?;
            let parts = decode(&answer.body, &answer_boundary).map_err(|e| malformed(&e))?;
            out.extend(match_parts(parts, first, chunk.len()));
        }
        Ok(out)
    }
}

fn content_id(index: usize) -> String {
    format!("item-{index}")
}

fn new_boundary() -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("batch_{tail}")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

/// Encodes `requests` as one multipart/mixed body; parts are numbered from `first`.
/// Returns the boundary and the body.
pub fn encode(requests: &[BatchRequest], first: usize) -> Result<(String, Vec<u8>), GoogleError> {
    let invalid = |what: &str| GoogleError::Rejected {
        status: 0,
        reason: format!("invalid batch part: {what}"),
    };
    let mut parts = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        if !r.target.starts_with('/') || r.target.contains(char::is_whitespace) {
            return Err(invalid("target must be an absolute path"));
        }
        let mut head = format!("{} {} HTTP/1.1\r\n", r.method, r.target);
        if let Some(etag) = &r.if_match {
            if has_line_break(etag) {
                return Err(invalid("If-Match contains a line break"));
            }
            head.push_str(&format!("If-Match: {etag}\r\n"));
        }
        let body = match &r.body {
            Some(v) => serde_json::to_vec(v).map_err(|e| invalid(&e.to_string()))?,
            None => Vec::new(),
        };
        if r.body.is_some() {
            head.push_str("Content-Type: application/json; charset=UTF-8\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        parts.push((content_id(first + i), head, body));
    }
    let mut boundary = new_boundary();
    for _ in 0..8 {
        let clash = parts.iter().any(|(_, h, b)| {
            contains(h.as_bytes(), boundary.as_bytes()) || contains(b, boundary.as_bytes())
        });
        if !clash {
            break;
        }
        boundary = new_boundary();
    }
    let mut out = Vec::new();
    for (id, head, body) in &parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{id}>\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((boundary, out))
}

/// The `boundary` parameter of a `multipart/mixed` Content-Type (quoted or not).
pub fn boundary_of(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty()).then(|| v.to_owned())
    })
}

/// One decoded part of a batch answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerPart {
    /// Without the angle brackets, e.g. `response-item-3`.
    pub content_id: Option<String>,
    pub response: BatchResponse,
}

/// Splits at the first blank line (CRLF CRLF or LF LF, whichever comes first).
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) if b < a => (&bytes[..b], &bytes[b + 2..]),
        (Some(a), _) => (&bytes[..a], &bytes[a + 4..]),
        (None, Some(b)) => (&bytes[..b], &bytes[b + 2..]),
        (None, None) => (bytes, &[]),
    }
}

fn lines(head: &[u8]) -> impl Iterator<Item = String> + '_ {
    head.split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
}

fn header_pairs(lines: impl Iterator<Item = String>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn trim_line_breaks(mut b: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = b {
        b = rest;
    }
    b
}

fn decode_part(part: &[u8]) -> Result<AnswerPart, String> {
    let (outer_head, http) = split_head(part);
    let outer = header_pairs(lines(outer_head));
    let content_id = find_header(&outer, "content-id")
        .map(|v| v.trim_start_matches('<').trim_end_matches('>').to_owned());
    let (inner_head, rest) = split_head(trim_line_breaks(http));
    let mut inner_lines = lines(inner_head);
    let status_line = inner_lines.next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code
            .parse::<u16>()
            .map_err(|_| format!("bad status line {status_line:?}"))?,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let headers = header_pairs(inner_lines);
    let body = match find_header(&headers, "content-length").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if n <= rest.len() => &rest[..n],
        _ => rest,
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    Ok(AnswerPart {
        content_id,
        response: BatchResponse {
            status,
            headers,
            body,
        },
    })
}

/// Decodes a multipart/mixed batch answer. Delimiters count only at the start of a line;
/// the closing delimiter must be present (a truncated answer is an error).
pub fn decode(body: &[u8], boundary: &str) -> Result<Vec<AnswerPart>, String> {
    let delim = format!("--{boundary}").into_bytes();
    let starts: Vec<usize> = (0..body.len())
        .filter(|&p| (p == 0 || body[p - 1] == b'\n') && body[p..].starts_with(&delim))
        .collect();
    let mut parts = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let after = &body[start + delim.len()..];
        if after.starts_with(b"--") {
            return Ok(parts);
        }
        let end = starts.get(k + 1).copied().ok_or("no closing delimiter")?;
        let mut part = &body[start + delim.len()..end];
        // The rest of the delimiter line (transport padding) and the line break that belongs
        // to the next delimiter are not content.
        part = match part.iter().position(|&b| b == b'\n') {
            Some(i) => &part[i + 1..],
            None => &[],
        };
        part = part.strip_suffix(b"\n").unwrap_or(part);
        part = part.strip_suffix(b"\r").unwrap_or(part);
        parts.push(decode_part(part)?);
    }
    Err("no closing delimiter".into())
}

/// Orders answer parts as the requests `first..first + len`; a request without an answer
/// gets a synthetic 500 (transient) so the caller retries it.
fn match_parts(parts: Vec<AnswerPart>, first: usize, len: usize) -> Vec<BatchResponse> {
    let mut slots: Vec<Option<BatchResponse>> = vec![None; len];
    for (position, part) in parts.into_iter().enumerate() {
        let index = match &part.content_id {
            Some(id) => id
                .strip_prefix("response-")
                .and_then(|id| id.strip_prefix("item-"))
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(first)),
            None => Some(position),
        };
        if let Some(slot) = index.and_then(|i| slots.get_mut(i)) {
            if slot.is_none() {
                *slot = Some(part.response);
            }
        }
    }
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| BatchResponse {
                status: 500,
                headers: Vec::new(),
                body: json!({"error": {"code": 500, "message": "No answer for this part in the batch response.",
                    "errors": [{"reason": "backendError", "message": "missing batch part"}]}}),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::calendar::{Event, SendUpdates};

    #[test]
    fn encodes_google_batch_parts() {
        let event = Event {
            id: "abc12345".into(),
            summary: Some("x".into()),
            ..Default::default()
        };
        let requests = vec![
            BatchRequest::insert_event("me@x.com", &event, SendUpdates::None).unwrap(),
            BatchRequest::delete_event("me@x.com", "abc12345", Some("\"e1\""), SendUpdates::All),
        ];
        let (b, body) = encode(&requests, 50).unwrap();
        assert!(b.starts_with("batch_") && b.len() == 38);
        let text = String::from_utf8(body).unwrap();
        let expected = format!(
            "--{b}\r\nContent-Type: application/http\r\nContent-ID: <item-50>\r\n\r\n\
             POST /calendar/v3/calendars/me%40x.com/events?sendUpdates=none HTTP/1.1\r\n\
             Content-Type: application/json; charset=UTF-8\r\nContent-Length: 31\r\n\r\n\
             {{\"id\":\"abc12345\",\"summary\":\"x\"}}\r\n\
             --{b}\r\nContent-Type: application/http\r\nContent-ID: <item-51>\r\n\r\n\
             DELETE /calendar/v3/calendars/me%40x.com/events/abc12345?sendUpdates=all HTTP/1.1\r\n\
             If-Match: \"e1\"\r\n\r\n\r\n\
             --{b}--\r\n"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn refuses_header_injection() {
        let mut r = BatchRequest::get_event("c", "e");
        r.if_match = Some("\"x\"\r\nX-Evil: 1".into());
        assert!(encode(&[r], 0).is_err());
    }

    #[test]
    fn reads_boundaries() {
        assert_eq!(
            boundary_of("multipart/mixed; boundary=batch_abc").as_deref(),
            Some("batch_abc")
        );
        assert_eq!(
            boundary_of("Multipart/Mixed;charset=utf-8; BOUNDARY=\"b=1\"").as_deref(),
            Some("b=1")
        );
        assert_eq!(boundary_of("application/json"), None);
        assert_eq!(boundary_of("multipart/mixed"), None);
    }

    #[test]
    fn decodes_and_matches_by_content_id() {
        let answer = "--batch_Z\r\n\
            Content-Type: application/http\r\n\
            Content-ID: <response-item-1>\r\n\r\n\
            HTTP/1.1 409 Conflict\r\n\
            content-type: application/json; charset=UTF-8\r\n\r\n\
            {\"error\":{\"code\":409,\"errors\":[{\"reason\":\"duplicate\"}]}}\r\n\
            --batch_Z\r\n\
            content-type: application/http\r\n\
            content-id: <response-item-0>\r\n\r\n\
            HTTP/1.1 200 OK\r\n\
            ETag: \"123\"\r\n\
            Content-Length: 11\r\n\r\n\
            {\"id\":\"ab\"}trailing\r\n\
            --batch_Z\n\
            Content-Type: application/http\n\
            Content-ID: <response-item-3>\n\n\
            HTTP/1.1 204 No Content\n\n\n\
            --batch_Z--\r\n";
        let parts = decode(answer.as_bytes(), "batch_Z").unwrap();
        assert_eq!(parts.len(), 3);
        let matched = match_parts(parts, 0, 4);
        assert_eq!(matched[0].status, 200);
        assert_eq!(matched[0].header("etag"), Some("\"123\""));
        assert_eq!(matched[0].body, json!({"id": "ab"}));
        assert!(
            matches!(matched[1].error(), Some(GoogleError::Conflict(ref r)) if r == "duplicate")
        );
        assert!(
            matches!(matched[2].error(), Some(GoogleError::Transient(_))),
            "missing part"
        );
        assert_eq!(matched[3].status, 204);
        assert_eq!(matched[3].body, Value::Null);
        assert!(matched[3].error().is_none());
    }

    #[test]
    fn a_truncated_answer_is_an_error() {
        let answer = "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{}\r\n";
        assert!(decode(answer.as_bytes(), "b").is_err());
        let bad = "--b\r\nContent-Type: application/http\r\n\r\ngarbage\r\n--b--";
        assert!(decode(bad.as_bytes(), "b").is_err());
        assert_eq!(decode(b"preamble\r\n--b--\r\n", "b").unwrap(), vec![]);
    }

    #[test]
    fn matches_by_offset_of_the_chunk() {
        let part = |id: &str| AnswerPart {
            content_id: Some(id.into()),
            response: BatchResponse {
                status: 200,
                headers: vec![],
                body: json!({"id": id}),
            },
        };
        let got = match_parts(
            vec![
                part("response-item-51"),
                part("response-item-50"),
                part("response-item-7"),
            ],
            50,
            2,
        );
        assert_eq!(got[0].body["id"], "response-item-50");
        assert_eq!(got[1].body["id"], "response-item-51");
    }
}
