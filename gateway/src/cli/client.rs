//! The HTTP side of the CLI: one call = one request under `/api/v1`, authorised by the API
//! key (or, only while logging in, the session cookie). A 2xx answer is returned whole; any
//! other becomes an [`Error::Problem`] carrying the server's own sentence.

use super::{Error, Result};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// How a request proves who sends it.
#[derive(Clone)]
pub enum Auth {
    None,
    Key(String),
    /// The `berth_session` cookie value, used by `berth login` to create the key.
    Cookie(String),
}

pub struct Client {
    http: reqwest::Client,
    /// For bodies that may take long either way (uploads, downloads): no overall timeout.
    streaming: reqwest::Client,
    base: String,
    auth: Auth,
}

/// A successful answer, read whole.
pub struct Answer {
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Other(format!(
                "the server's answer is not what this berth expects ({e}): {}",
                super::table::truncate(&self.text(), 200)
            ))
        })
    }

    pub fn value(&self) -> Result<Value> {
        self.json()
    }

    /// The body as the server sent it, indented (keys in the server's order).
    pub fn pretty(&self) -> Result<String> {
        self.value()?;
        Ok(super::table::pretty_json(&self.text()))
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters, and
/// dots too when the segment is only dots).
pub fn segment(s: &str) -> String {
    let only_dots = !s.is_empty() && s.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_~".contains(&b) || (b == b'.' && !only_dots);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/api/v1/` followed by the encoded segments.
pub fn api_path(segments: &[&str]) -> String {
    let mut p = String::from("/api/v1");
    for s in segments {
        p.push('/');
        p.push_str(&segment(s));
    }
    p
}

/// The chain of an error's causes in one line, the innermost last.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

impl Client {
    pub fn new(base: &str, auth: Auth) -> Result<Self> {
        // Pooled connections are dropped well before the server closes idle ones (its
        // header timeout), so a request never goes out on a connection being closed.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("cannot set up HTTP: {}", causes(&e))))?;
        let streaming = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("cannot set up HTTP: {}", causes(&e))))?;
        Ok(Self {
            http,
            streaming,
            base: base.trim_end_matches('/').to_string(),
            auth,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` on this server; a whole URL (a `Location` the server sent) as it is.
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Adds the credentials to a request.
    fn authorize(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        Ok(match &self.auth {
            Auth::None => req,
            Auth::Key(k) => {
                let v = HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                    Error::Other(
                        "The API key contains characters no HTTP header can carry; run `berth login URL` again.".into(),
                    )
                })?;
                req.header(AUTHORIZATION, v)
            }
            Auth::Cookie(c) => req.header(COOKIE, format!("berth_session={c}")),
        })
    }

    /// A request with the credentials on the streaming client (no overall timeout: the
    /// caller sets one per request, or bounds each read), for uploads and downloads. Send it
    /// with `.send()`; [`Client::unreachable`] and [`Client::refused`] turn the outcomes into
    /// sentences.
    pub fn request(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder> {
        self.authorize(self.streaming.request(method, self.url(path)))
    }

    /// A request that did not get an answer, as a sentence.
    pub fn unreachable(&self, e: &reqwest::Error) -> Error {
        Error::Other(format!("cannot reach {}: {}", self.base, causes(e)))
    }

    /// A non-2xx answer of [`Client::request`] as the server's sentence.
    pub async fn refused(&self, resp: reqwest::Response) -> Error {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default();
        self.problem(status, &headers, &body)
    }

    /// Sends one request; a non-2xx answer becomes the server's problem.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        let mut req = self.authorize(self.http.request(method, self.url(path)))?;
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Other(format!("cannot reach {}: {}", self.base, causes(&e))))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| {
                Error::Other(format!(
                    "the answer from {} broke off: {}",
                    self.base,
                    causes(&e)
                ))
            })?
            .to_vec();
        if status.is_success() {
            return Ok(Answer { headers, body });
        }
        Err(self.problem(status, &headers, &body))
    }

    /// A refusal as the server's sentence (its problem+json), else the status and body.
    pub fn problem(
        &self,
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Error {
        let is_json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let parsed = if is_json {
            serde_json::from_slice::<api::Problem>(body).ok()
        } else {
            None
        };
        match parsed {
            Some(problem) => {
                let hint = match (problem.status, &self.auth) {
                    (401, Auth::Key(_)) => {
                        Some("Log in again with `berth login URL`, or check BERTH_KEY.".to_string())
                    }
                    _ => None,
                };
                Error::Problem {
                    problem: Box::new(problem),
                    hint,
                }
            }
            None => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                Error::Other(if text.is_empty() {
                    format!("the server answered HTTP {status}.")
                } else {
                    format!(
                        "the server answered HTTP {status}: {}",
                        super::table::truncate(text, 300)
                    )
                })
            }
        }
    }

    pub async fn get(&self, path: &str) -> Result<Answer> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Answer> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Answer> {
        self.call(Method::DELETE, path, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            api_path(&["users", "alice.b", "policy"]),
            "/api/v1/users/alice.b/policy"
        );
        assert_eq!(
            api_path(&["sessions", "a b/c?d"]),
            "/api/v1/sessions/a%20b%2Fc%3Fd"
        );
        assert_eq!(api_path(&["sessions", ".."]), "/api/v1/sessions/%2E%2E");
        assert_eq!(api_path(&["x", "é"]), "/api/v1/x/%C3%A9");
    }
}
