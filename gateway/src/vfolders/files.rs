//! Files inside a folder: listing, mkdir, move, delete, and downloads (a file with range
//! requests, a directory as a streamed zip).

use super::{fs, in_folder, store};
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, AppResult};
use crate::AppState;
use api::vfolders::{
    normalize_entry_path, normalize_path, DeleteFilesRequest, DeletedFiles, FileEntry, FileList,
    MkdirRequest, MoveRequest, Permission, MAX_DELETE_PATHS,
};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/vfolders/{id}/files", get(list))
        .route("/vfolders/{id}/mkdir", post(mkdir))
        .route("/vfolders/{id}/move", post(move_entry))
        .route("/vfolders/{id}/delete-files", post(delete_files))
        .route("/vfolders/{id}/download", get(download))
}

/// The read size of downloads.
const READ_BLOCK: usize = 1 << 20;

/// How long a download may take no bytes before berth stops reading for it, so stalled
/// clients cannot hold blocking threads and open files for ever.
const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A response body produced by `produce` on a blocking thread: it hands each chunk to `send`,
/// which waits while four chunks are queued and answers `false` once the client has gone or
/// has taken nothing for [`STALL_LIMIT`].
fn blocking_stream(
    produce: impl FnOnce(&mut dyn FnMut(axum::body::Bytes) -> bool) -> std::io::Result<()>
        + Send
        + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let send = |item| {
            rt.block_on(async { tokio::time::timeout(STALL_LIMIT, tx.send(item)).await })
                .is_ok_and(|sent| sent.is_ok())
        };
        let r = produce(&mut |chunk| send(Ok(chunk)));
        if let Err(e) = r {
            let _ = send(Err(e));
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// `count` bytes of `file` from `start`, read straight into the chunks the response sends
/// (one copy, no intermediate buffer).
fn read_blocks(
    mut file: std::fs::File,
    start: u64,
    count: u64,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> {
    blocking_stream(move |send| {
        use std::io::{Read, Seek};
        file.seek(std::io::SeekFrom::Start(start))?;
        let mut left = count;
        while left > 0 {
            let mut buf = vec![0u8; READ_BLOCK.min(left as usize)];
            match file.read(&mut buf)? {
                // The file shrank: the response ends short and the client sees it.
                0 => return Ok(()),
                n => {
                    buf.truncate(n);
                    left -= n as u64;
                    if !send(buf.into()) {
                        return Ok(()); // the client went away
                    }
                }
            }
        }
        Ok(())
    })
}

fn path_field(field: &str, r: Result<String, String>) -> AppResult<String> {
    r.map_err(|m| AppError::field(field, m))
}

fn to_entry(dir: &str, e: fs::Entry) -> FileEntry {
    FileEntry {
        path: if dir.is_empty() {
            e.name.clone()
        } else {
            format!("{dir}/{}", e.name)
        },
        name: e.name,
        kind: e.kind.to_string(),
        size: e.size,
        modified: time::OffsetDateTime::from_unix_timestamp(e.mtime)
            .map(crate::db::format_time)
            .unwrap_or_default(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    path: String,
    offset: Option<String>,
    limit: Option<String>,
}

fn number(field: &str, v: Option<&str>, default: u64, max: u64) -> AppResult<u64> {
    match v {
        None => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(AppError::field(
                field,
                format!("The {field} must be a whole number from 0 to {max}."),
            )),
        },
    }
}

#[utoipa::path(
    get,
    path = "/vfolders/{id}/files",
    operation_id = "list_files",
    tag = "files",
    summary = "Directory listing, directories first, paged",
    params(("id" = String, Path, description = "folder id or name"), ("path" = Option<String>, Query, description = "a directory inside the folder; empty is its root"), ("offset" = Option<u64>, Query, description = "entries to skip"), ("limit" = Option<u64>, Query, description = "entries to return at most")),
    responses((status = 200, description = "OK", body = api::vfolders::FileList), (status = 400, response = crate::openapi::BadRequest), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<FileList>> {
    let row = store::require(&state.db, &user, &id, Permission::Ro).await?;
    let rel = path_field("path", normalize_path(&q.path))?;
    let offset = number("offset", q.offset.as_deref(), 0, u64::MAX / 2)?;
    let limit = number("limit", q.limit.as_deref(), 200, 1000)?.max(1);
    let r = rel.clone();
    let (entries, total) = in_folder(&state, &row.id, move |f| {
        f.list(&r, offset as usize, limit as usize)
    })
    .await?;
    Ok(Json(FileList {
        entries: entries.into_iter().map(|e| to_entry(&rel, e)).collect(),
        path: rel,
        total: total as u64,
        offset,
    }))
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/mkdir",
    operation_id = "make_directory",
    tag = "files",
    summary = "Make a directory with its parents (RW)",
    params(("id" = String, Path, description = "folder id or name")),
    request_body = api::vfolders::MkdirRequest,
    responses((status = 201, description = "Made", body = api::vfolders::FileEntry), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn mkdir(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MkdirRequest>,
) -> AppResult<(StatusCode, Json<FileEntry>)> {
    let rel = path_field("path", normalize_entry_path(&req.path))?;
    let row = store::require(&state.db, &user, &id, Permission::Rw).await?;
    let r = rel.clone();
    let e = in_folder(&state, &row.id, move |f| f.mkdir(&r)).await?;
    let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    Ok((StatusCode::CREATED, Json(to_entry(parent, e))))
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/move",
    operation_id = "move_file",
    tag = "files",
    summary = "Move or rename; never overwrites (RW)",
    params(("id" = String, Path, description = "folder id or name")),
    request_body = api::vfolders::MoveRequest,
    responses((status = 200, description = "OK", body = api::vfolders::FileEntry), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn move_entry(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MoveRequest>,
) -> AppResult<Json<FileEntry>> {
    let from = path_field("from", normalize_entry_path(&req.from))?;
    let to = path_field("to", normalize_entry_path(&req.to))?;
    let row = store::require(&state.db, &user, &id, Permission::Rw).await?;
    let t = to.clone();
    let e = in_folder(&state, &row.id, move |f| f.move_entry(&from, &t)).await?;
    let parent = to.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    Ok(Json(to_entry(parent, e)))
}

#[utoipa::path(
    post,
    path = "/vfolders/{id}/delete-files",
    operation_id = "delete_files",
    tag = "files",
    summary = "Delete files and directories (WD)",
    params(("id" = String, Path, description = "folder id or name")),
    request_body = api::vfolders::DeleteFilesRequest,
    responses((status = 200, description = "OK", body = api::vfolders::DeletedFiles), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict))
)]
async fn delete_files(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DeleteFilesRequest>,
) -> AppResult<Json<DeletedFiles>> {
    if req.paths.is_empty() {
        return Err(AppError::field(
            "paths",
            "Name at least one path to delete.",
        ));
    }
    if req.paths.len() > MAX_DELETE_PATHS {
        return Err(AppError::field(
            "paths",
            format!("Delete at most {MAX_DELETE_PATHS} paths at once."),
        ));
    }
    let mut rels = Vec::new();
    for (i, p) in req.paths.iter().enumerate() {
        rels.push(path_field(&format!("paths[{i}]"), normalize_entry_path(p))?);
    }
    let row = store::require(&state.db, &user, &id, Permission::Wd).await?;
    let n = in_folder(&state, &row.id, move |f| {
        // Every path is checked before anything is removed.
        for r in &rels {
            f.exists(r).map_err(|e| match e {
                fs::FsError::Missing(_) => {
                    fs::FsError::Missing(format!("There is nothing at \"{r}\"."))
                }
                e => e,
            })?;
        }
        let mut n = 0;
        for r in &rels {
            match f.remove(r) {
                Ok(()) => n += 1,
                // Inside a directory removed just before.
                Err(fs::FsError::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    })
    .await;
    state.storage.usage.forget(&row.id);
    Ok(Json(DeletedFiles { deleted: n? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    #[serde(default)]
    path: String,
}

/// `attachment` with an ASCII fallback name and the UTF-8 name.
fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut enc = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// One `bytes=` range of a file of `len` bytes: `Ok(None)` for no (or an ignored multi-)
/// range, `Err` when it cannot be satisfied.
fn parse_range(h: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        let e: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (s, e)
    };
    if len == 0 || start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

#[utoipa::path(
    get,
    path = "/vfolders/{id}/download",
    operation_id = "download",
    tag = "files",
    summary = "A file (Range: bytes=a-b gives 206) or a directory as a streamed zip",
    params(("id" = String, Path, description = "folder id or name"), ("path" = Option<String>, Query, description = "a file or directory inside the folder; empty is the whole folder"), ("Range" = Option<String>, Header, description = "one range, `bytes=FIRST-LAST`")),
    responses((status = 200, description = "The file, or a directory as a zip archive", content((crate::openapi::Binary = "application/octet-stream"), (crate::openapi::Binary = "application/zip"))), (status = 206, description = "The requested range of the file", body = crate::openapi::Binary, content_type = "application/octet-stream"), (status = 400, response = crate::openapi::BadRequest), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 416, response = crate::openapi::RangeNotSatisfiable))
)]
async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DownloadQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let rel = path_field("path", normalize_path(&q.path))?;
    let row = store::require(&state.db, &user, &id, Permission::Ro).await?;
    let r = rel.clone();
    let opened = in_folder(&state, &row.id, move |f| f.open_read(&r)).await?;
    let name = if rel.is_empty() {
        row.name.clone()
    } else {
        rel.rsplit('/').next().unwrap_or(&rel).to_string()
    };
    let file = match opened {
        fs::Opened::Dir(dir) => {
            let body =
                Body::from_stream(blocking_stream(move |send| super::zip::write(&dir, send)));
            return Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/zip"),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        disposition(&format!("{name}.zip")),
                    ),
                ],
                body,
            )
                .into_response());
        }
        fs::Opened::File(f) => f,
    };
    let len = file.size;
    let range = match parse_range(headers.get(header::RANGE), len) {
        Ok(r) => r,
        Err(()) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                "",
            )
                .into_response())
        }
    };
    let (status, start, count) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, len),
    };
    let stream = read_blocks(file.file, start, count);
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_DISPOSITION, disposition(&name));
    if range.is_some() {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", start + count - 1),
        );
    }
    Ok(resp.body(Body::from_stream(stream))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some(&h("bytes=0-4")), 10), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some(&h("bytes=5-")), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some(&h("bytes=-3")), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some(&h("bytes=8-100")), 10), Ok(Some((8, 9))));
        assert_eq!(parse_range(Some(&h("bytes=10-")), 10), Err(()));
        assert_eq!(parse_range(Some(&h("bytes=a-b")), 10), Err(()));
        assert_eq!(parse_range(Some(&h("bytes=0-1,3-4")), 10), Ok(None));
    }
}
