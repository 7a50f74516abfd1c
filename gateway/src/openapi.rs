//! The OpenAPI document of `/api/v1`, generated from the code: every handler carries a
//! `#[utoipa::path]` attribute next to its route, the wire types derive their schemas in `api`
//! (feature `openapi`), and [`ApiDoc`] collects them. It is built once and served at
//! `GET /api/v1/openapi.json`; `docs/openapi.json` is the same document, checked in for client
//! generators (the tests below fail when either drifts).
//!
//! What the layers add to every operation (a caller's credentials, the JSON body extractor, the
//! cookie Origin rule) is added here by [`Layers`], so each handler lists only the problems its
//! own code answers with.

use api::{Problem, ProblemType};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Response};
use utoipa::{Modify, OpenApi, ToResponse};

/// A `/problems/validation` problem (with `errors` naming the fields), or
/// `/problems/unschedulable` where the request can never be placed.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct BadRequest(Problem);

/// `/problems/unauthenticated`: no login cookie or API key, or one that is no longer valid.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Unauthenticated(Problem);

/// `/problems/forbidden`: the caller's role or rights do not allow this, or a cookie-authenticated
/// write came from another origin.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Forbidden(Problem);

/// `/problems/not-found`: no such thing, or one the caller may not see (the two answer alike).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct NotFound(Problem);

/// `/problems/conflict` (the state does not allow it now, or the name is taken) or
/// `/problems/quota` (a policy limit is reached).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Conflict(Problem);

/// `/problems/validation` for a tus precondition (`Tus-Resumable` missing or not 1.0.0).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct PreconditionFailed(Problem);

/// `/problems/too-large`: the body (or the declared upload) is larger than allowed.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct TooLarge(Problem);

/// `/problems/unsupported-media-type`: the body is not of the content type this call takes.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct UnsupportedMediaType(Problem);

/// `/problems/validation`: the requested byte range lies outside the file.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct RangeNotSatisfiable(Problem);

/// `/problems/too-many-requests`: too many failed logins; `Retry-After` says when to try again.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct TooManyRequests(Problem);

/// `/problems/unavailable`: the server is too busy (password hashing) or a node is unreachable.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)]
pub struct Unavailable(Problem);

/// Raw bytes: a file's content, a zip archive, a tus chunk (OpenAPI 3.1: a string of octets,
/// so clients send and keep it as it is).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl utoipa::ToSchema for Binary {}

/// The document: every `/api/v1` operation, its schemas and its problem responses.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "berth API",
        version = "1",
        description = "Compute sessions as Docker containers. Errors are `application/problem+json` (the `Problem` schema; its description lists every problem type). Authenticate with the `berth_session` cookie from `POST /auth/login`, or send an API key as `Authorization: Bearer KEY`."
    ),
    servers((url = "/api/v1")),
    security(("cookie" = []), ("bearer" = [])),
    modifiers(&Layers),
    paths(
        openapi_json,
        crate::auth::routes::login,
        crate::auth::routes::logout,
        crate::auth::routes::me,
        crate::auth::routes::change_password,
        crate::auth::routes::list_users,
        crate::auth::routes::create_user,
        crate::auth::routes::get_user,
        crate::auth::routes::update_user,
        crate::auth::keys::list,
        crate::auth::keys::create,
        crate::auth::keys::revoke,
        crate::sessions::list,
        crate::sessions::create,
        crate::sessions::get_one,
        crate::sessions::terminate,
        crate::sessions::history,
        crate::sessions::logs,
        crate::stats::session_stats,
        crate::sessions::terminal,
        crate::sessions::queue,
        crate::apps::open_app,
        crate::apps::app_token,
        crate::apps::tunnel,
        crate::apps::tunnel_url,
        crate::terminal::connect,
        crate::events::events,
        crate::images::list,
        crate::projects::list,
        crate::projects::create,
        crate::projects::get_one,
        crate::projects::add_member,
        crate::projects::remove_member,
        crate::dotfiles::routes::list_own,
        crate::dotfiles::routes::put_own,
        crate::dotfiles::routes::delete_own,
        crate::dotfiles::routes::list_project,
        crate::dotfiles::routes::put_project,
        crate::dotfiles::routes::delete_project,
        crate::dotfiles::routes::list_domain,
        crate::dotfiles::routes::put_domain,
        crate::dotfiles::routes::delete_domain,
        crate::policy::get_user_policy,
        crate::policy::put_user_policy,
        crate::policy::get_default,
        crate::policy::put_default,
        crate::vfolders::list,
        crate::vfolders::create,
        crate::vfolders::get_one,
        crate::vfolders::rename,
        crate::vfolders::trash,
        crate::vfolders::restore,
        crate::vfolders::purge,
        crate::vfolders::files::list,
        crate::vfolders::files::mkdir,
        crate::vfolders::files::move_entry,
        crate::vfolders::files::delete_files,
        crate::vfolders::files::download,
        crate::vfolders::uploads::options,
        crate::vfolders::uploads::create,
        crate::vfolders::uploads::head,
        crate::vfolders::uploads::patch,
        crate::vfolders::uploads::terminate,
        crate::vfolders::sharing::sent,
        crate::vfolders::sharing::invite,
        crate::vfolders::sharing::inbox,
        crate::vfolders::sharing::accept,
        crate::vfolders::sharing::decline,
        crate::vfolders::sharing::members,
        crate::vfolders::sharing::unshare,
        crate::vfolders::sharing::leave,
        crate::vfolders::sharing::clone,
        crate::vfolders::sharing::job,
        crate::nodes::routes::list,
        crate::nodes::routes::create,
        crate::nodes::routes::get_one,
        crate::nodes::routes::update,
        crate::nodes::routes::remove,
        crate::usage::usage,
        crate::ssh::list,
        crate::ssh::add,
        crate::ssh::remove,
    ),
    components(
        schemas(Problem, api::FieldError, api::events::SessionEnding),
        responses(
            BadRequest,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            PreconditionFailed,
            TooLarge,
            UnsupportedMediaType,
            RangeNotSatisfiable,
            TooManyRequests,
            Unavailable
        )
    ),
    tags(
        (name = "auth", description = "Logging in and out, your own account"),
        (name = "users", description = "User accounts (admins)"),
        (name = "keys", description = "API keys"),
        (name = "sessions", description = "Compute sessions and the scheduler queue"),
        (name = "apps", description = "HTTP apps and TCP tunnels of a session"),
        (name = "terminals", description = "Terminal websockets"),
        (name = "events", description = "Server-sent events"),
        (name = "images", description = "Session images"),
        (name = "projects", description = "Projects (groups) and membership"),
        (name = "dotfiles", description = "Dotfiles written into sessions at start: yours, a project's, the domain's"),
        (name = "policies", description = "Resource policies"),
        (name = "vfolders", description = "Storage folders"),
        (name = "files", description = "Files inside a folder"),
        (name = "uploads", description = "tus 1.0 resumable uploads"),
        (name = "sharing", description = "Invitations, members and clones"),
        (name = "nodes", description = "Docker engines sessions run on (admins)"),
        (name = "usage", description = "Resource usage accounting"),
        (name = "ssh", description = "SSH public keys for SSH into sessions"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Every problem type of the contract, with its status and title, as a Markdown list (the
/// `Problem` schema's description). The match makes a new [`ProblemType`] a compile error
/// here until it is listed.
fn problem_types() -> String {
    use ProblemType as P;
    let all = [
        P::Validation,
        P::Unauthenticated,
        P::Forbidden,
        P::NotFound,
        P::Conflict,
        P::Quota,
        P::Unschedulable,
        P::TooLarge,
        P::UnsupportedMediaType,
        P::TooManyRequests,
        P::Internal,
        P::Unavailable,
    ];
    // Exhaustive on purpose: a variant missing from `all` does not compile.
    let _ = |p: P| match p {
        P::Validation
        | P::Unauthenticated
        | P::Forbidden
        | P::NotFound
        | P::Conflict
        | P::Quota
        | P::Unschedulable
        | P::TooLarge
        | P::UnsupportedMediaType
        | P::TooManyRequests
        | P::Internal
        | P::Unavailable => (),
    };
    let mut s = String::from(
        "The `application/problem+json` body of every error. `type` is stable and one of:\n\n",
    );
    for p in all {
        s.push_str(&format!(
            "- `{}` ({}, \"{}\")\n",
            p.uri(),
            p.status(),
            p.title()
        ));
    }
    s.push_str(
        "\nA request for an unknown endpoint is `/problems/not-found` (404); a method the endpoint \
         does not take is `/problems/method-not-allowed` (405).",
    );
    s
}

/// Adds what the layers around the handlers answer with, the security schemes and the
/// problem type list.
struct Layers;

impl Modify for Layers {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "berth_session",
                "The login cookie set by `POST /auth/login`.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `POST /keys`."))
                    .build(),
            ),
        );
        if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(o))) =
            components.schemas.get_mut("Problem")
        {
            o.description = Some(problem_types());
        }
        let problem =
            |name: &str| RefOr::<Response>::Ref(utoipa::openapi::Ref::from_response_name(name));
        for item in doc.paths.paths.values_mut() {
            for (method, op) in operations(item) {
                let r = &mut op.responses.responses;
                // An explicit `security(())` (login, this document) means anonymous callers.
                let anonymous = op
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(is_empty_requirement));
                if !anonymous {
                    r.entry("401".into())
                        .or_insert_with(|| problem("Unauthenticated"));
                }
                let json_body = op.request_body.as_ref().is_some_and(
                    |b| matches!(b, RefOr::T(b) if b.content.contains_key("application/json")),
                );
                if json_body {
                    r.entry("400".into())
                        .or_insert_with(|| problem("BadRequest"));
                    r.entry("413".into()).or_insert_with(|| problem("TooLarge"));
                    r.entry("415".into())
                        .or_insert_with(|| problem("UnsupportedMediaType"));
                }
                // The cookie Origin rule (`auth::check_origin`) refuses writes from elsewhere.
                let write = !matches!(
                    method,
                    HttpMethod::Get | HttpMethod::Head | HttpMethod::Options
                );
                if write && !anonymous {
                    r.entry("403".into())
                        .or_insert_with(|| problem("Forbidden"));
                }
            }
        }
    }
}

/// The operations of a path item with their methods.
fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// True for the empty requirement `{}` (no credentials needed).
fn is_empty_requirement(s: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(s).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| {
        let mut json = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        json.push('\n');
        json
    });
    &DOC
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

    /// The argument text of each `.route(` call in `src`, up to its closing parenthesis.
    fn route_calls(src: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for (at, _) in src.match_indices(".route(") {
            let rest = &src[at + ".route(".len()..];
            let mut depth = 1;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    out.push(&rest[..i]);
                    break;
                }
            }
        }
        out
    }

    /// `(METHOD, path)` of every route in `args`: the path literal, then each method router
    /// named in the chain (`get(list).post(create)`, `axum::routing::head(head)`).
    fn parse_route(args: &str) -> Option<(String, Vec<String>)> {
        let lit = args.trim_start().strip_prefix('"')?;
        let (path, chain) = lit.split_once('"')?;
        let path = path.to_string();
        let mut methods = Vec::new();
        for (i, _) in chain.match_indices('(') {
            let before = &chain[..i];
            let word = before
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            let prev = before[..before.len() - word.len()].chars().last();
            // Only `x(` at the start of the chain, after `.` or after `routing::`.
            if METHODS.contains(&word)
                && matches!(
                    prev,
                    Some('.') | Some(':') | Some(' ') | Some(',') | Some('\n') | None
                )
            {
                methods.push(word.to_ascii_uppercase());
            }
        }
        Some((path, methods))
    }

    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// Every `(METHOD, /path)` the gateway routes under `/api/v1`, read from the source.
    fn routed() -> BTreeSet<(String, String)> {
        let mut files = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut out = BTreeSet::new();
        for f in files {
            let src = std::fs::read_to_string(&f).unwrap();
            // Unit tests' stand-in routers are not the API.
            let src = src
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            for args in route_calls(src) {
                let Some((path, methods)) = parse_route(args) else {
                    continue;
                };
                // Outside /api/v1 (health, metrics) and stand-in servers of unit tests (full paths).
                if !path.starts_with('/')
                    || path.starts_with("/api/")
                    || ["/healthz", "/readyz", "/metrics"].contains(&path.as_str())
                {
                    continue;
                }
                assert!(
                    !methods.is_empty(),
                    "{}: cannot tell the methods of route {path}",
                    f.display()
                );
                for m in methods {
                    out.insert((m, path.clone()));
                }
            }
        }
        out
    }

    /// Every `(METHOD, /path)` the document describes.
    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if item.get(m).is_some() {
                    out.insert((m.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_route_parser_reads_methods() {
        let src = r#"Router::new()
            .route("/a/{id}", get(one).patch(update).delete(remove))
            .route(
                "/b",
                axum::routing::head(head).options(options),
            )"#;
        let routes: Vec<_> = route_calls(src)
            .into_iter()
            .filter_map(parse_route)
            .collect();
        assert_eq!(
            routes,
            vec![
                (
                    "/a/{id}".to_string(),
                    vec!["GET".into(), "PATCH".into(), "DELETE".into()]
                ),
                ("/b".to_string(), vec!["HEAD".into(), "OPTIONS".into()]),
            ]
        );
    }

    /// Every route the router has (with its method) is an operation of the document, and the
    /// document has no operation the router lacks.
    #[test]
    fn openapi_document_matches_the_routes() {
        let routed = routed();
        let documented = documented();
        assert!(routed.len() > 50, "the route scan found only {routed:?}");
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "routes without a #[utoipa::path] in openapi.rs: {undocumented:?}; documented but not routed: {stale:?}"
        );
    }

    /// Every operation has a unique id, a tag, a summary, and declares each `{param}` of its
    /// path; every problem response it names exists.
    #[test]
    fn every_operation_is_complete() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        let responses = doc["components"]["responses"].as_object().unwrap();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let what = format!("{} {path}", m.to_ascii_uppercase());
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_string()),
                    "{what}: operationId {id:?} twice"
                );
                assert!(
                    op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{what}: no tag"
                );
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{what}: no summary"
                );
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let wanted: BTreeSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, wanted, "{what}: path parameters");
                for (code, r) in op["responses"].as_object().unwrap() {
                    if let Some(name) = r["$ref"].as_str() {
                        let name = name.trim_start_matches("#/components/responses/");
                        assert!(
                            responses.contains_key(name),
                            "{what} {code}: no response {name}"
                        );
                    }
                }
            }
        }
    }

    /// `docs/openapi.json` (for client generators) is what the code generates.
    /// `BERTH_BLESS=1 cargo test -p gateway openapi` rewrites it.
    #[test]
    fn checked_in_document_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        if std::env::var_os("BERTH_BLESS").is_some() {
            std::fs::write(&path, document()).unwrap();
            return;
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == document(),
            "docs/openapi.json differs from the document the code generates; regenerate it with \
             `BERTH_BLESS=1 cargo test -p gateway openapi` and commit the result"
        );
    }
}
