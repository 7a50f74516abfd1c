//! tus 1.0 on the wire: creating an upload, asking its offset, PATCHing chunks streamed from
//! disk, and sending one file with retries that resume from the server's offset.

use super::progress::{lock, SharedProgress};
use super::upload::FilePlan;
use super::TUS;
use crate::client::{api_path, segment, Client};
use crate::{Error, Result};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::Method;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How an upload retries a request that failed on the way: `attempts` times in a row without
/// progress, waiting `first`, then twice as long each time.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
}

/// How uploads retry: 5 tries in a row without progress, from 1 s on.
pub const RETRY: Retry = Retry {
    attempts: 5,
    first: Duration::from_secs(1),
};

/// A failed tus request: whether asking the server for its offset and trying again may help.
pub(super) enum Failed {
    Transient(Error),
    Fatal(Error),
}

/// Statuses worth another try: a conflicting offset or writer, or a server in trouble.
pub(super) fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 423 | 429 | 500 | 502 | 503 | 504)
}

/// The `Upload-Offset` header, when there is a valid one.
pub(super) fn upload_offset(h: &HeaderMap) -> Option<u64> {
    h.get("upload-offset")?.to_str().ok()?.trim().parse().ok()
}

/// A request of `n` bytes may take a minute plus the time at 128 KiB/s; a slower one is cut
/// and resumed from what arrived.
pub(super) fn patch_timeout(n: u64) -> Duration {
    Duration::from_secs(60 + n / (128 * 1024))
}

/// `POST …/uploads`: announces the file; returns the upload's location.
pub(super) async fn tus_create(c: &Client, folder: &str, dest: &str, len: u64) -> Result<String> {
    let filename = dest.rsplit('/').next().unwrap_or(dest);
    let resp = c
        .request(Method::POST, &api_path(&["vfolders", folder, "uploads"]))?
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", len)
        .header(
            "Upload-Metadata",
            api::vfolders::upload_metadata(dest, Some(filename)),
        )
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| c.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(c.refused(resp).await);
    }
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Other("the server did not say where the upload goes (no Location).".into())
        })
}

/// `HEAD` of an upload: the bytes the server has.
pub(super) async fn tus_head(c: &Client, loc: &str) -> std::result::Result<u64, Failed> {
    let req = c
        .request(Method::HEAD, loc)
        .map_err(Failed::Fatal)?
        .header("Tus-Resumable", TUS)
        .timeout(Duration::from_secs(60));
    match req.send().await {
        Err(e) => Err(Failed::Transient(c.unreachable(&e))),
        Ok(r) if r.status().is_success() => upload_offset(r.headers()).ok_or_else(|| {
            Failed::Fatal(Error::Other(
                "the server did not say how much of the upload it has (no Upload-Offset).".into(),
            ))
        }),
        Ok(r) => {
            let status = r.status().as_u16();
            let e = c.refused(r).await;
            Err(if transient_status(status) && status != 409 {
                Failed::Transient(e)
            } else {
                Failed::Fatal(e)
            })
        }
    }
}

/// `PATCH` of `n` bytes of `local` from `offset`, streamed from disk; returns the server's
/// new offset. `before` is what earlier files sent, for the progress line.
pub(super) async fn tus_patch(
    c: &Client,
    loc: &str,
    local: &Path,
    offset: u64,
    n: u64,
    progress: &SharedProgress,
    before: u64,
) -> std::result::Result<u64, Failed> {
    let cannot_read = |e: std::io::Error| {
        Failed::Fatal(Error::Other(format!(
            "cannot read {}: {e}",
            local.display()
        )))
    };
    let mut file = tokio::fs::File::open(local).await.map_err(cannot_read)?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(cannot_read)?;
    let p = progress.clone();
    let mut streamed = 0u64;
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file.take(n), 256 * 1024).map(move |chunk| {
            if let Ok(b) = &chunk {
                streamed += b.len() as u64;
                lock(&p).show(before + offset + streamed, false);
            }
            chunk
        });
    let req = c
        .request(Method::PATCH, loc)
        .map_err(Failed::Fatal)?
        .header("Tus-Resumable", TUS)
        .header(CONTENT_TYPE, "application/offset+octet-stream")
        .header("Upload-Offset", offset)
        .header(CONTENT_LENGTH, n)
        .timeout(patch_timeout(n))
        .body(reqwest::Body::wrap_stream(stream));
    match req.send().await {
        Err(e) => Err(Failed::Transient(c.unreachable(&e))),
        Ok(r) if r.status().is_success() => upload_offset(r.headers()).ok_or_else(|| {
            Failed::Fatal(Error::Other(
                "the server did not say how much of the upload it has (no Upload-Offset).".into(),
            ))
        }),
        Ok(r) => {
            let status = r.status().as_u16();
            let e = c.refused(r).await;
            Err(if transient_status(status) {
                Failed::Transient(e)
            } else {
                Failed::Fatal(e)
            })
        }
    }
}

/// `DELETE` of an unfinished upload, so it holds no quota; best effort.
pub(super) async fn tus_cancel(c: &Client, loc: &str) {
    if let Ok(req) = c.request(Method::DELETE, loc) {
        let _ = req
            .header("Tus-Resumable", TUS)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
    }
}

/// Whether the file is in the folder with its full length: a last PATCH whose answer was
/// lost may have finished the upload.
pub(super) async fn landed(c: &Client, folder: &str, file: &FilePlan) -> bool {
    let q = format!(
        "{}?path={}",
        api_path(&["vfolders", folder, "download"]),
        segment(&file.dest)
    );
    let Ok(req) = c.request(Method::HEAD, &q) else {
        return false;
    };
    match req.timeout(Duration::from_secs(60)).send().await {
        Ok(r) if r.status().is_success() => {
            let h = r.headers();
            let len = h
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let zip = h
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/zip"));
            !zip && len == Some(file.len)
        }
        _ => false,
    }
}

/// Uploads one file by tus: creates the upload, then PATCHes it `chunk` bytes at a time.
/// After a dropped connection or a server in trouble it asks the server (HEAD) how much
/// arrived and resumes from there, waiting longer each time, and gives up after
/// `retry.attempts` tries in a row without progress. `current` holds the upload's location
/// while it is unfinished.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_file(
    c: &Client,
    folder: &str,
    file: &FilePlan,
    chunk: u64,
    retry: Retry,
    progress: &SharedProgress,
    before: u64,
    current: &Mutex<Option<String>>,
) -> Result<()> {
    let loc = tus_create(c, folder, &file.dest, file.len).await?;
    *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(loc.clone());
    let mut offset = 0u64;
    let mut failures = 0u32;
    'sending: while offset < file.len {
        let now_len = std::fs::metadata(&file.local).map(|m| m.len()).ok();
        if now_len != Some(file.len) {
            return Err(Error::Other(format!(
                "{} changed while it was being uploaded; upload it again.",
                file.local.display()
            )));
        }
        let n = chunk.min(file.len - offset);
        let mut err = match tus_patch(c, &loc, &file.local, offset, n, progress, before).await {
            Ok(o) if o > offset => {
                offset = o;
                failures = 0;
                continue;
            }
            Ok(o) => Error::Other(format!(
                "the server kept nothing of the data sent from byte {o}."
            )),
            Err(Failed::Fatal(e)) => return Err(e),
            Err(Failed::Transient(e)) => e,
        };
        // Ask the server where it stands, waiting longer after each failure.
        loop {
            failures += 1;
            if failures > retry.attempts {
                return Err(Error::Other(format!(
                    "Uploading {} failed {} times in a row; the last time: {err}",
                    file.dest, retry.attempts
                )));
            }
            let wait = retry.first * 2u32.pow(failures - 1);
            lock(progress).say(&format!(
                "berth: uploading {}: {err}; trying again in {} s.",
                file.dest,
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
            match tus_head(c, &loc).await {
                Ok(o) => {
                    if o > offset {
                        failures = 0;
                    }
                    offset = o;
                    break;
                }
                Err(Failed::Transient(e)) => err = e,
                // The upload is gone. The PATCH's own refusal says why, if it had one;
                // else the last bytes may have arrived and only the answer was lost.
                Err(Failed::Fatal(e)) => {
                    if let Error::Problem { .. } = err {
                        return Err(err);
                    }
                    if offset + n >= file.len && landed(c, folder, file).await {
                        break 'sending;
                    }
                    return Err(e);
                }
            }
        }
    }
    *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfolder::progress::Progress;
    use std::sync::Arc;

    /// A tus server that drops the first PATCH part-way (keeping what arrived) and answers
    /// 503, as a gateway restarting would: the client asks where to resume and finishes.
    #[tokio::test]
    async fn uploads_resume_where_the_server_stopped() {
        use axum::body::Body;
        use axum::extract::State;
        use axum::http::{HeaderMap as AxHeaders, StatusCode};
        use axum::response::IntoResponse;
        use axum::routing::{head, post};

        #[derive(Default)]
        struct Tus {
            data: Vec<u8>,
            length: u64,
            patches: u32,
            heads: u32,
            path: String,
        }
        type S = Arc<Mutex<Tus>>;

        async fn create(State(s): State<S>, h: AxHeaders) -> impl IntoResponse {
            let mut t = s.lock().unwrap();
            t.length = h["upload-length"].to_str().unwrap().parse().unwrap();
            t.path = h["upload-metadata"].to_str().unwrap().to_string();
            (
                StatusCode::CREATED,
                [("location", "/api/v1/vfolders/f/uploads/u")],
            )
        }
        async fn offset(State(s): State<S>) -> impl IntoResponse {
            let mut t = s.lock().unwrap();
            t.heads += 1;
            (
                StatusCode::OK,
                [("upload-offset", t.data.len().to_string())],
            )
        }
        async fn patch(State(s): State<S>, h: AxHeaders, body: Body) -> axum::response::Response {
            let claimed: usize = h["upload-offset"].to_str().unwrap().parse().unwrap();
            let first = {
                let mut t = s.lock().unwrap();
                t.patches += 1;
                if claimed != t.data.len() {
                    return StatusCode::CONFLICT.into_response();
                }
                t.patches == 1
            };
            let mut stream = body.into_data_stream();
            let mut got = 0;
            while let Some(Ok(chunk)) = stream.next().await {
                got += chunk.len();
                s.lock().unwrap().data.extend_from_slice(&chunk);
                if first && got >= 100_000 {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("content-type", "application/problem+json")],
                        r#"{"type":"/problems/x","title":"x","status":503,"detail":"Restarting."}"#,
                    )
                        .into_response();
                }
            }
            let n = s.lock().unwrap().data.len().to_string();
            (StatusCode::NO_CONTENT, [("upload-offset", n)]).into_response()
        }

        let state: S = Arc::default();
        let app = axum::Router::new()
            .route("/api/v1/vfolders/f/uploads", post(create))
            .route("/api/v1/vfolders/f/uploads/u", head(offset).patch(patch))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("big.bin");
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&local, &bytes).unwrap();
        let c = Client::new(
            &format!("http://{addr}"),
            crate::client::Auth::Key("k".into()),
        )
        .unwrap();
        let plan = FilePlan {
            local,
            dest: "d/big.bin".into(),
            len: bytes.len() as u64,
        };
        let progress = Progress::new("x".into(), None).shared();
        let current = Mutex::new(None);
        let retry = Retry {
            attempts: 3,
            first: Duration::from_millis(10),
        };
        send_file(&c, "f", &plan, 300_000, retry, &progress, 0, &current)
            .await
            .unwrap();
        let t = state.lock().unwrap();
        assert_eq!(t.data, bytes, "the server has the whole file");
        assert_eq!(t.heads, 1, "one HEAD after the broken PATCH");
        assert!(t.patches >= 3, "a broken chunk and two more: {}", t.patches);
        assert_eq!(
            t.path,
            api::vfolders::upload_metadata("d/big.bin", Some("big.bin"))
        );
        assert!(current.lock().unwrap().is_none());
    }
}
