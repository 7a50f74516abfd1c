//! The HTTP side of the CLI: one call = one request under `/api/v1`, authorised by the API
//! key (or, only while logging in, the session cookie). [`Client::get`], [`Client::post`] and
//! their siblings send `api` request types and decode the 2xx answer into `api` types; any
//! other answer becomes an [`Error::Problem`] carrying the server's own sentence.

use super::{Error, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// How a request proves who sends it.
#[derive(Clone)]
pub enum Auth {
    /// No credentials (logging in).
    None,
    /// An API key, sent as `Authorization: Bearer`.
    Key(String),
    /// The `berth_session` cookie value, used by `berth login` to create the key.
    Cookie(String),
}

/// A berth server at one base URL with one set of credentials.
pub struct Client {
    http: reqwest::Client,
    /// For bodies that may take long either way (uploads, downloads): no overall timeout.
    streaming: reqwest::Client,
    base: String,
    auth: Auth,
}

/// A successful answer, read whole.
pub struct Answer {
    /// The answer's headers.
    pub headers: reqwest::header::HeaderMap,
    /// The answer's body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as `T`; an empty body (204) decodes as JSON `null`, so as `()`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            Error::Other(format!(
                "the server's answer is not what this berth expects ({e}): {}",
                super::table::truncate(&self.text(), 200)
            ))
        })
    }
}

/// What stays as it is in a path segment: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'~')
    .remove(b'.');

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters, and
/// dots too when the segment is only dots, so it never means `.` or `..`).
pub fn segment(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b'.') {
        return "%2E".repeat(s.len());
    }
    utf8_percent_encode(s, UNRESERVED).to_string()
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
    /// A client for the server at `base` (no trailing slash needed).
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

    /// The server's base URL, without a trailing slash.
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

    /// Sends one request with an optional JSON body and reads the answer whole; a non-2xx
    /// answer becomes the server's problem.
    pub async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Answer> {
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

    /// `method path` with an optional body, the answer decoded as `T`.
    pub async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        self.call(method, path, body).await?.json()
    }

    /// `GET path`, the answer decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(Method::GET, path, None::<&()>).await
    }

    /// `POST path` with `body`, the answer decoded as `T` (`()` for none).
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `POST path` with an empty object `{}` (actions that take no input), the answer
    /// decoded as `T`.
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        /// Serializes as `{}`.
        #[derive(Serialize)]
        struct Empty {}
        self.post(path, &Empty {}).await
    }

    /// `PUT path` with `body`, the answer decoded as `T`.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// `PATCH path` with `body`, the answer decoded as `T`.
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`, the answer decoded as `T` (`()` for none).
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(Method::DELETE, path, None::<&()>).await
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
        assert_eq!(api_path(&["x", "a.b~c_d-e"]), "/api/v1/x/a.b~c_d-e");
        assert_eq!(api_path(&["x", "."]), "/api/v1/x/%2E");
    }
}
