//! The console's one API client: every call goes through [`decode`], which turns a 2xx into
//! `T` and anything else into the server's problem sentence.

use api::vfolders::{
    CloneRequest, CreateVFolder, DeleteFilesRequest, DeletedFiles, FileEntry, FileList, Invitation,
    InviteRequest, Job, Member, MkdirRequest, MoveRequest, UpdateVFolder, VFolder,
};
use api::{FieldError, Problem};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsCast;

/// A failed call, as people should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn network(e: impl std::fmt::Display) -> Self {
        Self {
            status: 0,
            detail: format!(
                "berth could not be reached ({e}). Check your connection and try again."
            ),
            errors: vec![],
        }
    }

    /// The message for one field, if the server named it.
    pub fn field(&self, name: &str) -> Option<String> {
        self.errors
            .iter()
            .find(|e| e.field == name)
            .map(|e| e.message.clone())
    }
}

async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    if resp.ok() {
        return resp.json::<T>().await.map_err(|e| ApiError {
            status: resp.status(),
            detail: format!("berth sent an answer the console does not understand ({e})."),
            errors: vec![],
        });
    }
    let status = resp.status();
    match resp.json::<Problem>().await {
        Ok(p) => Err(ApiError {
            status,
            detail: p.detail,
            errors: p.errors,
        }),
        Err(_) => Err(ApiError {
            status,
            detail: format!("berth answered with HTTP {status}; try again in a moment."),
            errors: vec![],
        }),
    }
}

/// A 2xx whose body does not matter (204s, or an answer the page reloads anyway); anything
/// else goes through [`decode`] for the problem sentence.
async fn decode_empty(resp: Response) -> Result<(), ApiError> {
    if resp.ok() {
        Ok(())
    } else {
        decode::<()>(resp).await
    }
}

async fn send(req: RequestBuilder) -> Result<Response, ApiError> {
    req.send().await.map_err(ApiError::network)
}

async fn send_json<B: Serialize>(req: RequestBuilder, body: &B) -> Result<Response, ApiError> {
    let req = req.json(body).map_err(ApiError::network)?;
    req.send().await.map_err(ApiError::network)
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(Request::get(path)).await?).await
}

pub async fn get_text(path: &str) -> Result<String, ApiError> {
    let resp = send(Request::get(path)).await?;
    if resp.ok() {
        resp.text().await.map_err(ApiError::network)
    } else {
        decode::<String>(resp).await
    }
}

/// A text body read as it arrives: `on_text` gets each piece (UTF-8 split across pieces is
/// put back together). Ends when the server ends the body or `reader` (set once reading
/// starts) is cancelled.
pub async fn stream_text(
    path: &str,
    reader: &std::cell::RefCell<Option<web_sys::ReadableStreamDefaultReader>>,
    mut on_text: impl FnMut(&str),
) -> Result<(), ApiError> {
    let resp = send(Request::get(path)).await?;
    if !resp.ok() {
        return decode::<()>(resp).await;
    }
    let Some(body) = resp.body() else {
        return Ok(());
    };
    let r: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    *reader.borrow_mut() = Some(r.clone());
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let Ok(next) = wasm_bindgen_futures::JsFuture::from(r.read()).await else {
            break; // cancelled, or the connection went
        };
        let done = js_sys::Reflect::get(&next, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let Ok(value) = js_sys::Reflect::get(&next, &"value".into()) else {
            break;
        };
        pending.extend(js_sys::Uint8Array::new(&value).to_vec());
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            // An incomplete character at the end waits for the next piece.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => pending.len(),
        };
        let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
        pending.drain(..valid);
        on_text(&text);
    }
    *reader.borrow_mut() = None;
    Ok(())
}

pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send_json(Request::post(path), body).await?).await
}

/// A POST without a body whose answer has no body worth reading.
pub async fn post_empty(path: &str) -> Result<(), ApiError> {
    decode_empty(send(Request::post(path)).await?).await
}

/// A POST with a body and an empty answer (`204 No Content`).
pub async fn post_no_content<B: Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    decode_empty(send_json(Request::post(path), body).await?).await
}

pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send_json(Request::patch(path), body).await?).await
}

pub async fn put<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    decode(send_json(Request::put(path), body).await?).await
}

/// A PUT whose answer the caller does not need (it reloads what it shows).
pub async fn put_no_content<B: Serialize>(path: &str, body: &B) -> Result<(), ApiError> {
    decode_empty(send_json(Request::put(path), body).await?).await
}

pub async fn delete<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(send(Request::delete(path)).await?).await
}

/// A DELETE answered with `204 No Content`.
pub async fn delete_empty(path: &str) -> Result<(), ApiError> {
    decode_empty(send(Request::delete(path)).await?).await
}

// ---------------------------------------------------------------------------------------
// VFolders (docs/vfolders-api.md): folders, files, tus uploads, sharing, jobs.
// ---------------------------------------------------------------------------------------

/// `s` as one URL component (a query value or a path segment).
pub fn enc(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

fn vf(id: &str) -> String {
    format!("/api/v1/vfolders/{}", enc(id))
}

/// Every folder I can use (mine, shared with me, my projects'), by name.
pub async fn list_vfolders() -> Result<Vec<VFolder>, ApiError> {
    get("/api/v1/vfolders").await
}

/// My folders in the trash.
pub async fn list_trash() -> Result<Vec<VFolder>, ApiError> {
    get("/api/v1/vfolders?trash=true").await
}

pub async fn get_vfolder(id: &str) -> Result<VFolder, ApiError> {
    get(&vf(id)).await
}

pub async fn create_vfolder(req: &CreateVFolder) -> Result<VFolder, ApiError> {
    post("/api/v1/vfolders", req).await
}

pub async fn rename_vfolder(id: &str, name: &str) -> Result<VFolder, ApiError> {
    let body = UpdateVFolder {
        name: name.to_string(),
    };
    patch(&vf(id), &body).await
}

/// Moves a folder to the trash.
pub async fn trash_vfolder(id: &str) -> Result<VFolder, ApiError> {
    delete(&vf(id)).await
}

pub async fn restore_vfolder(id: &str) -> Result<VFolder, ApiError> {
    decode(send(Request::post(&format!("{}/restore", vf(id)))).await?).await
}

/// Deletes a folder in the trash for good.
pub async fn purge_vfolder(id: &str) -> Result<(), ApiError> {
    post_empty(&format!("{}/purge", vf(id))).await
}

/// One page of a directory listing; `path` empty for the folder itself.
pub async fn list_files(
    id: &str,
    path: &str,
    offset: u64,
    limit: u64,
) -> Result<FileList, ApiError> {
    get(&format!(
        "{}/files?path={}&offset={offset}&limit={limit}",
        vf(id),
        enc(path)
    ))
    .await
}

pub async fn mkdir(id: &str, path: &str) -> Result<FileEntry, ApiError> {
    let body = MkdirRequest {
        path: path.to_string(),
    };
    post(&format!("{}/mkdir", vf(id)), &body).await
}

/// Renames or moves a file or directory; never overwrites.
pub async fn move_file(id: &str, from: &str, to: &str) -> Result<FileEntry, ApiError> {
    let body = MoveRequest {
        from: from.to_string(),
        to: to.to_string(),
    };
    post(&format!("{}/move", vf(id)), &body).await
}

/// Deletes files and directories (recursively); answers how many were deleted.
pub async fn delete_files(id: &str, paths: Vec<String>) -> Result<u64, ApiError> {
    let body = DeleteFilesRequest { paths };
    let d: DeletedFiles = post(&format!("{}/delete-files", vf(id)), &body).await?;
    Ok(d.deleted)
}

/// Where the browser downloads a file, or a directory as a zip (`path` empty: the folder).
pub fn download_url(id: &str, path: &str) -> String {
    format!("{}/download?path={}", vf(id), enc(path))
}

pub async fn invite(id: &str, user: &str, permission: &str) -> Result<Invitation, ApiError> {
    let body = InviteRequest {
        user: user.to_string(),
        permission: permission.to_string(),
    };
    post(&format!("{}/invitations", vf(id)), &body).await
}

/// Invitations sent for a folder (its owner).
pub async fn folder_invitations(id: &str) -> Result<Vec<Invitation>, ApiError> {
    get(&format!("{}/invitations", vf(id))).await
}

/// My inbox: pending invitations to me.
pub async fn inbox() -> Result<Vec<Invitation>, ApiError> {
    get("/api/v1/invitations").await
}

pub async fn accept_invitation(id: &str) -> Result<VFolder, ApiError> {
    let path = format!("/api/v1/invitations/{}/accept", enc(id));
    decode(send(Request::post(&path)).await?).await
}

pub async fn decline_invitation(id: &str) -> Result<(), ApiError> {
    post_empty(&format!("/api/v1/invitations/{}/decline", enc(id))).await
}

/// The people a folder is shared with (its owner).
pub async fn members(id: &str) -> Result<Vec<Member>, ApiError> {
    get(&format!("{}/members", vf(id))).await
}

/// Stops sharing a folder with `user` (an id or username).
pub async fn unshare(id: &str, user: &str) -> Result<(), ApiError> {
    delete_empty(&format!("{}/members/{}", vf(id), enc(user))).await
}

/// Stops using a folder shared with me.
pub async fn leave(id: &str) -> Result<(), ApiError> {
    post_empty(&format!("{}/leave", vf(id))).await
}

/// Starts cloning a folder into a new one of mine named `name`.
pub async fn clone_vfolder(id: &str, name: &str) -> Result<Job, ApiError> {
    let body = CloneRequest {
        name: name.to_string(),
    };
    post(&format!("{}/clone", vf(id)), &body).await
}

pub async fn job(id: &str) -> Result<Job, ApiError> {
    get(&format!("/api/v1/jobs/{}", enc(id))).await
}

/// Waits `ms` milliseconds without blocking the page.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window_set_timeout(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn window_set_timeout(f: &js_sys::Function, ms: i32) -> Result<i32, wasm_bindgen::JsValue> {
    web_sys::window()
        .ok_or_else(|| wasm_bindgen::JsValue::from_str("no window"))?
        .set_timeout_with_callback_and_timeout_and_arguments_0(f, ms)
}

// tus 1.0: creation, HEAD for the offset, PATCH chunks, DELETE to give up.

const TUS: &str = "1.0.0";

/// Standard base64 of `bytes` (tus metadata values).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Creates an upload of `length` bytes to `path` in folder `id`; answers its URL.
pub async fn tus_create(id: &str, path: &str, length: u64) -> Result<String, ApiError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let metadata = format!(
        "path {},filename {}",
        base64(path.as_bytes()),
        base64(name.as_bytes())
    );
    let req = Request::post(&format!("{}/uploads", vf(id)))
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", &length.to_string())
        .header("Upload-Metadata", &metadata);
    let resp = send(req).await?;
    if !resp.ok() {
        return Err(decode::<()>(resp).await.unwrap_err());
    }
    resp.headers().get("Location").ok_or_else(|| ApiError {
        status: resp.status(),
        detail: "berth accepted the upload but did not say where to send it; try again.".into(),
        errors: vec![],
    })
}

/// Where an upload stands: bytes received and the length it was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TusOffset {
    pub offset: u64,
    pub length: u64,
}

/// Asks how much of an upload arrived (`HEAD`).
pub async fn tus_offset(url: &str) -> Result<TusOffset, ApiError> {
    let req = RequestBuilder::new(url)
        .method(gloo_net::http::Method::HEAD)
        .header("Tus-Resumable", TUS)
        .cache(web_sys::RequestCache::NoStore);
    let resp = send(req).await?;
    let status = resp.status();
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    match (resp.ok(), header("Upload-Offset"), header("Upload-Length")) {
        (true, Some(offset), Some(length)) => Ok(TusOffset { offset, length }),
        (true, _, _) => Err(ApiError {
            status,
            detail: "berth did not say how much of the upload arrived; start it again.".into(),
            errors: vec![],
        }),
        // A HEAD answer has no body to read a sentence from.
        (false, _, _) => Err(ApiError {
            status,
            detail: match status {
                404 | 410 => "This upload is gone (expired or cancelled); it starts again.".into(),
                _ => format!("berth answered with HTTP {status} about the upload."),
            },
            errors: vec![],
        }),
    }
}

/// Gives an upload up; its partial data is removed.
pub async fn tus_delete(url: &str) -> Result<(), ApiError> {
    decode_empty(send(Request::delete(url).header("Tus-Resumable", TUS)).await?).await
}

/// How a PATCH ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// `xhr.abort()` was called (the user cancelled).
    Aborted,
    /// The connection failed; `HEAD` tells where to resume.
    Network,
    /// The server refused, with its sentence.
    Refused(ApiError),
}

/// Sends `chunk` at `offset` with `PATCH` on `xhr` (which the caller may `abort()`), calling
/// `on_progress` with the bytes of the chunk sent so far. Answers the new offset.
///
/// XMLHttpRequest rather than fetch: only it reports upload progress as the bytes leave.
pub async fn tus_patch(
    xhr: &web_sys::XmlHttpRequest,
    url: &str,
    chunk: &web_sys::Blob,
    offset: u64,
    on_progress: &js_sys::Function,
) -> Result<u64, PatchError> {
    let setup = || -> Result<js_sys::Promise, wasm_bindgen::JsValue> {
        xhr.open_with_async("PATCH", url, true)?;
        xhr.set_request_header("Tus-Resumable", TUS)?;
        xhr.set_request_header("Upload-Offset", &offset.to_string())?;
        xhr.set_request_header("Content-Type", "application/offset+octet-stream")?;
        xhr.upload()?.set_onprogress(Some(on_progress));
        let promise = js_sys::Promise::new(&mut |resolve, reject| {
            xhr.set_onload(Some(&resolve));
            xhr.set_onerror(Some(&reject));
            xhr.set_onabort(Some(&reject));
            xhr.set_ontimeout(Some(&reject));
        });
        xhr.send_with_opt_blob(Some(chunk))?;
        Ok(promise)
    };
    let promise = setup().map_err(|_| PatchError::Network)?;
    if let Err(ev) = wasm_bindgen_futures::JsFuture::from(promise).await {
        let kind = ev
            .dyn_into::<web_sys::Event>()
            .map(|e| e.type_())
            .unwrap_or_default();
        return Err(if kind == "abort" {
            PatchError::Aborted
        } else {
            PatchError::Network
        });
    }
    let status = xhr.status().unwrap_or(0);
    if (200..300).contains(&status) {
        let new = xhr
            .get_response_header("Upload-Offset")
            .ok()
            .flatten()
            .and_then(|v| v.trim().parse::<u64>().ok());
        return new.ok_or(PatchError::Network);
    }
    let body = xhr.response_text().ok().flatten().unwrap_or_default();
    Err(PatchError::Refused(problem_text(status, &body)))
}

/// A problem+json body read from text (XMLHttpRequest answers).
fn problem_text(status: u16, body: &str) -> ApiError {
    match serde_json::from_str::<Problem>(body) {
        Ok(p) => ApiError {
            status,
            detail: p.detail,
            errors: p.errors,
        },
        Err(_) => ApiError {
            status,
            detail: format!("berth answered with HTTP {status}; try again in a moment."),
            errors: vec![],
        },
    }
}
