//! Sharing a folder: invitations (send, inbox, accept, decline), members (list, unshare),
//! leaving, and cloning into a new personal folder as a background job.

use super::{store, to_api};
use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, AppResult};
use crate::{db, AppState};
use api::vfolders::{
    CloneRequest, FolderKind, Invitation, InviteRequest, Job, Member, Permission, VFolder,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/vfolders/{id}/invitations", get(sent).post(invite))
        .route("/invitations", get(inbox))
        .route("/invitations/{id}/accept", post(accept))
        .route("/invitations/{id}/decline", post(decline))
        .route("/vfolders/{id}/members", get(members))
        .route("/vfolders/{id}/members/{user}", delete(unshare))
        .route("/vfolders/{id}/leave", post(leave))
        .route("/vfolders/{id}/clone", post(clone))
        .route("/jobs/{id}", get(job))
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: String,
    vfolder_id: String,
    vfolder_name: String,
    inviter: String,
    invitee: String,
    invitee_id: String,
    permission: String,
    state: String,
    created_at: String,
}

impl InvitationRow {
    fn to_api(&self) -> Invitation {
        Invitation {
            id: self.id.clone(),
            vfolder: self.vfolder_id.clone(),
            vfolder_name: self.vfolder_name.clone(),
            inviter: self.inviter.clone(),
            invitee: self.invitee.clone(),
            permission: Permission::parse(&self.permission).unwrap_or(Permission::Ro),
            state: self.state.clone(),
            created_at: self.created_at.clone(),
        }
    }
}

const SELECT_INVITATION: &str = "
SELECT i.id, i.vfolder_id, v.name AS vfolder_name, a.username AS inviter, b.username AS invitee,
       i.invitee_id, i.permission, i.state, i.created_at
FROM vfolder_invitations i
JOIN vfolders v ON v.id = i.vfolder_id
JOIN users a ON a.id = i.inviter_id
JOIN users b ON b.id = i.invitee_id";

/// A user folder the caller owns (only user folders are shared by invitation; project
/// folders are shared with the project).
async fn owned_user_folder(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
) -> AppResult<store::FolderRow> {
    let row = store::require(&state.db, user, id, Permission::Owner).await?;
    super::home::refuse_sharing(&row)?;
    if row.kind != "user" {
        return Err(AppError::conflict(format!(
            "Folder {} belongs to a project; every member of the project can use it already.",
            row.name
        )));
    }
    Ok(row)
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/invitations",
    operation_id = "invite",
    tag = "sharing",
    summary = "Invite a user with ro, rw or wd (owner of a user folder)",
    params(("id" = String, Path, description = "folder id or name")),
    request_body = api::vfolders::InviteRequest,
    responses((status = 201, description = "Invited", body = api::vfolders::Invitation), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn invite(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> AppResult<(StatusCode, Json<Invitation>)> {
    let perm =
        Permission::parse_grant(&req.permission).map_err(|m| AppError::field("permission", m))?;
    let name = req.user.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(AppError::field(
            "user",
            "Name the user to invite by username or id.",
        ));
    }
    let row = owned_user_folder(&state, &user, &id).await?;
    let invitee: Option<(String, String)> = sqlx::query_as(
        "SELECT id, username FROM users WHERE (id = $1 OR username = $2) AND disabled = 0",
    )
    .bind(name)
    .bind(name)
    .fetch_optional(&state.db)
    .await?;
    let Some((invitee_id, invitee_name)) = invitee else {
        return Err(AppError::field(
            "user",
            format!("There is no user named \"{}\".", name.escape_default()),
        ));
    };
    if invitee_id == user.id {
        return Err(AppError::field("user", "You own this folder already."));
    }
    let member: Option<(String,)> = sqlx::query_as(
        "SELECT permission FROM vfolder_members WHERE vfolder_id = $1 AND user_id = $2",
    )
    .bind(&row.id)
    .bind(&invitee_id)
    .fetch_optional(&state.db)
    .await?;
    if let Some((p,)) = member {
        return Err(AppError::conflict(format!(
            "Folder {} is already shared with {invitee_name} ({}); unshare it first to change that.",
            row.name,
            Permission::parse(&p).unwrap_or(Permission::Ro).describe()
        )));
    }
    let pending: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM vfolder_invitations WHERE vfolder_id = $1 AND invitee_id = $2 AND state = 'PENDING'",
    )
    .bind(&row.id)
    .bind(&invitee_id)
    .fetch_optional(&state.db)
    .await?;
    if pending.is_some() {
        return Err(AppError::conflict(format!(
            "User {invitee_name} already has an invitation to folder {} waiting.",
            row.name
        )));
    }
    let inv = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO vfolder_invitations(id, vfolder_id, inviter_id, invitee_id, permission, state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'PENDING', $6)",
    )
    .bind(&inv)
    .bind(&row.id)
    .bind(&user.id)
    .bind(&invitee_id)
    .bind(perm.as_str())
    .bind(db::now())
    .execute(&state.db)
    .await?;
    let r: InvitationRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_INVITATION} WHERE i.id = $1"
    )))
    .bind(&inv)
    .fetch_one(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(r.to_api())))
}

#[utoipa::path(
    get,
    path = "/vfolders/{id}/invitations",
    operation_id = "list_sent_invitations",
    tag = "sharing",
    summary = "Invitations sent for a folder (owner)",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 200, description = "OK", body = Vec<api::vfolders::Invitation>), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn sent(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<Invitation>>> {
    let row = owned_user_folder(&state, &user, &id).await?;
    let rows: Vec<InvitationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_INVITATION} WHERE i.vfolder_id = $1 ORDER BY i.created_at DESC LIMIT 500"
    )))
    .bind(&row.id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(rows.iter().map(InvitationRow::to_api).collect()))
}

#[utoipa::path(
    get,
    path = "/invitations",
    operation_id = "list_invitations",
    tag = "sharing",
    summary = "My pending invitations",
    responses((status = 200, description = "OK", body = Vec<api::vfolders::Invitation>))
)]
async fn inbox(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Json<Vec<Invitation>>> {
    let rows: Vec<InvitationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_INVITATION} WHERE i.invitee_id = $1 AND i.state = 'PENDING' AND v.deleted_at IS NULL
         ORDER BY i.created_at DESC"
    )))
    .bind(&user.id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(rows.iter().map(InvitationRow::to_api).collect()))
}

/// A pending invitation to the caller; anything else is missing.
async fn my_invitation(state: &AppState, user: &CurrentUser, id: &str) -> AppResult<InvitationRow> {
    let r: Option<InvitationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_INVITATION} WHERE i.id = $1 AND v.deleted_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    match r {
        Some(r) if r.invitee_id == user.id => {
            if r.state != "PENDING" {
                return Err(AppError::conflict(format!(
                    "This invitation was already {}.",
                    r.state.to_ascii_lowercase()
                )));
            }
            Ok(r)
        }
        _ => Err(AppError::not_found("invitation")),
    }
}

#[utoipa::path(
    post,
    path = "/invitations/{id}/accept",
    operation_id = "accept_invitation",
    tag = "sharing",
    summary = "Accept: the folder is shared with me",
    params(("id" = String, Path, description = "invitation id")),
    responses((status = 200, description = "OK", body = api::vfolders::VFolder), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn accept(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<VFolder>> {
    let inv = my_invitation(&state, &user, &id).await?;
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE vfolder_invitations SET state = 'ACCEPTED' WHERE id = $1")
        .bind(&inv.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO vfolder_members(vfolder_id, user_id, permission) VALUES ($1, $2, $3)
         ON CONFLICT(vfolder_id, user_id) DO UPDATE SET permission = excluded.permission",
    )
    .bind(&inv.vfolder_id)
    .bind(&user.id)
    .bind(&inv.permission)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let row = store::visible(&state.db, &user, &inv.vfolder_id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

#[utoipa::path(
    post,
    path = "/invitations/{id}/decline",
    operation_id = "decline_invitation",
    tag = "sharing",
    summary = "Decline",
    params(("id" = String, Path, description = "invitation id")),
    responses((status = 204, description = "Declined"), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn decline(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let inv = my_invitation(&state, &user, &id).await?;
    sqlx::query("UPDATE vfolder_invitations SET state = 'DECLINED' WHERE id = $1")
        .bind(&inv.id)
        .execute(&state.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/vfolders/{id}/members",
    operation_id = "list_members",
    tag = "sharing",
    summary = "Users a folder is shared with (owner)",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 200, description = "OK", body = Vec<api::vfolders::Member>), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn members(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<Member>>> {
    let row = owned_user_folder(&state, &user, &id).await?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.user_id, u.username, m.permission FROM vfolder_members m
         JOIN users u ON u.id = m.user_id WHERE m.vfolder_id = $1 ORDER BY u.username",
    )
    .bind(&row.id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(user_id, username, p)| Member {
                user_id,
                username,
                permission: Permission::parse(&p).unwrap_or(Permission::Ro),
            })
            .collect(),
    ))
}

#[utoipa::path(
    delete,
    path = "/vfolders/{id}/members/{user}",
    operation_id = "unshare",
    tag = "sharing",
    summary = "Unshare (owner)",
    params(("id" = String, Path, description = "folder id or name"), ("user" = String, Path, description = "user id or username")),
    responses((status = 204, description = "Unshared"), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn unshare(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, who)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let row = owned_user_folder(&state, &user, &id).await?;
    let mut tx = state.db.begin().await?;
    let gone = sqlx::query(
        "DELETE FROM vfolder_members WHERE vfolder_id = $1
           AND user_id = (SELECT id FROM users WHERE id = $2 OR username = $3)",
    )
    .bind(&row.id)
    .bind(&who)
    .bind(&who)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let cancelled = sqlx::query(
        "UPDATE vfolder_invitations SET state = 'CANCELLED' WHERE vfolder_id = $1 AND state = 'PENDING'
           AND invitee_id = (SELECT id FROM users WHERE id = $2 OR username = $3)",
    )
    .bind(&row.id)
    .bind(&who)
    .bind(&who)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if gone + cancelled == 0 {
        return Err(AppError::new(
            api::ProblemType::NotFound,
            format!(
                "Folder {} is not shared with \"{}\".",
                row.name,
                who.escape_default()
            ),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/leave",
    operation_id = "leave_vfolder",
    tag = "sharing",
    summary = "Leave a folder shared with me",
    params(("id" = String, Path, description = "folder id or name")),
    responses((status = 204, description = "Left"), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn leave(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let row = store::visible(&state.db, &user, &id).await?;
    match (row.kind.as_str(), row.permission()) {
        (_, Permission::Owner) => Err(AppError::conflict(format!(
            "You own folder {}; delete it instead of leaving it.",
            row.name
        ))),
        ("project", _) => Err(AppError::conflict(format!(
            "Folder {} comes with your project membership; it cannot be left on its own.",
            row.name
        ))),
        _ => {
            sqlx::query("DELETE FROM vfolder_members WHERE vfolder_id = $1 AND user_id = $2")
                .bind(&row.id)
                .bind(&user.id)
                .execute(&state.db)
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    kind: String,
    state: String,
    done_bytes: i64,
    total_bytes: i64,
    vfolder_id: Option<String>,
    error: Option<String>,
    created_at: String,
    finished_at: Option<String>,
}

impl JobRow {
    fn to_api(&self) -> Job {
        Job {
            id: self.id.clone(),
            kind: self.kind.clone(),
            state: self.state.clone(),
            done_bytes: self.done_bytes.max(0) as u64,
            total_bytes: self.total_bytes.max(0) as u64,
            vfolder: self.vfolder_id.clone(),
            error: self.error.clone(),
            created_at: self.created_at.clone(),
            finished_at: self.finished_at.clone(),
        }
    }
}

async fn load_job(state: &AppState, user: &CurrentUser, id: &str) -> AppResult<JobRow> {
    let r: Option<JobRow> = sqlx::query_as(
        "SELECT id, kind, state, done_bytes, total_bytes, vfolder_id, error, created_at, finished_at
         FROM jobs WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(&user.id)
    .fetch_optional(&state.db)
    .await?;
    r.ok_or_else(|| AppError::not_found("job"))
}

#[utoipa::path(
    get,
    path = "/jobs/{id}",
    operation_id = "get_job",
    tag = "sharing",
    summary = "A background job's progress",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "OK", body = api::vfolders::Job), (status = 404, response = crate::openapi::NotFound))
)]
async fn job(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> AppResult<Json<Job>> {
    Ok(Json(load_job(&state, &user, &id).await?.to_api()))
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/clone",
    operation_id = "clone_vfolder",
    tag = "sharing",
    summary = "Clone into a new folder of mine (a background job)",
    params(("id" = String, Path, description = "folder id or name")),
    request_body = api::vfolders::CloneRequest,
    responses((status = 202, description = "The job", body = api::vfolders::Job), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn clone(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CloneRequest>,
) -> AppResult<(StatusCode, Json<Job>)> {
    api::vfolders::validate_name(&req.name)
        .and_then(|()| api::vfolders::check_not_home_name(&req.name))
        .map_err(|m| AppError::field("name", m))?;
    let src = store::require(&state.db, &user, &id, Permission::Ro).await?;
    if src.state != "READY" {
        return Err(AppError::conflict(format!(
            "Folder {} is still being filled by a clone; clone it when that finishes.",
            src.name
        )));
    }
    super::check_folder_count(&state, &user.id).await?;
    let total = super::folder_usage(&state, &src.id).await;
    let quota = crate::policy::effective(&state.db, &user.id)
        .await?
        .policy
        .vfolder_quota_bytes;
    if let Some(q) = quota.filter(|q| total > *q) {
        return Err(AppError::new(
            api::ProblemType::Quota,
            format!(
                "Folder {} holds {}, more than your per-folder quota of {}.",
                src.name,
                api::Bytes(total).human(),
                api::Bytes(q).human()
            ),
        ));
    }
    let new_id = super::insert_folder(
        &state,
        &req.name,
        FolderKind::User,
        Some(&user.id),
        None,
        "CLONING",
    )
    .await?;
    let job_id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO jobs(id, user_id, kind, state, total_bytes, vfolder_id, created_at)
         VALUES ($1, $2, 'clone', 'RUNNING', $3, $4, $5)",
    )
    .bind(&job_id)
    .bind(&user.id)
    .bind(total as i64)
    .bind(&new_id)
    .bind(db::now())
    .execute(&state.db)
    .await?;
    tokio::spawn(run_clone(
        state.clone(),
        job_id.clone(),
        src.id.clone(),
        new_id,
        quota,
    ));
    Ok((
        StatusCode::ACCEPTED,
        Json(load_job(&state, &user, &job_id).await?.to_api()),
    ))
}

/// Copies the folder on the blocking pool, writing progress about every 200 ms; on failure
/// the half-made folder is removed.
async fn run_clone(state: AppState, job: String, src: String, dst: String, quota: Option<u64>) {
    let done = Arc::new(AtomicU64::new(0));
    let storage = state.storage.clone();
    let counter = done.clone();
    let (s, from, to) = (storage.clone(), src.clone(), dst.clone());
    let mut copy = tokio::task::spawn_blocking(move || {
        let (from, to) = (s.folder(&from), s.folder(&to));
        let (Ok(from), Ok(to)) = (from, to) else {
            return Err(std::io::Error::other("a folder's directory is missing"));
        };
        // The source may have grown since its usage was measured: the copy stops at the quota.
        from.copy_into(&to, |n| {
            counter.store(n, Ordering::Relaxed);
            quota.is_none_or(|q| n <= q)
        })
    });
    let result = loop {
        tokio::select! {
            r = &mut copy => break r,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let _ = sqlx::query("UPDATE jobs SET done_bytes = $1, beat_at = $2 WHERE id = $3")
                    .bind(done.load(Ordering::Relaxed) as i64)
                    .bind(db::now())
                    .bind(&job)
                    .execute(&state.db)
                    .await;
            }
        }
    };
    let done = done.load(Ordering::Relaxed) as i64;
    let outcome = match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) if quota.is_some_and(|q| done as u64 > q) => Err(format!(
            "The copy stopped at your per-folder quota of {}: the folder grew while it was copied.",
            api::Bytes(quota.unwrap_or_default()).human()
        )),
        Ok(Err(e)) => Err(format!("The copy failed: {e}.")),
        Err(e) => Err(format!("The copy stopped: {e}.")),
    };
    match outcome {
        Ok(()) => {
            let _ = sqlx::query("UPDATE vfolders SET state = 'READY' WHERE id = $1")
                .bind(&dst)
                .execute(&state.db)
                .await;
            let _ = sqlx::query(
                "UPDATE jobs SET state = 'DONE', done_bytes = $1, total_bytes = CASE WHEN total_bytes > $2 THEN total_bytes ELSE $2 END, finished_at = $3 WHERE id = $4",
            )
            .bind(done)
            .bind(done)
            .bind(db::now())
            .bind(&job)
            .execute(&state.db)
            .await;
        }
        Err(msg) => {
            tracing::warn!(job = %job, "clone failed: {msg}");
            let _ = tokio::task::spawn_blocking(move || storage.purge_folder(&dst)).await;
            fail_job(&state.db, &job, &msg).await;
        }
    }
}

async fn fail_job(db: &db::Db, job: &str, msg: &str) {
    let _ = sqlx::query(
        "DELETE FROM vfolders WHERE id = (SELECT vfolder_id FROM jobs WHERE id = $1) AND state = 'CLONING'",
    )
    .bind(job)
    .execute(db)
    .await;
    let _ =
        sqlx::query("UPDATE jobs SET state = 'FAILED', error = $1, finished_at = $2 WHERE id = $3")
            .bind(msg)
            .bind(db::now())
            .bind(job)
            .execute(db)
            .await;
}

/// At start (SQLite, one process): jobs that were running when berth stopped failed; their
/// half-made folders go.
pub async fn fail_interrupted_jobs(state: &AppState) -> AppResult<()> {
    fail_jobs_beating_before(state, None).await
}

/// How long a running job's heartbeat may be silent before the leader fails it (replicas: its
/// replica died); it beats every 200 ms.
pub const JOB_SILENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// With replicas (PostgreSQL), until shutdown: the leader fails every running job whose
/// heartbeat has been silent for [`JOB_SILENCE`] (the replica running it died), every 15 s.
pub async fn run_job_watch(state: AppState) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(15)).await;
        if !state.lifecycle.leads() {
            continue;
        }
        let before = time::OffsetDateTime::now_utc() - JOB_SILENCE;
        if let Err(e) = fail_jobs_beating_before(&state, Some(before)).await {
            tracing::warn!("cannot check running jobs: {e:?}");
        }
    }
}

/// Fails the running jobs (all, or those whose last beat is before `before`), removing their
/// half-made folders.
async fn fail_jobs_beating_before(
    state: &AppState,
    before: Option<time::OffsetDateTime>,
) -> AppResult<()> {
    let rows: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT id, vfolder_id, beat_at, created_at FROM jobs WHERE state = 'RUNNING'",
    )
    .fetch_all(&state.db)
    .await?;
    for (id, folder, beat, created) in rows {
        let last = db::parse_time(beat.as_deref().unwrap_or(&created));
        if let Some(before) = before {
            if last.is_none_or(|t| t >= before) {
                continue;
            }
        }
        if let Some(f) = folder {
            let storage = state.storage.clone();
            let _ = tokio::task::spawn_blocking(move || storage.purge_folder(&f)).await;
        }
        let why = if before.is_some() {
            "the berth replica running the copy stopped; clone the folder again."
        } else {
            "berth restarted while the copy ran; clone the folder again."
        };
        fail_job(&state.db, &id, why).await;
    }
    Ok(())
}
