//! The replicas' bus (PostgreSQL only): `LISTEN`/`NOTIFY` on the channel [`CHANNEL`], so that
//! what one replica does reaches the others.
//!
//! - A session changed: `"<event id> j <owner id> <session JSON>"`, the JSON as the replica
//!   that changed it read it; when that would pass PostgreSQL's 8000-byte payload limit
//!   ([`MAX_INLINE`]), `"<event id> r <session id>"` and each replica reads the session again.
//!   Every replica — the sender too — publishes it to its own event streams under that event
//!   id, so browsers see the same events under the same ids in the same order on every replica
//!   (PostgreSQL delivers notifications in commit order; ids come from the `event_ids`
//!   sequence, taken under an advisory transaction lock so that id order is commit order), and
//!   `Last-Event-ID` resumes through any replica within the ring.
//! - `"pass <kind> <owner id> <JSON>"`: a passing event without an id of its own — a live
//!   stats sample (`stats`, which every replica also keeps for `GET /sessions/{id}/stats`) or
//!   a policy warning (`ending`); see `Lifecycle::passing_here`.
//! - `"wake"`: look at the queue now (a session was queued or resources were freed on some
//!   replica); only the leader's scheduler acts on it.
//! - `"revoke"`: a user's access was taken away. The revocation itself is a row of the
//!   `revocations` table, written in the same transaction as the change that takes the access
//!   ([`Bus::record`]; `seq` taken under [`REVOKE_LOCK`], held to the commit, so its order is
//!   commit order). On the notification every replica applies the rows past the last one it
//!   saw that another replica made ([`catch_up`]: `wsproxy::Revocations::revoke` ends what the
//!   user holds open there; the maker did so already). It does the same after each reconnect
//!   and every [`CATCH_UP_EVERY`], so a revocation whose notification was lost (a cut
//!   listening connection, a send that failed) is applied within seconds, not never.
//!
//! One task sends, in batches of what was queued: revocations first, then session changes and
//! wakes in order, then at most the newest [`MAX_PASSING`] passing events; passing events are
//! the only ones ever dropped (behind a slow or absent database), so the queue stays bounded.
//!
//! Each replica listens on a connection of its own that reconnects after PostgreSQL restarts.
//! Session notifications sent while a replica was cut off are not replayed to it: its
//! browsers' streams keep going and show the next change of each session; the leader runs a
//! pass after every reconnect; revocations are caught up (above).

use crate::db::Db;
use crate::sessions::lifecycle::Lifecycle;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The notification channel.
pub const CHANNEL: &str = "berth";
/// Serialises event ids with commit order (see the module doc).
const EVENT_LOCK: i64 = 0x62_65_72_74_69;
/// Serialises revocation numbers with commit order.
const REVOKE_LOCK: i64 = 0x62_65_72_74_72;
/// How often a replica looks for revocations it missed, beside notifications and reconnects.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(5);

/// The longest inline payload (after the event id), below PostgreSQL's 8000 bytes.
const MAX_INLINE: usize = 7900;

/// What one replica tells the others.
#[derive(Debug)]
enum Msg {
    /// The payload after the event id.
    Session(String),
    /// The whole payload.
    Passing(String),
    Wake,
    /// Revocations were recorded.
    Revoke,
}

/// The sending half, held by the lifecycle; sends in order from one task.
pub struct Bus {
    tx: mpsc::UnboundedSender<Msg>,
    /// This replica on the bus (the `origin` of the revocations it records).
    me: String,
}

impl Bus {
    /// Tells every replica (this one too) that session `id` of `owner_id` is now `json`.
    pub fn session(&self, id: &str, owner_id: &str, json: &str) {
        let inline = format!("j {owner_id} {json}");
        let payload = if inline.len() <= MAX_INLINE {
            inline
        } else {
            format!("r {id}")
        };
        let _ = self.tx.send(Msg::Session(payload));
    }

    /// Tells every replica (this one too) a passing event (no id of its own) for `owner_id`.
    pub fn passing(&self, kind: &str, owner_id: &str, json: &str) {
        let _ = self
            .tx
            .send(Msg::Passing(format!("pass {kind} {owner_id} {json}")));
    }

    /// Asks the leader for a scheduling pass.
    pub fn wake(&self) {
        let _ = self.tx.send(Msg::Wake);
    }

    /// Records in `tx`, the transaction that takes `user_id`'s access away, that the other
    /// replicas must end what the user holds open. Call just before the commit (the lock it
    /// takes is held until then); after the commit, [`Bus::revoke`].
    pub async fn record(&self, tx: &mut sqlx::AnyConnection, user_id: &str) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO revocations (user_id, origin, at)
             SELECT $1, $2, $3 FROM (SELECT pg_advisory_xact_lock($4)) AS l",
        )
        .bind(user_id)
        .bind(&self.me)
        .bind(crate::db::now())
        .bind(REVOKE_LOCK)
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Tells the other replicas to apply the revocations recorded (see [`Bus::record`]).
    pub fn revoke(&self) {
        let _ = self.tx.send(Msg::Revoke);
    }
}

/// Starts the bus on `db`: the sender (one task, in order), this replica's listener and its
/// periodic revocation catch-up, all until shutdown under `Lifecycle::background`.
pub async fn start(
    db: &Db,
    lifecycle: Arc<Lifecycle>,
    revocations: Arc<wsproxy::Revocations>,
) -> anyhow::Result<Arc<Bus>> {
    let url = db.connect_options().database_url.to_string();
    // PostgreSQL's own driver: `pg_notify` returns `void`, which the Any driver cannot carry.
    let pg = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(&url)?;
    // Revocations made before this replica serves concern nothing it holds.
    let (seen,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM revocations")
        .fetch_one(&pg)
        .await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let me = uuid::Uuid::new_v4().simple().to_string();
    lifecycle.background(send_all(pg.clone(), rx));
    let here = Arc::new(Here {
        lifecycle: lifecycle.clone(),
        revocations,
        me: me.clone(),
        pg,
        seen: tokio::sync::Mutex::new(seen),
    });
    lifecycle.background(listen(url, here.clone()));
    lifecycle.background(catch_up_every(here));
    Ok(Arc::new(Bus { tx, me }))
}

/// What a notification acts on in this replica.
struct Here {
    lifecycle: Arc<Lifecycle>,
    revocations: Arc<wsproxy::Revocations>,
    me: String,
    pg: PgPool,
    /// The `seq` of the last revocation looked at here (applied, or this replica's own).
    seen: tokio::sync::Mutex<i64>,
}

/// Applies every revocation past the last one seen here that another replica made. One
/// applied twice only ends again what the user opened in between.
async fn catch_up(here: &Here) {
    let mut seen = here.seen.lock().await;
    let rows: Vec<(i64, String, String)> = match sqlx::query_as(
        "SELECT seq, user_id, origin FROM revocations WHERE seq > $1 ORDER BY seq",
    )
    .bind(*seen)
    .fetch_all(&here.pg)
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "bus: cannot read the revocations; trying again later");
            return;
        }
    };
    for (seq, user, origin) in rows {
        if origin != here.me {
            tracing::info!(user = %user, seq, "bus: applying a revocation this replica had not heard of");
            here.revocations.revoke(&user);
        }
        *seen = seq;
    }
}

/// [`catch_up`] every [`CATCH_UP_EVERY`]: a notification can be lost without the connection
/// saying so.
async fn catch_up_every(here: Arc<Here>) {
    let stop = here.lifecycle.shutdown().clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CATCH_UP_EVERY) => catch_up(&here).await,
        }
    }
}

/// Passing events (stats samples, warnings) sent from one batch at most: older ones queued
/// behind a slow or absent database are dropped (the next sample replaces them), so the queue
/// cannot grow without bound while PostgreSQL is away.
const MAX_PASSING: usize = 256;

/// One batch of what was queued, in sending order: revocations first (a user cut off must
/// not wait behind stats), then session changes and one wake in the order they came, then
/// the newest [`MAX_PASSING`] passing events. Returns the batch and how many were dropped.
fn order(queued: Vec<Msg>) -> (Vec<Msg>, usize) {
    let (mut revokes, mut changes, mut passing) = (Vec::new(), Vec::new(), Vec::new());
    for m in queued {
        match m {
            Msg::Revoke => revokes.push(m),
            Msg::Wake if changes.iter().any(|c| matches!(c, Msg::Wake)) => {}
            Msg::Session(_) | Msg::Wake => changes.push(m),
            Msg::Passing(_) => passing.push(m),
        }
    }
    let dropped = passing.len().saturating_sub(MAX_PASSING);
    revokes.extend(changes);
    revokes.extend(passing.into_iter().skip(dropped));
    (revokes, dropped)
}

async fn send_all(db: PgPool, mut rx: mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut queued = vec![first];
        while let Ok(m) = rx.try_recv() {
            queued.push(m);
        }
        let (batch, mut dropped) = order(queued);
        let mut failed = false;
        for m in batch {
            // With the database away, passing events still queued in this batch are dropped
            // rather than each waiting out the pool's timeout; changes and revocations are
            // still tried.
            if failed && matches!(m, Msg::Passing(_)) {
                dropped += 1;
                continue;
            }
            let res = match &m {
                Msg::Session(payload) => sqlx::query(
                    "SELECT pg_notify($1, CAST(nextval('event_ids') AS TEXT) || ' ' || $2) \
                     FROM (SELECT pg_advisory_xact_lock($3)) AS l",
                )
                .bind(CHANNEL)
                .bind(payload)
                .bind(EVENT_LOCK)
                .execute(&db)
                .await
                .map(|_| ()),
                Msg::Wake => sqlx::query("SELECT pg_notify($1, 'wake')")
                    .bind(CHANNEL)
                    .execute(&db)
                    .await
                    .map(|_| ()),
                // Lost, it costs at most `CATCH_UP_EVERY`: the rows are committed already.
                Msg::Revoke => sqlx::query("SELECT pg_notify($1, 'revoke')")
                    .bind(CHANNEL)
                    .execute(&db)
                    .await
                    .map(|_| ()),
                Msg::Passing(payload) => sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(&db)
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = res {
                failed = true;
                tracing::warn!(error = %e, message = ?m, "cannot notify the other replicas");
            }
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "bus: passing events (stats samples, warnings) dropped behind a slow database"
            );
        }
    }
}

/// This replica's listener: reconnects when the connection goes, and asks for a scheduling
/// pass after each reconnect (a wake may have been missed).
async fn listen(url: String, here: Arc<Here>) {
    let lifecycle = &here.lifecycle;
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "bus: cannot connect to listen; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "bus: cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tracing::debug!("bus: listening");
        lifecycle.wake_here();
        // What was revoked while this replica was not listening.
        catch_up(&here).await;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => handle(&here, n.payload()).await,
                // The connection went: connect and listen again, then catch up.
                Ok(None) => {
                    tracing::warn!("bus: the listening connection was lost; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bus: listening failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

async fn handle(here: &Here, payload: &str) {
    let lifecycle = &here.lifecycle;
    if payload == "wake" {
        lifecycle.wake_here();
        return;
    }
    if let Some(rest) = payload.strip_prefix("pass ") {
        let mut parts = rest.splitn(3, ' ');
        if let (Some(kind), Some(owner), Some(json)) = (parts.next(), parts.next(), parts.next()) {
            lifecycle.passing_here(kind, owner, json.to_string());
        }
        return;
    }
    if payload == "revoke" {
        catch_up(here).await;
        return;
    }
    let mut parts = payload.splitn(3, ' ');
    let (Some(seq), Some(form), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return;
    };
    match form {
        "j" => {
            if let Some((owner, json)) = rest.split_once(' ') {
                lifecycle.publish_json(Some(seq), owner, json.to_string());
            }
        }
        "r" => lifecycle.publish_here(rest, Some(seq)).await,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(batch: &[Msg]) -> Vec<String> {
        batch
            .iter()
            .map(|m| match m {
                Msg::Session(p) | Msg::Passing(p) => p.clone(),
                Msg::Revoke => "revoke".into(),
                Msg::Wake => "wake".into(),
            })
            .collect()
    }

    #[test]
    fn revocations_go_first_wakes_fold_and_only_the_newest_passing_events_are_kept() {
        let mut queued = vec![
            Msg::Passing("pass stats 0".into()),
            Msg::Session("j a 1".into()),
            Msg::Wake,
        ];
        queued.extend((1..=MAX_PASSING + 9).map(|i| Msg::Passing(format!("pass stats {i}"))));
        queued.push(Msg::Wake);
        queued.push(Msg::Revoke);
        queued.push(Msg::Session("j a 2".into()));
        let (batch, dropped) = order(queued);
        assert_eq!(dropped, 10);
        let k = kinds(&batch);
        assert_eq!(k[..4], ["revoke", "j a 1", "wake", "j a 2"]);
        assert_eq!(k.len(), 4 + MAX_PASSING);
        assert_eq!(k[4], "pass stats 10");
        assert_eq!(
            k.last().unwrap(),
            &format!("pass stats {}", MAX_PASSING + 9)
        );
    }
}
