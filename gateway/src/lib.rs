//! The berth gateway: the HTTP API under `/api/v1`, the session lifecycle and scheduler, the
//! local Docker node, the embedded websocket proxy for terminals, and the static web console.
//! `main.rs` is the `berth` command line; everything it serves starts in [`serve`].
//!
//! Invariant: only this crate writes the database; containers are only created or removed
//! through [`node::Node`].

mod apps;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
mod health;
mod images;
pub mod node;
pub mod nodes;
pub mod policy;
mod projects;
pub mod sessions;
mod terminal;
pub mod vfolders;

use crate::error::{AppError, AppResult};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use config::Config;
use events::EventHub;
use sessions::lifecycle::Lifecycle;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use wsproxy::TerminalHub;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: db::Db,
    pub config: Arc<Config>,
    pub events: Arc<EventHub>,
    pub terminals: Arc<TerminalHub>,
    pub lifecycle: Arc<Lifecycle>,
    pub throttle: Arc<auth::LoginThrottle>,
    /// Ends everything a user holds open when their access is taken away.
    pub revocations: Arc<wsproxy::Revocations>,
    pub apps: Arc<wsproxy::AppProxy>,
    /// Where vfolders live on disk.
    pub storage: Arc<vfolders::fs::Storage>,
    /// tus uploads with a PATCH in progress.
    pub upload_writers: Arc<vfolders::uploads::Writers>,
    /// The URL people reach this server at, without a trailing slash.
    public_url: Arc<str>,
}

impl AppState {
    pub fn public_url(&self) -> &str {
        &self.public_url
    }
}

async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> AppResult<Response> {
    auth::check_origin(req.method(), req.headers(), state.public_url())?;
    Ok(next.run(req).await)
}

/// The OpenAPI document of the endpoints this server has (hand-kept beside the routes).
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn api_not_found() -> AppError {
    AppError::new(api::ProblemType::NotFound, "There is no such API endpoint.")
}

async fn method_not_allowed() -> Response {
    let p = api::Problem {
        kind: "/problems/method-not-allowed".into(),
        title: "Method not allowed".into(),
        status: 405,
        detail: "This endpoint does not take that HTTP method.".into(),
        errors: vec![],
    };
    error::problem_response(&p)
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(sessions::router())
        .merge(projects::router())
        .merge(policy::router())
        .merge(images::router())
        .merge(events::router())
        .merge(terminal::router())
        .merge(apps::router())
        .merge(vfolders::router())
        .merge(nodes::router())
        .route("/openapi.json", axum::routing::get(openapi))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), csrf));
    Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .merge(health::console(&state.config.console_dir))
        .layer(middleware::from_fn(health::console_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            apps::dispatch,
        ))
        .with_state(state)
}

/// glibc serves every allocation above its mmap threshold (128 KiB at start) with a fresh
/// `mmap` — page faults to fill it, `munmap` to free it — and raises the threshold only once a
/// large block has been freed. Request bodies and file blocks (up to 4 MiB) pass that size all
/// the time: left at 128 KiB, uploads cost about a third more CPU (measured with the password
/// hashing pool, which no longer frees the 19 MiB block whose release used to raise it by
/// accident). Freeing one 24 MiB block at start raises it (and the trim threshold) on purpose;
/// other allocators ignore this.
fn raise_mmap_threshold() {
    drop(std::hint::black_box(vec![0u8; 24 << 20]));
}

/// Opens the database, creates the first admin, connects the node, reconciles with Docker,
/// starts the scheduler and event watcher, then serves on `listener` until `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    raise_mmap_threshold();
    let addr = listener.local_addr()?;
    let db = db::open(&config.data_dir).await?;
    if let Some(pw) = auth::bootstrap_admin(&db, config.admin_password.as_deref()).await? {
        println!("berth: created the superadmin \"admin\" with password {pw}");
        println!("berth: this password is shown only once; keep it.");
    }
    let instance = db::instance_id(&db).await?;
    let storage = Arc::new(vfolders::fs::Storage::open(&config.data_dir)?);
    let nodes = nodes::bootstrap(&db, &config, &instance).await?;
    let events = Arc::new(EventHub::default());
    let terminals = Arc::new(TerminalHub::new(config.terminal));
    let limits = wsproxy::listen::Limits {
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
    };
    let port_mode = config.app_ports.map(|range| wsproxy::PortMode {
        ip: addr.ip(),
        range,
        limits,
    });
    let app_proxy = Arc::new(wsproxy::AppProxy::new(
        &config.app_base_domain,
        port_mode,
        Arc::new(apps::DbApps(db.clone())),
    ));
    let lifecycle = Lifecycle::new(
        db.clone(),
        storage.clone(),
        events.clone(),
        nodes.clone(),
        config.scheduler,
        terminals.clone(),
        app_proxy.clone(),
    );
    lifecycle.reconcile(true).await?;
    tokio::spawn(lifecycle.clone().run_scheduler());
    for n in nodes.all() {
        tokio::spawn(lifecycle.clone().watch_node(n));
    }
    tokio::spawn(lifecycle.clone().run_reaper());
    let public_url: Arc<str> = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .into();
    let state = AppState {
        db,
        config: Arc::new(config),
        events,
        terminals,
        lifecycle,
        throttle: Arc::default(),
        revocations: Arc::default(),
        apps: app_proxy,
        storage,
        upload_writers: Arc::default(),
        public_url: public_url.clone(),
    };
    vfolders::sharing::fail_interrupted_jobs(&state)
        .await
        .map_err(|e| anyhow::anyhow!("cannot check interrupted jobs: {e:?}"))?;
    tokio::spawn(vfolders::uploads::run_expiry(state.clone()));
    tokio::spawn(nodes::run_health(state.clone(), instance.clone()));
    tracing::info!(instance = %instance, "berth listening on {public_url}");
    println!("berth: listening on http://{addr} (console: {public_url})");
    wsproxy::listen::serve(listener, app(state), limits, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every `/api/v1` route in the source has an entry in the hand-kept OpenAPI document, and
    /// the document names no route that does not exist.
    #[test]
    fn openapi_document_matches_the_routes() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let src = std::fs::read_to_string(&p).unwrap();
                    // `.route(` then the path literal, possibly on the next line.
                    for part in src.split(".route(").skip(1) {
                        let lit = part.trim_start();
                        if let Some(rest) = lit.strip_prefix('"') {
                            out.push(rest.split('"').next().unwrap_or_default().to_string());
                        }
                    }
                }
            }
        }
        let mut routes = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut routes,
        );
        let doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        let documented: std::collections::BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        // Routes outside /api/v1, the document itself, and stand-in servers of unit tests
        // (which use full paths).
        let outside = ["/healthz", "/readyz", "/openapi.json"];
        let routes: std::collections::BTreeSet<String> = routes
            .into_iter()
            .filter(|r| {
                r.starts_with('/') && !r.starts_with("/api/") && !r.contains(char::is_whitespace)
            })
            .filter(|r| !outside.contains(&r.as_str()))
            .collect();
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "routes missing from openapi.json: {undocumented:?}; documented but not routed: {stale:?}"
        );
    }
}
