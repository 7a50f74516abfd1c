//! The berth gateway: the HTTP API under `/api/v1`, the session lifecycle and scheduler, the
//! nodes (the local Docker engine and any an admin adds), the embedded proxy for terminals,
//! apps and tunnels (`wsproxy`), and the static web console. `main.rs` is the `berth` command
//! line; everything it serves starts in [`serve`], which also stops it gracefully.
//!
//! Invariant: only this crate writes the database; containers are only created or removed
//! through [`nodes::Node`].

mod apps;
pub mod auth;
mod bus;
pub mod config;
pub mod db;
pub mod dotfiles;
pub mod error;
pub mod events;
mod health;
mod images;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod openapi;
pub mod policy;
mod projects;
pub mod sessions;
mod ssh;
pub mod stats;
mod terminal;
mod usage;
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
    /// The Prometheus registry and metric handles (`/metrics`).
    pub metrics: Arc<metrics::Metrics>,
    /// The URL people reach this server at, without a trailing slash.
    public_url: Arc<str>,
}

impl AppState {
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Records, in `tx` (the transaction that takes `user_id`'s access away, just before it
    /// commits), that the other replicas must end what the user holds open there; nothing on
    /// SQLite, which serves one process. After the commit, [`AppState::revoke`].
    pub async fn record_revocation(
        &self,
        tx: &mut sqlx::AnyConnection,
        user_id: &str,
    ) -> sqlx::Result<()> {
        match self.lifecycle.bus() {
            Some(bus) => bus.record(tx, user_id).await,
            None => Ok(()),
        }
    }

    /// Ends everything `user_id` holds open, here, on every node's proxy, and (through the
    /// revocation recorded with [`AppState::record_revocation`]) on every other replica: call
    /// after the database change that takes their access away has been committed.
    pub fn revoke(&self, user_id: &str) {
        self.revocations.revoke(user_id);
        if let Some(bus) = self.lifecycle.bus() {
            bus.revoke();
        }
        nodes::proxy::revoke(self, user_id);
    }
}

async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> AppResult<Response> {
    auth::check_origin(req.method(), req.headers(), state.public_url())?;
    Ok(next.run(req).await)
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
        .merge(stats::router())
        .merge(projects::router())
        .merge(dotfiles::routes::router())
        .merge(policy::router())
        .merge(images::router())
        .merge(events::router())
        .merge(terminal::router())
        .merge(apps::router())
        .merge(vfolders::router())
        .merge(nodes::router())
        .merge(usage::router())
        .merge(ssh::router())
        .route("/openapi.json", axum::routing::get(openapi::openapi_json))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), csrf));
    Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .merge(metrics::router())
        .merge(health::console(&state.config.console_dir))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track_http,
        ))
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

/// How long a stopping server waits for work in flight once connections are closed.
pub const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the database, creates the first admin, connects the node, reconciles with Docker,
/// starts the scheduler and event watcher, then serves on `listener` until `shutdown`.
///
/// Shutdown is one `CancellationToken` ([`Lifecycle::shutdown`]), cancelled when `shutdown` resolves:
/// 1. the listener stops accepting, and open connections finish their request in flight
///    (bounded by `wsproxy::listen::serve`);
/// 2. what outlives a request is told to go: terminals get a Close frame 1001 (going away),
///    event streams end, app websockets and tunnels are cut
///    (`wsproxy::Revocations::shut_down`), and port mode's app listeners stop accepting
///    (`wsproxy::AppProxy::stop_listeners`);
/// 3. every background loop (scheduler, reaper, sweeper, node watchers, health checks,
///    upload expiry) ends, and preparing or ending sessions in flight get [`SHUTDOWN_BOUND`]
///    to finish; a launch or termination still cut short is taken up again at the next start
///    (`Lifecycle::reconcile`), while a folder clone cut short is marked failed there
///    (`vfolders::sharing::fail_interrupted_jobs`) and can be started again.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    raise_mmap_threshold();
    let addr = listener.local_addr()?;
    // SQLite: one process per data dir, held until this function returns.
    let _data_dir_lock = match config.database_url {
        None => Some(leader::lock_data_dir(&config.data_dir)?),
        Some(_) => None,
    };
    let db = db::open(&config.data_dir, config.database_url.as_deref()).await?;
    if let Some(pw) = auth::bootstrap_admin(&db, config.admin_password.as_deref()).await? {
        println!("berth: created the superadmin \"admin\" with password {pw}");
        println!("berth: this password is shown only once; keep it.");
    }
    let instance = db::instance_id(&db).await?;
    let storage = Arc::new(vfolders::fs::Storage::open(&config.storage_dir)?);
    let nodes = nodes::bootstrap(&db, &config, &instance).await?;
    let events = Arc::new(EventHub::default());
    let metrics = Arc::new(metrics::Metrics::new());
    let observe = wsproxy::Observe::new(metrics.clone());
    let terminals = Arc::new(TerminalHub::new(config.terminal).with_observer(observe.clone()));
    let limits = wsproxy::listen::Limits {
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
    };
    let port_mode = config.app_ports.map(|range| wsproxy::PortMode {
        ip: addr.ip(),
        range,
        limits,
    });
    let app_proxy = Arc::new(
        wsproxy::AppProxy::new(
            &config.app_base_domain,
            port_mode,
            Arc::new(apps::DbApps(db.clone())),
        )
        .with_observer(observe),
    );
    let shared = leader::shared(&db);
    let lifecycle = Lifecycle::new(
        db.clone(),
        storage.clone(),
        events.clone(),
        nodes.clone(),
        config.scheduler,
        terminals.clone(),
        app_proxy.clone(),
        metrics.clone(),
    );
    let leadership = lifecycle.leadership().clone();
    let stop = lifecycle.shutdown().clone();
    let revocations = Arc::new(wsproxy::Revocations::default());
    if shared {
        let replica = leader::replica_name();
        lifecycle.set_bus(bus::start(&db, lifecycle.clone(), revocations.clone()).await?);
        let mut first = leadership.subscribe();
        lifecycle.background(leader::campaign(db.clone(), leadership.clone(), replica));
        // A lone replica (or the first one) leads from the start, and recovers before it
        // serves, as on SQLite; a replica that finds a leader serves at once.
        let _ = tokio::time::timeout(leader::RETRY, first.wait_for(|l| *l)).await;
    }
    let reconciled = leadership.is_leader();
    if reconciled {
        if shared {
            tokio::time::sleep(leader::TAKEOVER_GRACE).await;
        }
        lifecycle.reconcile(true).await?;
    }
    lifecycle.background(lifecycle.clone().lead(reconciled));
    lifecycle.background(lifecycle.clone().run_scheduler());
    lifecycle.background(lifecycle.clone().run_reaper());
    lifecycle.background(lifecycle.clone().run_sweeper());
    let public_url: Arc<str> = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .into();
    let state = AppState {
        db: db.clone(),
        config: Arc::new(config),
        events,
        terminals,
        lifecycle,
        throttle: Arc::new(auth::LoginThrottle::new(db.clone())),
        revocations,
        apps: app_proxy,
        storage,
        upload_writers: Arc::default(),
        metrics,
        public_url: public_url.clone(),
    };
    if shared {
        // Other replicas may be running jobs: the leader fails only silent ones.
        state
            .lifecycle
            .background(vfolders::sharing::run_job_watch(state.clone()));
    } else {
        vfolders::sharing::fail_interrupted_jobs(&state)
            .await
            .map_err(|e| anyhow::anyhow!("cannot check interrupted jobs: {e:?}"))?;
    }
    let lifecycle = state.lifecycle.clone();
    lifecycle.background(vfolders::uploads::run_expiry(state.clone()));
    lifecycle.background(nodes::run_health(state.clone(), instance.clone()));
    lifecycle.background(nodes::proxy::run_activity(state.db.clone()));
    // The caller's signal cancels the one token; then what outlives a request goes.
    tokio::spawn({
        let (stop, revocations, terminals, apps) = (
            stop.clone(),
            state.revocations.clone(),
            state.terminals.clone(),
            state.apps.clone(),
        );
        async move {
            tokio::select! {
                _ = shutdown => stop.cancel(),
                _ = stop.cancelled() => {}
            }
            tracing::info!("shutting down: closing connections and stopping background tasks");
            // Terminals first, so they close as going away rather than as revoked.
            terminals.close_all().await;
            revocations.shut_down();
            apps.stop_listeners();
        }
    });
    tracing::info!(instance = %instance, "berth listening on {public_url}");
    println!("berth: listening on http://{addr} (console: {public_url})");
    wsproxy::listen::serve(listener, app(state), limits, stop.clone().cancelled_owned()).await?;
    stop.cancel();
    if !lifecycle.wait_tasks(SHUTDOWN_BOUND).await {
        tracing::warn!(
            "some work was still running after {SHUTDOWN_BOUND:?}; the next start takes it up"
        );
    }
    tracing::info!("berth stopped");
    Ok(())
}
