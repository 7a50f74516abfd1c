//! `GET /api/v1/usage`: accounted core-, GiB-, GPU- and GPU-share-seconds per UTC day, per
//! user, project or node (admins; a user gets only their own sessions).
//!
//! Invariant: usage is derived at query time from durable rows, never counted in memory and
//! never stored twice. A session holds its allocation from `sessions.started_at` (when it
//! became `RUNNING`) until `sessions.terminated_at` (when it became `TERMINATED` or `ERROR`),
//! or until now while it has not ended. Both columns are written only by
//! `sessions::store::transition`, in the same statement that moves the status and the same
//! transaction as the history entry, so what is accounted survives a restart or a kill -9 of
//! the gateway and can never drift from the status history. The arithmetic (whole seconds,
//! split at UTC midnights, integer units) is `api::usage`'s, so every figure is exact.

use crate::auth::CurrentUser;
use crate::db;
use crate::error::{ApiQuery, AppError, AppResult};
use crate::AppState;
use api::usage::{self, Day, Held, UsageFormat, UsageGroupBy, UsageQuery, UsageReport};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/usage", get(usage))
}

/// A session that ran at some time the range may cover.
#[derive(sqlx::FromRow)]
struct RanRow {
    id: String,
    owner_id: String,
    owner_name: String,
    project_id: Option<String>,
    project_name: Option<String>,
    node: Option<String>,
    cpu_milli: i64,
    mem_bytes: i64,
    gpu: i64,
    gpu_shares: i64,
    started_at: String,
    terminated_at: Option<String>,
}

/// Unix seconds of an RFC 3339 time, rounded down to the second.
fn unix(t: &str) -> Option<i64> {
    db::parse_time(t).map(|t| t.unix_timestamp())
}

/// The sessions (of `owner`, or everyone's) that held resources at any time of the days
/// `from..=to`, as intervals ending at `now` while they have not ended.
async fn held(
    db: &db::Db,
    from: Day,
    to: Day,
    owner: Option<&str>,
    group_by: UsageGroupBy,
    now: i64,
) -> AppResult<Vec<Held>> {
    // Times are compared as text, which orders RFC 3339 UTC times to the second but not
    // between fractions (`…:00Z` sorts after `…:00.5Z`): a day of slack on each side keeps
    // every session that may overlap, and `api::usage::split_by_day` cuts them exactly.
    let after = format!("{}T00:00:00Z", from.plus(-1));
    let before = format!("{}T00:00:00Z", to.plus(2));
    let rows: Vec<RanRow> = sqlx::query_as(
        "SELECT s.id, s.owner_id, u.username AS owner_name, s.project_id, p.name AS project_name,
                s.node, s.cpu_milli, s.mem_bytes, s.gpu, s.gpu_shares, s.started_at, s.terminated_at
         FROM sessions s JOIN users u ON u.id = s.owner_id LEFT JOIN projects p ON p.id = s.project_id
         WHERE s.started_at IS NOT NULL AND s.started_at < $1
           AND (s.terminated_at IS NULL OR s.terminated_at >= $2)
           AND ($3 = 1 OR s.owner_id = $4)",
    )
    .bind(&before)
    .bind(&after)
    .bind(i64::from(owner.is_none()))
    .bind(owner.unwrap_or(""))
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(start) = unix(&r.started_at) else {
            tracing::warn!(session = %r.id, started_at = %r.started_at, "a session's start time does not parse; it is not accounted");
            continue;
        };
        let end = match r.terminated_at.as_deref() {
            None => now,
            Some(t) => match unix(t) {
                Some(t) => t,
                None => {
                    tracing::warn!(session = %r.id, terminated_at = %t, "a session's end time does not parse; it is not accounted");
                    continue;
                }
            },
        };
        let (group, name) = match group_by {
            UsageGroupBy::User => (Some(r.owner_id), Some(r.owner_name)),
            UsageGroupBy::Project => (r.project_id, r.project_name),
            UsageGroupBy::Node => (r.node.clone(), r.node),
        };
        out.push(Held {
            session: r.id,
            group,
            name,
            cpu_milli: r.cpu_milli.max(0) as u64,
            mem_bytes: r.mem_bytes.max(0) as u64,
            gpu: u32::try_from(r.gpu.max(0)).unwrap_or(u32::MAX),
            shares: u32::try_from(r.gpu_shares.max(0)).unwrap_or(u32::MAX),
            start,
            end,
        });
    }
    Ok(out)
}

/// Accounted usage per day and group.
#[utoipa::path(
    get,
    path = "/usage",
    operation_id = "usage",
    tag = "usage",
    summary = "Accounted core-, GiB-, GPU- and GPU-share-seconds per UTC day, per user, project or node (admins see everyone; a user only their own sessions)",
    description = "A session counts from when it became RUNNING until it ended (TERMINATED or ERROR), or until now while it runs; intervals are cut to whole seconds and split at UTC midnight. Figures are exact decimal strings: the rows of a group add up to its total exactly.",
    params(
        ("from" = Option<String>, Query, description = "First day, YYYY-MM-DD (UTC); default: 29 days before `to`"),
        ("to" = Option<String>, Query, description = "Last day, included, YYYY-MM-DD (UTC); default: today. At most 366 days from `from`"),
        ("group_by" = Option<String>, Query, description = "`user` (default), `project` or `node`, in any case"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv` (the rows, as a download)"),
    ),
    responses(
        (status = 200, description = "The report, or its rows as CSV with `format=csv`", content((api::usage::UsageReport = "application/json"), (String = "text/csv"))),
        (status = 400, response = crate::openapi::BadRequest)
    )
)]
pub(crate) async fn usage(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> AppResult<Response> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let range = q.resolve(Day::of_unix(now)).map_err(AppError::validation)?;
    let owner = (!user.is_admin()).then_some(user.id.as_str());
    let held = held(&state.db, range.from, range.to, owner, range.group_by, now).await?;
    let report: UsageReport = usage::report(&range, &held);
    Ok(match range.format {
        UsageFormat::Json => Json(report).into_response(),
        UsageFormat::Csv => {
            let file = format!(
                "attachment; filename=\"berth-usage-{}-{}-{}.csv\"",
                report.from,
                report.to,
                range.group_by.as_str()
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, file),
                ],
                report.to_csv(),
            )
                .into_response()
        }
    })
}
