//! App logins: the one-use link ([`AppProxy::issue`]), the `/__berth/auth` landing that
//! spends it and sets the app cookie, and the cookie check of every later request.
//!
//! - A token works once, for [`TOKEN_TTL`], for the app and session it was issued for, and
//!   only while the owner's access holds.
//! - The app cookie is host-only (no `Domain`), `HttpOnly`, `SameSite=Lax`, `Path=/`: it
//!   reaches this app's host and no sibling.
//! - `next` must be a path on the app's own origin ([`safe_next`]); a link with any other is
//!   refused before the token is spent, so the owner can still use a good copy.

use super::{hash, page, AppProxy, Grant};
use crate::revoke::Watch;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use cookie::{Cookie, SameSite};
use std::time::{Duration, Instant};

/// How long a one-use link works.
const TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long an app login lasts.
const COOKIE_TTL: Duration = Duration::from_secs(12 * 3600);

/// The value of cookie `name` in a request's `Cookie` headers (the gateway uses it too).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers, name).next().map(str::to_string)
}

/// Every value of cookie `name` in a request's `Cookie` headers, in the order sent.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |c| c.name_raw() == Some(name))
        .filter_map(|c| c.value_raw())
}

/// The raw (still percent-encoded) value of query parameter `name`. Split by hand on
/// purpose: `form_urlencoded` would read `+` as a space, and berth's `next` keeps a `+` as
/// it is.
fn raw_query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Percent-decodes `v` (no `+` for space: berth's links never encode one so); `None` when the
/// result is not UTF-8. Malformed escapes (`%zz`, a trailing `%4`) stay as they are.
fn percent_decode(v: &str) -> Option<String> {
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The decoded value of query parameter `name`.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    percent_decode(raw_query_param(uri, name)?)
}

/// Whether the login link's `next` is a path on the app's own origin: one leading `/` (`//`
/// is another host), then only visible ASCII without `\` (browsers read `/\` as `//`) — so no
/// scheme, no whitespace or control characters (browsers drop tabs and newlines from URLs:
/// `/\t/evil` would become `//evil`), nothing outside ASCII.
fn safe_next(next: &str) -> bool {
    let b = next.as_bytes();
    b.first() == Some(&b'/')
        && b.get(1) != Some(&b'/')
        && b.iter().all(|c| (0x21..=0x7e).contains(c) && *c != b'\\')
}

/// The `Set-Cookie` of an app login: host-only (no `Domain`), so no sibling host gets it.
fn login_cookie(name: &str, value: &str) -> String {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(COOKIE_TTL.as_secs() as i64))
        .build()
        .to_string()
}

impl AppProxy {
    /// A one-use token that logs the owner (whose access `access` watches) into one app of
    /// one session.
    pub fn issue(&self, session_id: &str, app: &str, access: Watch) -> String {
        let token = crate::secret::random_hex(crate::secret::TOKEN_BYTES);
        let mut tokens = self.tokens.lock().expect("token lock");
        let now = Instant::now();
        tokens.retain(|_, g| g.expires > now);
        tokens.insert(
            hash(&token),
            Grant {
                session_id: session_id.into(),
                app: app.into(),
                owner_id: access.user_id().into(),
                expires: now + TOKEN_TTL,
                access,
            },
        );
        token
    }

    /// The login a request's `cookie_name` cookies carry for `app` of `session_id`. Every
    /// cookie of that name counts: a page elsewhere may have added one of its own (a
    /// parent-domain cookie) beside the owner's.
    pub(super) fn logged_in(
        &self,
        headers: &HeaderMap,
        app: &str,
        session_id: &str,
        cookie_name: &str,
    ) -> Option<Grant> {
        let logins = self.logins.lock().expect("login lock");
        let now = Instant::now();
        cookies(headers, cookie_name).find_map(|c| {
            logins
                .get(&hash(c))
                .filter(|g| g.opens(session_id, app, now))
                .cloned()
        })
    }

    /// `/__berth/auth?token=…&next=…`: spends the token, sets the app cookie `cookie_name`
    /// and redirects to `next`.
    pub(super) fn login(
        &self,
        req: &Request<Body>,
        app: &str,
        session_id: &str,
        cookie_name: &str,
    ) -> Response<Body> {
        // Checked before the token is spent: a bad link refuses and leaves it usable.
        let next = match raw_query_param(req.uri(), "next") {
            None => "/".to_string(),
            Some(raw) => match percent_decode(raw).filter(|n| safe_next(n)) {
                Some(n) => n,
                None => {
                    return page(
                        StatusCode::BAD_REQUEST,
                        "This link is not valid",
                        "The link's next address must be a path on this app's own site, starting with a single /.",
                        false,
                    )
                }
            },
        };
        let token = query_param(req.uri(), "token").unwrap_or_default();
        let grant = self
            .tokens
            .lock()
            .expect("token lock")
            .remove(&hash(&token));
        let Some(grant) = grant.filter(|g| g.opens(session_id, app, Instant::now())) else {
            return page(
                StatusCode::UNAUTHORIZED,
                "This link has expired",
                "App links work once and for one minute. Open the app again from the berth console.",
                false,
            );
        };
        let login = crate::secret::random_hex(crate::secret::TOKEN_BYTES);
        let mut logins = self.logins.lock().expect("login lock");
        let now = Instant::now();
        // Expired and revoked logins are dropped here, not on the hot path of every request.
        logins.retain(|_, g| g.expires > now && !g.access.is_revoked());
        logins.insert(
            hash(&login),
            Grant {
                expires: Instant::now() + COOKIE_TTL,
                ..grant
            },
        );
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FOUND;
        if let Ok(v) = HeaderValue::from_str(&next) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&login_cookie(cookie_name, &login)) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// Opens `/__berth/auth` with `query`.
    async fn open(proxy: &AppProxy, query: &str) -> Response<Body> {
        proxy
            .handle(
                request("GET", &format!("/__berth/auth?{query}"))
                    .body(Body::empty())
                    .unwrap(),
                PUBLIC_URL,
            )
            .await
    }

    #[test]
    fn next_must_be_a_path_on_the_same_origin() {
        for ok in ["/", "/lab", "/lab/tree?x=1#h", "/a%2F%2Fb", "/a+b"] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil",
            "/\\evil",
            "/\t/evil",
            "/\r\nX: y",
            "https://evil",
            "evil",
            "/a b",
            "/caf\u{e9}",
            "/a\\b",
            "javascript:alert(1)",
        ] {
            assert!(!safe_next(bad), "{bad:?}");
        }
    }

    #[test]
    fn query_values_are_percent_decoded_without_plus_for_space() {
        assert_eq!(percent_decode("/a%2Fb%zz%4").as_deref(), Some("/a/b%zz%4"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("\u{e9}"));
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(percent_decode("/a+b").as_deref(), Some("/a+b"));
        // Never slices inside a multi-byte character.
        assert_eq!(percent_decode("%a\u{e9}").as_deref(), Some("%a\u{e9}"));
        let uri: Uri = "/x?next=%2Flab&token=ab&&flag&token=cd".parse().unwrap();
        assert_eq!(raw_query_param(&uri, "next"), Some("%2Flab"));
        assert_eq!(query_param(&uri, "next").as_deref(), Some("/lab"));
        assert_eq!(raw_query_param(&uri, "token"), Some("ab"));
        assert_eq!(raw_query_param(&uri, "flag"), None);
        assert_eq!(raw_query_param(&uri, "missing"), None);
    }

    #[tokio::test]
    async fn a_malformed_escape_beside_a_multibyte_character_is_a_refusal_not_a_panic() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        // Unauthenticated: whoever can reach the app host can send this.
        let r = open(&proxy, "token=%a\u{e9}").await;
        assert_eq!(r.status(), 401);
        let r = open(&proxy, "next=%a\u{e9}").await;
        assert_eq!(r.status(), 400);
        // The proxy still works afterwards.
        log_in(&proxy, &revocations).await;
    }

    #[tokio::test]
    async fn a_login_link_works_once() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        let token = proxy.issue(SESSION, APP, access(&revocations));
        let r = open(&proxy, &format!("token={token}&next=%2Flab%2Ftree%3Fx%3D1")).await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/lab/tree?x=1");
        let r = open(&proxy, &format!("token={token}&next=/")).await;
        assert_eq!(r.status(), 401);
        assert!(!r.headers().contains_key("set-cookie"));
    }

    #[tokio::test]
    async fn a_link_with_a_foreign_next_is_refused_and_stays_usable() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        let token = proxy.issue(SESSION, APP, access(&revocations));
        for next in [
            "//evil.test",
            "https://evil.test",
            "/%5Cevil",
            "%2F%2Fevil",
            "/%09/x",
        ] {
            let r = open(&proxy, &format!("token={token}&next={next}")).await;
            assert_eq!(r.status(), 400, "{next}");
            assert!(!r.headers().contains_key("set-cookie"), "{next}");
        }
        let r = open(&proxy, &format!("token={token}")).await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/");
    }

    #[tokio::test]
    async fn a_link_opens_only_its_own_app_while_the_owner_keeps_access() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        let token = proxy.issue(SESSION, "other", access(&revocations));
        assert_eq!(open(&proxy, &format!("token={token}")).await.status(), 401);
        let token = proxy.issue(SESSION, APP, access(&revocations));
        revocations.revoke(OWNER);
        assert_eq!(open(&proxy, &format!("token={token}")).await.status(), 401);
        assert_eq!(open(&proxy, "token=").await.status(), 401);
        assert_eq!(open(&proxy, "").await.status(), 401);
    }

    #[tokio::test]
    async fn the_app_cookie_is_host_only_and_http_only() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        let token = proxy.issue(SESSION, APP, access(&revocations));
        let r = open(&proxy, &format!("token={token}")).await;
        let set = r.headers()["set-cookie"].to_str().unwrap();
        let c = Cookie::parse(set).unwrap();
        assert_eq!(c.name(), "berth_app");
        assert_eq!(c.value().len(), 64);
        assert_eq!(
            c.domain(),
            None,
            "no Domain: the browser keeps it to this host"
        );
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.max_age(), Some(cookie::time::Duration::hours(12)));
        assert!(!set.to_ascii_lowercase().contains("domain"));
    }

    #[tokio::test]
    async fn any_of_several_app_cookies_may_carry_the_login() {
        let (proxy, revocations) = proxy(closed_port().await, None);
        let login = log_in(&proxy, &revocations).await;
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("berth_app=planted; a=1"),
        );
        h.append(header::COOKIE, HeaderValue::from_str(&login).unwrap());
        assert!(proxy.logged_in(&h, APP, SESSION, "berth_app").is_some());
        assert!(proxy.logged_in(&h, APP, SESSION, "berth_app_1").is_none());
        assert_eq!(cookie(&h, "berth_app").as_deref(), Some("planted"));
        assert_eq!(cookie(&h, "a").as_deref(), Some("1"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
