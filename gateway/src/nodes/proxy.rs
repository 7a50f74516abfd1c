//! Proxies beside nodes: a node registered with a `proxy_url` has its own `berth wsproxy`
//! (`wsproxy::remote`), and the gateway hands clients URLs on it instead of serving the
//! session's terminals, apps and tunnels itself, so their bytes never cross the gateway.
//!
//! Each URL carries a token this module signs with the node's proxy key
//! (`wsproxy::token`): short-lived, bound to the node, the session, its owner, its container
//! and one target (a terminal handle, an app login, a tunnel connection). The claims are
//! made, *then* the owner's access is checked once more, then they are signed: a revocation
//! that the check missed happened after the token's `iat`, and the proxy, told of it with
//! that time, refuses the token ([`revoke`]).
//!
//! The gateway calls each proxy with its key: to end a revoked user's connections
//! ([`revoke`]) and to collect the sessions' traffic for the idle timeout
//! ([`run_activity`]).

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::sessions::store::{self, AppPort, SessionRow};
use crate::AppState;
use std::time::Duration;
use wsproxy::token::{self, Claims, Key, Target};

/// How often the proxies' activity is collected (the reaper's pace).
const ACTIVITY_EVERY: Duration = Duration::from_secs(2);

/// A node's proxy: its name, public URL and key.
#[derive(Debug, Clone)]
pub struct NodeProxy {
    pub node: String,
    pub url: String,
    key: Key,
}

type ProxyRow = (String, Option<String>, Option<String>);

fn from_row((node, url, key): ProxyRow) -> Option<NodeProxy> {
    Some(NodeProxy {
        node,
        url: url?,
        key: Key::new(key?),
    })
}

/// The proxy of node `name`, if it has one.
pub async fn of_node(db: &Db, name: &str) -> AppResult<Option<NodeProxy>> {
    let r: Option<ProxyRow> =
        sqlx::query_as("SELECT name, proxy_url, proxy_key FROM nodes WHERE name = $1")
            .bind(name)
            .fetch_optional(db)
            .await?;
    Ok(r.and_then(from_row))
}

/// The proxy of the node a session runs on, if it has one.
pub async fn of_session(state: &AppState, row: &SessionRow) -> AppResult<Option<NodeProxy>> {
    match row.node.as_deref() {
        Some(n) => of_node(&state.db, n).await,
        None => Ok(None),
    }
}

/// Every node's proxy.
pub async fn all(db: &Db) -> sqlx::Result<Vec<NodeProxy>> {
    let rows: Vec<ProxyRow> = sqlx::query_as(
        "SELECT name, proxy_url, proxy_key FROM nodes WHERE proxy_url IS NOT NULL ORDER BY name",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().filter_map(from_row).collect())
}

/// `http://h:p` → `ws://h:p` (and https → wss).
fn ws(url: &str) -> String {
    url.replacen("http", "ws", 1)
}

impl NodeProxy {
    /// Claims for `target` of the session's container, for its owner.
    fn claims(&self, target: Target, row: &SessionRow) -> AppResult<Claims> {
        let container = row.container_id.as_deref().ok_or_else(|| {
            AppError::conflict("The session has no container yet; try again when it runs.")
        })?;
        Ok(Claims::new(
            &self.node,
            target,
            &row.id,
            &row.owner_id,
            container,
        ))
    }

    /// Signs `claims` unless the owner's access went after they were made.
    fn sign(&self, claims: &Claims, access: &wsproxy::Watch) -> AppResult<String> {
        if access.is_revoked() {
            return Err(AppError::new(
                api::ProblemType::Unauthenticated,
                "Your access was revoked; log in again.",
            ));
        }
        Ok(token::sign(&self.key, claims))
    }

    /// A websocket URL naming a new terminal handle on the node's proxy.
    pub fn terminal_url(&self, row: &SessionRow, access: &wsproxy::Watch) -> AppResult<String> {
        let handle = uuid::Uuid::new_v4().to_string();
        let mut claims = self.claims(Target::Terminal, row)?;
        claims.handle = Some(handle.clone());
        let t = self.sign(&claims, access)?;
        Ok(format!("{}/terminals/{handle}?token={t}", ws(&self.url)))
    }

    /// A one-use link that logs the owner into `app`: the proxy spends it and sends the
    /// browser on to the app's own origin there.
    pub fn app_url(
        &self,
        row: &SessionRow,
        app: &AppPort,
        access: &wsproxy::Watch,
    ) -> AppResult<String> {
        let mut claims = self.claims(Target::App, row)?;
        claims.app = Some(app.name.clone());
        claims.port = Some(app.port);
        let t = self.sign(&claims, access)?;
        Ok(format!("{}/__berth/open?token={t}", self.url))
    }

    /// A websocket URL for one TCP connection to `app` through the proxy (one use).
    pub fn tunnel_url(
        &self,
        row: &SessionRow,
        app: &AppPort,
        access: &wsproxy::Watch,
    ) -> AppResult<String> {
        let mut claims = self.claims(Target::Tunnel, row)?;
        claims.app = Some(app.name.clone());
        claims.port = Some(app.port);
        let t = self.sign(&claims, access)?;
        Ok(format!("{}/tunnel?token={t}", ws(&self.url)))
    }
}

/// After `user_id`'s access was taken away (and `state.revocations` told): every node proxy
/// ends what the user holds open there and refuses their tokens issued until now. Tried a few
/// times in the background; a proxy that cannot be told keeps nothing past the tokens' minute
/// but its app logins, which end when it is told or restarts.
pub fn revoke(state: &AppState, user_id: &str) {
    let at = token::now_ms();
    let (db, user) = (state.db.clone(), user_id.to_string());
    state.lifecycle.background(async move {
        let proxies = match all(&db).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list node proxies to revoke a user");
                return;
            }
        };
        for p in proxies {
            let mut tries = 0;
            loop {
                match wsproxy::remote::client::revoke(&p.url, &p.key, &user, at).await {
                    Ok(()) => break,
                    Err(e) if tries >= 4 => {
                        tracing::warn!(node = %p.node, error = %e, "the node's proxy was not told of a revocation");
                        break;
                    }
                    Err(_) => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_secs(1 << tries)).await;
                    }
                }
            }
        }
    });
}

/// Collects, every [`ACTIVITY_EVERY`], the sessions' traffic through each node proxy and
/// records it as their activity (for the idle timeout). Runs until shutdown.
pub async fn run_activity(db: Db) {
    loop {
        tokio::time::sleep(ACTIVITY_EVERY).await;
        let proxies = match all(&db).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list node proxies to collect their activity");
                continue;
            }
        };
        for p in proxies {
            let seen = match wsproxy::remote::client::take_activity(&p.url, &p.key).await {
                Ok(s) => s,
                Err(e) => {
                    // Its sessions may be ended as idle while this lasts: worth saying.
                    tracing::warn!(node = %p.node, error = %e, "cannot collect the activity of the node's proxy");
                    continue;
                }
            };
            for (session, at) in seen {
                // Only sessions placed on that node: a proxy speaks for its node alone.
                let on_node: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM sessions WHERE id = $1 AND node = $2")
                        .bind(&session)
                        .bind(&p.node)
                        .fetch_optional(&db)
                        .await
                        .ok()
                        .flatten();
                if on_node.is_some() {
                    let at = crate::db::format_time(at.into());
                    if let Err(e) = store::touch(&db, &session, &at).await {
                        tracing::warn!(error = %e, "cannot record a session's activity");
                    }
                }
            }
        }
    }
}
