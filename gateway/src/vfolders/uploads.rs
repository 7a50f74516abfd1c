//! Resumable uploads by the tus 1.0.0 protocol (core, creation, expiration, termination).
//!
//! An upload's bytes go to `DATA_DIR/uploads/ID`, appended as they arrive (never held in
//! memory beyond one body chunk); its length is reserved against the folder's quota at
//! creation. When the last byte arrives the file is hard-linked into the folder — which
//! refuses an existing file atomically, so an upload never overwrites — and the partial file
//! is removed. The offset is the partial file's length: whatever arrived before a connection
//! broke is kept, and `HEAD` tells the client where to resume. Abandoned uploads expire.

use super::store;
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::{db, AppState};
use api::vfolders::{normalize_entry_path, Permission};
use api::{Problem, ProblemType};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub const TUS_VERSION: &str = "1.0.0";
/// The largest upload accepted (1 TiB).
pub const MAX_SIZE: u64 = 1 << 40;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/vfolders/{id}/uploads", post(create).options(options))
        .route(
            "/vfolders/{id}/uploads/{upload}",
            axum::routing::head(head).patch(patch).delete(terminate),
        )
}

/// Uploads with a PATCH in progress: a second PATCH of the same upload is refused.
#[derive(Default)]
pub struct Writers(Mutex<HashSet<String>>);

struct WriterGuard(Arc<Writers>, String);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0 .0.lock() {
            set.remove(&self.1);
        }
    }
}

impl Writers {
    fn claim(self: &Arc<Self>, id: &str) -> Option<WriterGuard> {
        let mut set = self.0.lock().ok()?;
        set.insert(id.to_string())
            .then(|| WriterGuard(self.clone(), id.to_string()))
    }
}

fn tus_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn with_tus(mut resp: Response) -> Response {
    tus_headers(&mut resp);
    resp
}

/// A tus request must name the protocol version (412 otherwise, with the version we speak).
fn check_version(headers: &HeaderMap) -> AppResult<()> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => {
            let p = Problem {
                kind: "/problems/precondition-failed".into(),
                title: "Unsupported tus version".into(),
                status: 412,
                detail: format!(
                    "Send Tus-Resumable: {TUS_VERSION}; berth speaks tus {TUS_VERSION}."
                ),
                errors: vec![],
            };
            Err(AppError::Problem(p))
        }
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> AppResult<Option<u64>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                AppError::field(
                    name,
                    format!("The {name} header must be a whole number of bytes."),
                )
            }),
    }
}

/// Decodes an `Upload-Metadata` value: base64 in the standard alphabet (tus 1.0) or the
/// URL-safe one, with or without padding; `None` when it is neither.
fn metadata_value(v: &str) -> Option<Vec<u8>> {
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::Engine;
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(&STANDARD, LENIENT);
    const URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(&URL_SAFE, LENIENT);
    STANDARD_ANY
        .decode(v)
        .or_else(|_| URL_SAFE_ANY.decode(v))
        .ok()
}

/// The `path` from `Upload-Metadata` (comma-separated `key base64value` pairs).
fn metadata_path(headers: &HeaderMap) -> AppResult<String> {
    let meta = headers
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for pair in meta.split(',') {
        let mut it = pair.trim().splitn(2, ' ');
        let (Some(k), v) = (it.next(), it.next()) else {
            continue;
        };
        if k == "path" {
            let bytes = metadata_value(v.unwrap_or("").trim()).ok_or_else(|| {
                AppError::field(
                    "Upload-Metadata",
                    "The path in Upload-Metadata is not valid base64.",
                )
            })?;
            let s = String::from_utf8(bytes).map_err(|_| {
                AppError::field(
                    "Upload-Metadata",
                    "The path in Upload-Metadata is not UTF-8 text.",
                )
            })?;
            return normalize_entry_path(&s).map_err(|m| AppError::field("path", m));
        }
    }
    Err(AppError::field(
        "Upload-Metadata",
        "Name the file's path in the folder: Upload-Metadata: path BASE64.",
    ))
}

/// An HTTP date (`Upload-Expires`).
fn http_date(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

#[utoipa::path(
    options,
    path = "/vfolders/{id}/uploads",
    operation_id = "upload_capabilities",
    tag = "uploads",
    summary = "tus capabilities (Tus-Version, Tus-Extension, Tus-Max-Size)",
    params(("id" = String, Path, description = "folder id or name")),
    security(()),
    responses((status = 204, description = "Capabilities in the headers", headers(("Tus-Version" = String), ("Tus-Extension" = String), ("Tus-Max-Size" = u64))))
)]
async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,expiration,termination"),
    );
    h.insert("tus-max-size", HeaderValue::from(MAX_SIZE));
    with_tus(r)
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    id: String,
    vfolder_id: String,
    path: String,
    length: i64,
    touched_at: String,
}

/// Bytes reserved by uploads in flight into a folder.
async fn reserved(state: &AppState, folder: &str) -> AppResult<u64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(length), 0) AS BIGINT) FROM uploads WHERE vfolder_id = $1",
    )
    .bind(folder)
    .fetch_one(&state.db)
    .await?;
    Ok(n as u64)
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/uploads",
    operation_id = "create_upload",
    tag = "uploads",
    summary = "tus 1.0 creation: Upload-Length, Upload-Metadata `path BASE64`; 201 with Location",
    params(("id" = String, Path, description = "folder id or name"), ("Tus-Resumable" = String, Header, description = "must be `1.0.0`"), ("Upload-Length" = u64, Header, description = "the file's size in bytes"), ("Upload-Metadata" = String, Header, description = "`path BASE64`, the file's path inside the folder (more tus metadata pairs may follow)")),
    responses((status = 201, description = "Created", headers(("Location" = String, description = "the upload's URL"), ("Upload-Offset" = u64), ("Upload-Expires" = String), ("Tus-Resumable" = String))), (status = 400, response = crate::openapi::BadRequest), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 412, response = crate::openapi::PreconditionFailed), (status = 413, response = crate::openapi::TooLarge))
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    check_version(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(AppError::field(
            "Upload-Defer-Length",
            "The upload's length must be known up front: send Upload-Length instead of Upload-Defer-Length.",
        ));
    }
    let Some(length) = header_u64(&headers, "upload-length")? else {
        return Err(AppError::field(
            "Upload-Length",
            "Send the file's size in bytes as Upload-Length.",
        ));
    };
    if length > MAX_SIZE {
        return Err(AppError::new(
            ProblemType::TooLarge,
            format!(
                "This upload is {}; berth takes files up to {}.",
                api::Bytes(length).human(),
                api::Bytes(MAX_SIZE).human()
            ),
        ));
    }
    let rel = metadata_path(&headers)?;
    let row = store::require(&state.db, &user, &id, Permission::Rw).await?;
    // The file must not exist yet, and the path must stay inside the folder.
    let r = rel.clone();
    super::in_folder(&state, &row.id, move |f| f.check_new(&r)).await?;
    let upload = uuid::Uuid::new_v4().to_string();
    let now = db::now();
    // The quota: what is in the folder, what other uploads reserved, and this one. The
    // reservation is checked and made in one statement, inside a transaction that first
    // writes the folder's row: that write lock (SQLite's database lock, PostgreSQL's row lock)
    // makes racing reservations into one folder wait for each other, so under PostgreSQL's
    // READ COMMITTED the second one's statement sees the first's row and both cannot pass.
    let quota = store::quota(&state.db, &row).await?;
    let used = match quota {
        Some(_) => super::folder_usage(&state, &row.id).await,
        None => 0,
    };
    let limit = quota.map_or(i64::MAX, |q| q.min(i64::MAX as u64) as i64);
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE vfolders SET state = state WHERE id = $1")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO uploads(id, vfolder_id, user_id, path, length, created_at, touched_at)
         SELECT $1, $2, $3, $4, $5, $6, $7
         WHERE $8 + $9 + (SELECT COALESCE(SUM(length), 0) FROM uploads WHERE vfolder_id = $10) <= $11",
    )
    .bind(&upload)
    .bind(&row.id)
    .bind(&user.id)
    .bind(&rel)
    .bind(length as i64)
    .bind(&now)
    .bind(&now)
    .bind(used.min(i64::MAX as u64 / 2) as i64)
    .bind(length as i64)
    .bind(&row.id)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if inserted == 0 {
        let quota = quota.unwrap_or(u64::MAX);
        let held = reserved(&state, &row.id).await?;
        return Err(AppError::new(
            ProblemType::Quota,
            format!(
                "This upload of {} would pass folder {}'s quota of {}: {} is used{}.",
                api::Bytes(length).human(),
                row.name,
                api::Bytes(quota).human(),
                api::Bytes(used).human(),
                if held > 0 {
                    format!(
                        " and {} is reserved by uploads in progress",
                        api::Bytes(held).human()
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    let storage = state.storage.clone();
    let u = upload.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || storage.create_upload_file(&u)).await? {
        forget(&state, &upload).await?;
        return Err(e.into());
    }
    let location = format!("/api/v1/vfolders/{}/uploads/{upload}", row.id);
    if length == 0 {
        // Nothing to send: the (empty) file is placed now.
        let u = load(&state, &user, &row.id, &upload).await?;
        finish(&state, &u).await?;
    }
    let expires = time::OffsetDateTime::now_utc()
        + time::Duration::seconds(state.config.upload_expiry_s as i64);
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(&location)?);
    h.insert("upload-offset", HeaderValue::from(0u64));
    h.insert(
        "upload-expires",
        HeaderValue::from_str(&http_date(expires))?,
    );
    Ok(with_tus(r))
}

/// The upload `upload` of folder `folder` created by `user`; anything else is missing.
async fn load(
    state: &AppState,
    user: &CurrentUser,
    folder: &str,
    upload: &str,
) -> AppResult<UploadRow> {
    let row: Option<UploadRow> = sqlx::query_as(
        "SELECT id, vfolder_id, path, length, touched_at FROM uploads
         WHERE id = $1 AND vfolder_id = $2 AND user_id = $3",
    )
    .bind(upload)
    .bind(folder)
    .bind(&user.id)
    .fetch_optional(&state.db)
    .await?;
    row.ok_or_else(|| {
        AppError::new(
            ProblemType::NotFound,
            "There is no such upload; it may have finished, expired or been cancelled. Start it again.",
        )
    })
}

/// Bytes received so far: the partial file's length.
async fn offset_of(state: &AppState, u: &UploadRow) -> AppResult<u64> {
    match tokio::fs::metadata(state.storage.upload_file(&u.id)).await {
        Ok(m) => Ok(m.len().min(u.length as u64)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    head,
    path = "/vfolders/{id}/uploads/{upload}",
    operation_id = "upload_offset",
    tag = "uploads",
    summary = "tus offset (Upload-Offset, Upload-Length)",
    params(("id" = String, Path, description = "folder id or name"), ("upload" = String, Path, description = "upload id")),
    responses((status = 200, description = "The offset in the headers", headers(("Upload-Offset" = u64), ("Upload-Length" = u64), ("Upload-Expires" = String), ("Tus-Resumable" = String))), (status = 404, response = crate::openapi::NotFound))
)]
async fn head(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, upload)): Path<(String, String)>,
) -> AppResult<Response> {
    let u = load(&state, &user, &id, &upload).await?;
    let off = offset_of(&state, &u).await?;
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    h.insert("upload-offset", HeaderValue::from(off));
    h.insert("upload-length", HeaderValue::from(u.length as u64));
    if let Some(t) = db::parse_time(&u.touched_at) {
        let exp = t + time::Duration::seconds(state.config.upload_expiry_s as i64);
        h.insert("upload-expires", HeaderValue::from_str(&http_date(exp))?);
    }
    Ok(with_tus(r))
}

#[utoipa::path(
    patch,
    path = "/vfolders/{id}/uploads/{upload}",
    operation_id = "upload_data",
    tag = "uploads",
    summary = "tus data at Upload-Offset",
    params(("id" = String, Path, description = "folder id or name"), ("upload" = String, Path, description = "upload id"), ("Tus-Resumable" = String, Header, description = "must be `1.0.0`"), ("Upload-Offset" = u64, Header, description = "the byte the data starts at")),
    request_body(content = crate::openapi::Binary, content_type = "application/offset+octet-stream", description = "The next bytes of the file"),
    responses((status = 204, description = "Stored", headers(("Upload-Offset" = u64, description = "the new offset"), ("Tus-Resumable" = String))), (status = 400, response = crate::openapi::BadRequest), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 412, response = crate::openapi::PreconditionFailed), (status = 413, response = crate::openapi::TooLarge), (status = 415, response = crate::openapi::UnsupportedMediaType))
)]
async fn patch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, upload)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    check_version(&headers)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().map(str::trim) != Some("application/offset+octet-stream") {
        return Err(AppError::new(
            ProblemType::UnsupportedMediaType,
            "Send upload data with Content-Type: application/offset+octet-stream.",
        ));
    }
    let Some(claimed) = header_u64(&headers, "upload-offset")? else {
        return Err(AppError::field(
            "Upload-Offset",
            "Send Upload-Offset: the byte the data starts at.",
        ));
    };
    let u = load(&state, &user, &id, &upload).await?;
    // Writing needs the permission still (it may have been lowered since creation).
    store::require(&state.db, &user, &u.vfolder_id, Permission::Rw).await?;
    let Some(_guard) = state.upload_writers.claim(&u.id) else {
        return Err(AppError::conflict(
            "Another request is sending data to this upload; wait for it or check the offset with HEAD.",
        ));
    };
    let mut offset = offset_of(&state, &u).await?;
    if claimed != offset {
        return Err(AppError::conflict(format!(
            "Upload-Offset is {claimed} but berth has {offset} bytes of this upload; resume from {offset}."
        )));
    }
    let length = u.length as u64;
    let (storage, uid) = (state.storage.clone(), u.id.clone());
    let file = tokio::task::spawn_blocking(move || {
        match std::fs::OpenOptions::new()
            .append(true)
            .open(storage.upload_file(&uid))
        {
            // The gateway was killed between recording the upload and creating its file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => storage.create_upload_file(&uid),
            r => r,
        }
    })
    .await??;
    let mut sink = BlockWriter::new(file);
    let started_at = offset;
    let mut stream = body.into_data_stream();
    let mut overflow = false;
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            broken = true;
            break;
        };
        let room = (length - offset) as usize;
        let take = chunk.len().min(room);
        sink.write(chunk.slice(..take)).await?;
        offset += take as u64;
        if take < chunk.len() {
            overflow = true;
            break;
        }
    }
    sink.finish().await?;
    state.metrics.uploaded(offset - started_at);
    // The offset itself is the partial file's length (see `offset_of`); only the time of
    // the last byte is kept, for the expiry.
    sqlx::query("UPDATE uploads SET touched_at = $1 WHERE id = $2")
        .bind(db::now())
        .bind(&u.id)
        .execute(&state.db)
        .await?;
    if overflow {
        return Err(AppError::field(
            "Upload-Length",
            format!("The data passes the upload's length of {length} bytes; the extra bytes were not kept."),
        ));
    }
    if broken {
        return Err(AppError::field(
            "body",
            format!("The data stopped arriving at byte {offset}; resume from there."),
        ));
    }
    if offset == length {
        finish(&state, &u).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        HeaderName::from_static("upload-offset"),
        HeaderValue::from(offset),
    );
    Ok(with_tus(r))
}

/// Appends to a file in large blocks on the blocking pool: body chunks (tens of KiB) are
/// gathered into a buffer of [`BlockWriter::BLOCK`] bytes, and while one block is written the
/// next one fills (two buffers), so receiving and writing overlap and memory stays bounded.
/// A block write's result, with the file handed back.
type BlockDone = (std::fs::File, std::io::Result<()>);

/// Appends to a file in large blocks on the blocking pool: body chunks (tens of KiB each) are
/// kept as they arrived — no copy — until [`BlockWriter::BLOCK`] bytes are gathered, then
/// written in one trip to the blocking pool while the next block gathers, so receiving and
/// writing overlap and memory stays bounded (two blocks).
struct BlockWriter {
    file: Option<std::fs::File>,
    chunks: Vec<axum::body::Bytes>,
    gathered: usize,
    writing: Option<tokio::task::JoinHandle<BlockDone>>,
}

impl BlockWriter {
    const BLOCK: usize = 4 << 20;

    fn new(file: std::fs::File) -> Self {
        Self {
            file: Some(file),
            chunks: Vec::new(),
            gathered: 0,
            writing: None,
        }
    }

    async fn write(&mut self, data: axum::body::Bytes) -> std::io::Result<()> {
        self.gathered += data.len();
        self.chunks.push(data);
        if self.gathered >= Self::BLOCK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits for the block being written, if any.
    async fn settle(&mut self) -> std::io::Result<()> {
        if let Some(h) = self.writing.take() {
            let (file, r) = h.await.map_err(std::io::Error::other)?;
            self.file = Some(file);
            r?;
        }
        Ok(())
    }

    /// Starts writing the gathered chunks and goes on gathering.
    async fn flush(&mut self) -> std::io::Result<()> {
        self.settle().await?;
        if self.chunks.is_empty() {
            return Ok(());
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("writer closed"))?;
        let chunks = std::mem::take(&mut self.chunks);
        self.gathered = 0;
        self.writing = Some(tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let r = chunks.iter().try_for_each(|c| file.write_all(c));
            (file, r)
        }));
        Ok(())
    }

    /// Writes what is gathered; whatever arrived is kept even when the body broke off.
    async fn finish(mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.settle().await
    }
}

/// Moves a complete upload into its folder (never over an existing file) and forgets it.
async fn finish(state: &AppState, u: &UploadRow) -> AppResult<()> {
    let storage = state.storage.clone();
    let (rel, uid) = (u.path.clone(), u.id.clone());
    let placed = super::in_folder(state, &u.vfolder_id, move |f| {
        storage.place_upload(f, &uid, &rel)
    })
    .await;
    if placed.is_ok() {
        // Counted before the reservation goes, so the quota never sees neither.
        state
            .storage
            .usage
            .add(&u.vfolder_id, u.length as u64)
            .await;
    }
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(&u.id)
        .execute(&state.db)
        .await?;
    placed
}

#[utoipa::path(
    delete,
    path = "/vfolders/{id}/uploads/{upload}",
    operation_id = "terminate_upload",
    tag = "uploads",
    summary = "tus termination",
    params(("id" = String, Path, description = "folder id or name"), ("upload" = String, Path, description = "upload id"), ("Tus-Resumable" = String, Header, description = "must be `1.0.0`")),
    responses((status = 204, description = "Ended and forgotten"), (status = 404, response = crate::openapi::NotFound), (status = 412, response = crate::openapi::PreconditionFailed))
)]
async fn terminate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, upload)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    check_version(&headers)?;
    let u = load(&state, &user, &id, &upload).await?;
    forget(&state, &u.id).await?;
    Ok(with_tus(StatusCode::NO_CONTENT.into_response()))
}

async fn forget(state: &AppState, upload: &str) -> AppResult<()> {
    let _ = tokio::fs::remove_file(state.storage.upload_file(upload)).await;
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(upload)
        .execute(&state.db)
        .await?;
    Ok(())
}

/// Drops every upload into a folder (it is being purged).
pub async fn drop_folder_uploads(state: &AppState, folder: &str) -> AppResult<()> {
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM uploads WHERE vfolder_id = $1")
        .bind(folder)
        .fetch_all(&state.db)
        .await?;
    for (id,) in ids {
        forget(state, &id).await?;
    }
    Ok(())
}

/// Removes uploads untouched for longer than the expiry, and partial files no upload owns
/// (left by a crash). Runs at start and then every minute (or sooner for short expiries).
pub async fn run_expiry(state: AppState) {
    let every = std::time::Duration::from_secs(state.config.upload_expiry_s.clamp(1, 60));
    loop {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %format!("{e:?}"), "upload expiry sweep failed");
        }
        tokio::time::sleep(every).await;
    }
}

async fn sweep(state: &AppState) -> AppResult<()> {
    let cutoff = db::now_plus(-(state.config.upload_expiry_s as i64));
    let old: Vec<(String,)> = sqlx::query_as("SELECT id FROM uploads WHERE touched_at < $1")
        .bind(&cutoff)
        .fetch_all(&state.db)
        .await?;
    for (id,) in old {
        if state.upload_writers.claim(&id).is_some() {
            tracing::info!(upload = %id, "an abandoned upload expired");
            forget(state, &id).await?;
        }
    }
    let known: HashSet<String> = sqlx::query_as::<_, (String,)>("SELECT id FROM uploads")
        .fetch_all(&state.db)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
    let dir = state.storage.uploads_dir().to_path_buf();
    let mut rd = tokio::fs::read_dir(&dir).await?;
    while let Some(e) = rd.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !known.contains(&name) && state.upload_writers.claim(&name).is_some() {
            // Created files get their row right after; give a fresh one a moment.
            let young = e
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|d| d.as_secs() < 60);
            if !young {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(meta: &'static str) -> AppResult<String> {
        let mut h = HeaderMap::new();
        h.insert("upload-metadata", HeaderValue::from_static(meta));
        metadata_path(&h)
    }

    #[test]
    fn metadata_values_are_base64_in_either_alphabet_padded_or_not() {
        assert_eq!(metadata_value("YS50eHQ=").as_deref(), Some(&b"a.txt"[..]));
        assert_eq!(metadata_value("YS50eHQ").as_deref(), Some(&b"a.txt"[..]));
        assert_eq!(metadata_value("").as_deref(), Some(&b""[..]));
        // 0xfb 0xff: `+/` in the standard alphabet, `-_` in the URL-safe one.
        assert_eq!(metadata_value("+/8=").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(metadata_value("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        for bad in ["a", "YS5*eHQ=", "Y S50", "%%%%"] {
            assert_eq!(metadata_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_path_comes_from_upload_metadata() {
        // "dir/a.txt", and a file name beside it.
        let p = path_of("filename YS50eHQ=,path ZGlyL2EudHh0").unwrap();
        assert_eq!(p, "dir/a.txt");
        for bad in ["path *", "path //8=", "filename YS50eHQ="] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
        // Agrees with the encoder the clients use.
        let meta = api::vfolders::upload_metadata("caf\u{e9}/r\u{e9}sum\u{e9}.txt", Some("x"));
        let mut h = HeaderMap::new();
        h.insert("upload-metadata", HeaderValue::from_str(&meta).unwrap());
        assert_eq!(metadata_path(&h).unwrap(), "caf\u{e9}/r\u{e9}sum\u{e9}.txt");
    }
}
