//! Uploads into folders with tus 1.0: a queue that outlives the page that filled it, one
//! file at a time, in chunks, with progress, speed and resume.
//!
//! Resume: each upload's URL is kept in `localStorage` under the folder, the path, the size
//! and the file's modification time. Adding the same file again (after a reload, a closed
//! tab, a lost connection) asks the server how much arrived (`HEAD`) and sends the rest.
//! A dropped connection is retried by itself with growing pauses before the upload fails.

use crate::api::{self, PatchError};
use crate::components::vfolder::{bytes, ProgressBar};
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Bytes per PATCH: large enough to keep a fast link busy, small enough that a retry on a
/// slow one repeats little.
const CHUNK: u64 = 8 * 1024 * 1024;
/// Pauses before each retry of a dropped connection, in seconds.
const BACKOFF_S: [i32; 6] = [1, 2, 4, 8, 15, 30];

#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    Queued,
    /// Creating the upload, or asking where a known one stands.
    Starting,
    Uploading,
    /// The connection dropped; the sentence says when it is tried again.
    Retrying(String),
    Done,
    Failed(String),
    Cancelled,
}

impl UploadState {
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::Queued | Self::Starting | Self::Uploading | Self::Retrying(_)
        )
    }

    /// A stable word for tests and styles.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Starting => "STARTING",
            Self::Uploading => "UPLOADING",
            Self::Retrying(_) => "RETRYING",
            Self::Done => "DONE",
            Self::Failed(_) => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// One file being uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadItem {
    pub key: u32,
    pub folder: String,
    /// Where it goes inside the folder.
    pub path: String,
    pub name: String,
    pub size: u64,
    /// Bytes the server has (or is receiving now).
    pub sent: u64,
    /// Bytes per second, smoothed.
    pub speed: f64,
    /// Where a resumed upload picked up.
    pub resumed_from: Option<u64>,
    pub state: UploadState,
    /// The tus upload's URL once created.
    pub url: Option<String>,
}

/// A finished upload: its folder and the directory it landed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub folder: String,
    pub dir: String,
    pub seq: u32,
}

thread_local! {
    /// The files behind the queue (browser objects; the page only ever runs on one thread).
    static FILES: RefCell<HashMap<u32, web_sys::File>> = RefCell::new(HashMap::new());
    /// The request in flight per upload, for cancelling.
    static XHRS: RefCell<HashMap<u32, web_sys::XmlHttpRequest>> = RefCell::new(HashMap::new());
}

/// The upload queue, provided by the shell.
#[derive(Clone, Copy)]
pub struct Uploads {
    pub items: RwSignal<Vec<UploadItem>>,
    /// The last upload that finished, so the file manager showing its directory reloads.
    pub landed: RwSignal<Option<Landed>>,
    next: StoredValue<u32>,
}

impl Default for Uploads {
    fn default() -> Self {
        Self::new()
    }
}

impl Uploads {
    pub fn new() -> Self {
        Self {
            items: RwSignal::new(Vec::new()),
            landed: RwSignal::new(None),
            next: StoredValue::new(1),
        }
    }

    /// Queues `files` for `dir` of `folder`; each goes to `dir/NAME`.
    pub fn add(self, folder: &str, dir: &str, files: Vec<web_sys::File>) {
        for file in files {
            let name = file.name();
            let joined = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            let size = file.size() as u64;
            let (path, state) = match ::api::vfolders::normalize_entry_path(&joined) {
                Ok(p) => (p, UploadState::Queued),
                Err(e) => (joined, UploadState::Failed(e)),
            };
            let busy = self.items.with_untracked(|v| {
                v.iter()
                    .any(|i| i.folder == folder && i.path == path && i.state.is_active())
            });
            if busy {
                continue;
            }
            let key = self.next.get_value();
            self.next.set_value(key + 1);
            FILES.with(|f| f.borrow_mut().insert(key, file));
            self.items.update(|v| {
                v.push(UploadItem {
                    key,
                    folder: folder.to_string(),
                    path,
                    name,
                    size,
                    sent: 0,
                    speed: 0.0,
                    resumed_from: None,
                    state,
                    url: None,
                })
            });
        }
        self.pump();
    }

    fn edit(self, key: u32, f: impl FnOnce(&mut UploadItem)) {
        self.items.update(|v| {
            if let Some(i) = v.iter_mut().find(|i| i.key == key) {
                f(i)
            }
        });
    }

    /// The item, or `None` when it was dismissed or the store is gone (after a logout the
    /// background tasks end quietly).
    fn get(self, key: u32) -> Option<UploadItem> {
        self.items
            .try_with_untracked(|v| v.iter().find(|i| i.key == key).cloned())
            .flatten()
    }

    /// Stops every upload (the shell goes away at logout); what arrived stays resumable.
    pub fn abort_all(self) {
        for (_, x) in XHRS.with(|x| x.borrow_mut().drain().collect::<Vec<_>>()) {
            let _ = x.abort();
        }
        FILES.with(|f| f.borrow_mut().clear());
    }

    /// Starts the next queued upload unless one runs.
    fn pump(self) {
        let next = self.items.try_with_untracked(|v| {
            let running = v.iter().any(|i| {
                matches!(
                    i.state,
                    UploadState::Starting | UploadState::Uploading | UploadState::Retrying(_)
                )
            });
            if running {
                None
            } else {
                v.iter()
                    .find(|i| i.state == UploadState::Queued)
                    .map(|i| i.key)
            }
        });
        if let Some(key) = next.flatten() {
            self.edit(key, |i| i.state = UploadState::Starting);
            leptos::task::spawn_local(async move {
                self.run(key).await;
                self.pump();
            });
        }
    }

    pub fn cancel(self, key: u32) {
        let Some(item) = self.get(key) else { return };
        if !item.state.is_active() {
            return;
        }
        self.edit(key, |i| i.state = UploadState::Cancelled);
        if let Some(x) = XHRS.with(|x| x.borrow_mut().remove(&key)) {
            let _ = x.abort();
        }
        if let Some(file) = FILES.with(|f| f.borrow().get(&key).cloned()) {
            forget_url(&storage_key(&item, &file));
        }
        if let Some(url) = item.url {
            leptos::task::spawn_local(async move {
                let _ = api::tus_delete(&url).await;
            });
        }
        self.pump();
    }

    /// Tries a failed or cancelled upload again (from where the server stands, if it kept it).
    pub fn retry(self, key: u32) {
        self.edit(key, |i| {
            if !i.state.is_active() && i.state != UploadState::Done {
                i.state = UploadState::Queued;
                i.speed = 0.0;
            }
        });
        self.pump();
    }

    pub fn dismiss(self, key: u32) {
        self.items.update(|v| v.retain(|i| i.key != key));
        FILES.with(|f| f.borrow_mut().remove(&key));
    }

    /// Removes the finished, failed and cancelled uploads of `folder`.
    pub fn clear_finished(self, folder: &str) {
        let gone: Vec<u32> = self.items.with_untracked(|v| {
            v.iter()
                .filter(|i| i.folder == folder && !i.state.is_active())
                .map(|i| i.key)
                .collect()
        });
        for key in gone {
            self.dismiss(key);
        }
    }

    fn fail(self, key: u32, why: String) {
        XHRS.with(|x| x.borrow_mut().remove(&key));
        self.edit(key, |i| {
            if i.state != UploadState::Cancelled {
                i.state = UploadState::Failed(why);
                i.speed = 0.0;
            }
        });
    }

    fn cancelled(self, key: u32) -> bool {
        self.get(key)
            .is_none_or(|i| i.state == UploadState::Cancelled)
    }

    async fn run(self, key: u32) {
        let (Some(item), Some(file)) =
            (self.get(key), FILES.with(|f| f.borrow().get(&key).cloned()))
        else {
            return;
        };
        let size = item.size;
        let skey = storage_key(&item, &file);

        // 1. A URL from an earlier try of the same file: resume where the server stands.
        let mut start = None;
        if let Some(url) = item.url.clone().or_else(|| stored_url(&skey)) {
            match api::tus_offset(&url).await {
                Ok(o) if o.length == size => start = Some((url, o.offset)),
                _ => forget_url(&skey),
            }
        }
        if self.cancelled(key) {
            return;
        }
        // 2. Otherwise create it.
        let (url, mut offset) = match start {
            Some((url, offset)) => {
                if offset > 0 {
                    self.edit(key, |i| i.resumed_from = Some(offset));
                }
                (url, offset)
            }
            None => match api::tus_create(&item.folder, &item.path, size).await {
                Ok(url) => {
                    remember_url(&skey, &url);
                    (url, 0)
                }
                Err(e) => return self.fail(key, e.detail),
            },
        };
        self.edit(key, |i| {
            i.url = Some(url.clone());
            i.sent = offset;
            if i.state == UploadState::Starting {
                i.state = UploadState::Uploading;
            }
        });

        // 3. Send the rest, a chunk per PATCH.
        let meter = Rc::new(RefCell::new(Meter::new(offset)));
        let mut failures = 0usize;
        let mut resyncs = 0usize;
        loop {
            if self.cancelled(key) {
                return;
            }
            // An empty file is placed when its upload is created.
            if offset >= size {
                break;
            }
            let end = (offset + CHUNK).min(size);
            let Ok(chunk) = file.slice_with_f64_and_f64(offset as f64, end as f64) else {
                return self.fail(key, "The browser could not read the file.".into());
            };
            let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
                return self.fail(key, "The browser could not start a request.".into());
            };
            XHRS.with(|x| x.borrow_mut().insert(key, xhr.clone()));
            let base = offset;
            let m = meter.clone();
            let on_progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(
                move |ev: web_sys::ProgressEvent| {
                    let sent = base + ev.loaded() as u64;
                    let speed = m.borrow_mut().sample(sent);
                    self.edit(key, |i| {
                        if i.state.is_active() {
                            i.sent = sent.min(i.size);
                            i.speed = speed;
                            i.state = UploadState::Uploading;
                        }
                    });
                },
            );
            let result = api::tus_patch(
                &xhr,
                &url,
                &chunk,
                offset,
                on_progress.as_ref().unchecked_ref(),
            )
            .await;
            drop(on_progress);
            XHRS.with(|x| x.borrow_mut().remove(&key));
            match result {
                Ok(new) => {
                    failures = 0;
                    offset = new;
                    self.edit(key, |i| {
                        i.sent = new;
                        i.state = UploadState::Uploading;
                    });
                }
                Err(PatchError::Aborted) => return,
                Err(PatchError::Network) => {
                    if failures >= BACKOFF_S.len() {
                        return self.fail(
                            key,
                            "The connection to berth keeps dropping. Add the file again later; the upload resumes where it stopped.".into(),
                        );
                    }
                    let wait = BACKOFF_S[failures];
                    failures += 1;
                    self.edit(key, |i| {
                        i.speed = 0.0;
                        i.state = UploadState::Retrying(format!(
                            "Connection lost; trying again in {wait} s."
                        ));
                    });
                    api::sleep(wait * 1000).await;
                    if let Ok(o) = api::tus_offset(&url).await {
                        offset = o.offset;
                        meter.borrow_mut().restart(offset);
                    }
                }
                Err(PatchError::Refused(e)) => {
                    // 409: our offset and the server's differ (another tab?) — or the file
                    // could not land. Ask once where it stands before giving up.
                    let server = if e.status == 409 && resyncs < 3 {
                        api::tus_offset(&url).await.ok()
                    } else {
                        None
                    };
                    match server {
                        Some(o) if o.offset != offset => {
                            resyncs += 1;
                            offset = o.offset;
                            meter.borrow_mut().restart(offset);
                        }
                        _ => {
                            if matches!(e.status, 404 | 409 | 410) {
                                forget_url(&skey);
                            }
                            return self.fail(key, e.detail);
                        }
                    }
                }
            }
        }
        forget_url(&skey);
        self.edit(key, |i| {
            i.state = UploadState::Done;
            i.sent = i.size;
            i.speed = 0.0;
        });
        let dir = item
            .path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let Some(seq) = self
            .landed
            .try_with_untracked(|l| l.as_ref().map_or(0, |l| l.seq) + 1)
        else {
            return;
        };
        self.landed.set(Some(Landed {
            folder: item.folder.clone(),
            dir,
            seq,
        }));
    }
}

/// Upload speed, smoothed over windows of at least half a second.
struct Meter {
    at_ms: f64,
    bytes: u64,
    speed: f64,
}

impl Meter {
    fn new(bytes: u64) -> Self {
        Self {
            at_ms: js_sys::Date::now(),
            bytes,
            speed: 0.0,
        }
    }

    fn restart(&mut self, bytes: u64) {
        self.at_ms = js_sys::Date::now();
        self.bytes = bytes;
    }

    fn sample(&mut self, bytes: u64) -> f64 {
        let now = js_sys::Date::now();
        let dt = now - self.at_ms;
        if dt >= 500.0 {
            let now_speed = bytes.saturating_sub(self.bytes) as f64 * 1000.0 / dt;
            self.speed = if self.speed == 0.0 {
                now_speed
            } else {
                0.6 * self.speed + 0.4 * now_speed
            };
            self.at_ms = now;
            self.bytes = bytes;
        }
        self.speed
    }
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// The same file to the same place: folder, path, size and modification time.
fn storage_key(item: &UploadItem, file: &web_sys::File) -> String {
    format!(
        "berth.upload:{}:{}:{}:{}",
        item.folder,
        item.path,
        item.size,
        file.last_modified() as u64
    )
}

fn stored_url(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

fn remember_url(key: &str, url: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, url);
    }
}

fn forget_url(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
}

/// An upload an earlier tab started and did not finish, found in `localStorage`.
#[derive(Debug, Clone, PartialEq)]
struct Unfinished {
    storage_key: String,
    path: String,
    size: u64,
    url: String,
    /// What the server holds, once asked.
    offset: Option<u64>,
}

/// The unfinished uploads into `folder` this browser remembers.
fn unfinished(folder: &str) -> Vec<Unfinished> {
    let Some(s) = storage() else { return vec![] };
    let prefix = format!("berth.upload:{folder}:");
    let mut out = Vec::new();
    for i in 0..s.length().unwrap_or(0) {
        let Some(key) = s.key(i).ok().flatten() else {
            continue;
        };
        // berth.upload:FOLDER:PATH:SIZE:MTIME (the path may hold ':').
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let mut tail = rest.rsplitn(3, ':');
        let (Some(_mtime), Some(size), Some(path)) = (tail.next(), tail.next(), tail.next()) else {
            continue;
        };
        let (Ok(size), Some(url)) = (size.parse::<u64>(), stored_url(&key)) else {
            continue;
        };
        out.push(Unfinished {
            storage_key: key.clone(),
            path: path.to_string(),
            size,
            url,
            offset: None,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Uploads into this folder that a closed tab left unfinished: add the same file again to
/// continue, or discard what arrived.
#[component]
pub fn UnfinishedUploads(folder: String) -> impl IntoView {
    let uploads = expect_context::<Uploads>();
    let list = RwSignal::new(unfinished(&folder));
    for u in list.get_untracked() {
        leptos::task::spawn_local(async move {
            match api::tus_offset(&u.url).await {
                Ok(o) => list.update(|v| {
                    if let Some(x) = v.iter_mut().find(|x| x.storage_key == u.storage_key) {
                        x.offset = Some(o.offset);
                    }
                }),
                // Gone (expired, finished, cancelled): nothing to resume.
                Err(e) if e.status != 0 => {
                    forget_url(&u.storage_key);
                    list.update(|v| v.retain(|x| x.storage_key != u.storage_key));
                }
                Err(_) => {}
            }
        });
    }
    let discard = move |u: Unfinished| {
        forget_url(&u.storage_key);
        list.update(|v| v.retain(|x| x.storage_key != u.storage_key));
        leptos::task::spawn_local(async move {
            let _ = api::tus_delete(&u.url).await;
        });
    };
    // Hidden once the file is added again in this tab.
    let shown = move || {
        let mine: Vec<String> = uploads.items.with(|v| {
            v.iter()
                .filter(|i| i.folder == folder)
                .map(|i| i.path.clone())
                .collect()
        });
        list.get()
            .into_iter()
            .filter(|u| !mine.contains(&u.path))
            .collect::<Vec<_>>()
    };
    view! {
        {move || {
            let items = shown();
            (!items.is_empty()).then(|| view! {
                <section class="card unfinished" id="unfinished-uploads">
                    <h2>"Unfinished uploads"</h2>
                    <p class="muted small-print">"Add the same file again (Upload files, or drop it here) and it continues where it stopped."</p>
                    <ul class="plain">
                        {items.into_iter().map(|u| {
                            let held = match u.offset {
                                Some(o) => format!("{} of {} arrived ({}%)", bytes(o), bytes(u.size), (o * 100).checked_div(u.size).unwrap_or(0)),
                                None => format!("{} in all", bytes(u.size)),
                            };
                            let gone = u.clone();
                            view! {
                                <li class="unfinished-item" data-path=u.path.clone()>
                                    <span class="strong">{u.path.clone()}</span>
                                    <span class="muted small-print">{held}</span>
                                    <span class="spacer"></span>
                                    <button class="ghost small discard" on:click=move |_| discard(gone.clone())>"Discard"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </section>
            })
        }}
    }
}

/// `2.5 MiB/s`.
fn rate(speed: f64) -> String {
    format!("{}/s", bytes(speed.max(0.0) as u64))
}

/// `~3 min left`.
fn eta(remaining: u64, speed: f64) -> Option<String> {
    if speed < 1.0 || remaining == 0 {
        return None;
    }
    let s = (remaining as f64 / speed).ceil() as u64;
    Some(match s {
        0..=59 => format!("~{s} s left"),
        60..=3599 => format!("~{} min left", s.div_ceil(60)),
        _ => format!("~{} h {} min left", s / 3600, (s % 3600) / 60),
    })
}

/// The uploads of one folder, each with its progress bar.
#[component]
pub fn UploadList(folder: String) -> impl IntoView {
    let uploads = expect_context::<Uploads>();
    let fid = folder.clone();
    let keys = Memo::new(move |_| {
        uploads.items.with(|v| {
            v.iter()
                .filter(|i| i.folder == fid)
                .map(|i| i.key)
                .collect::<Vec<_>>()
        })
    });
    let fid = folder.clone();
    let finished = Memo::new(move |_| {
        uploads
            .items
            .with(|v| v.iter().any(|i| i.folder == fid && !i.state.is_active()))
    });
    let summary = {
        let fid = folder.clone();
        move || {
            uploads.items.with(|v| {
                let mine: Vec<&UploadItem> = v.iter().filter(|i| i.folder == fid).collect();
                let active = mine.iter().filter(|i| i.state.is_active()).count();
                let done = mine.iter().filter(|i| i.state == UploadState::Done).count();
                match (active, done) {
                    (0, d) => format!("{d} of {} done", mine.len()),
                    (a, _) => format!("{a} in progress, {done} done"),
                }
            })
        }
    };
    view! {
        <Show when=move || !keys.get().is_empty()>
            <section class="card uploads" id="uploads">
                <div class="list-head">
                    <h2>"Uploads"</h2>
                    <span class="muted small-print">{summary.clone()}</span>
                    <span class="spacer"></span>
                    {
                        let fid = folder.clone();
                        move || finished.get().then(|| {
                            let fid = fid.clone();
                            view! {
                                <button class="ghost small" id="uploads-clear"
                                    on:click=move |_| uploads.clear_finished(&fid)>"Clear finished"</button>
                            }
                        })
                    }
                </div>
                <ul class="upload-list">
                    <For each=move || keys.get() key=|k| *k let:key>
                        <UploadRow key=key />
                    </For>
                </ul>
            </section>
        </Show>
    }
}

#[component]
fn UploadRow(key: u32) -> impl IntoView {
    let uploads = expect_context::<Uploads>();
    let item = Memo::new(move |_| {
        uploads
            .items
            .with(|v| v.iter().find(|i| i.key == key).cloned())
    });
    let field = move |f: fn(&UploadItem) -> String| move || item.get().map(|i| f(&i));
    let state = Memo::new(move |_| item.get().map(|i| i.state));
    let percent = move || {
        item.get().map_or(0.0, |i| {
            if i.size == 0 {
                if i.state == UploadState::Done {
                    100.0
                } else {
                    0.0
                }
            } else {
                i.sent as f64 * 100.0 / i.size as f64
            }
        })
    };
    let tone = move || match state.get() {
        Some(UploadState::Done) => "done".to_string(),
        Some(UploadState::Failed(_)) | Some(UploadState::Cancelled) => "failed".to_string(),
        Some(UploadState::Retrying(_)) => "warn".to_string(),
        _ => String::new(),
    };
    let detail = move || {
        let i = item.get()?;
        let amounts = format!("{} of {}", bytes(i.sent), bytes(i.size));
        let text = match &i.state {
            UploadState::Queued => format!("Waiting · {}", bytes(i.size)),
            UploadState::Starting => "Starting…".to_string(),
            UploadState::Uploading => {
                let mut parts = vec![amounts];
                if i.speed > 0.0 {
                    parts.push(rate(i.speed));
                }
                if let Some(e) = eta(i.size.saturating_sub(i.sent), i.speed) {
                    parts.push(e);
                }
                parts.join(" · ")
            }
            UploadState::Retrying(why) => format!("{amounts} · {why}"),
            UploadState::Done => format!("Uploaded {}", bytes(i.size)),
            UploadState::Failed(_) => amounts,
            UploadState::Cancelled => "Cancelled".to_string(),
        };
        Some(text)
    };
    let resumed = move || {
        let i = item.get()?;
        let from = i.resumed_from?;
        let pct = (from * 100).checked_div(i.size).unwrap_or(0);
        Some(view! { <span class="tag resumed">{format!("resumed at {pct}%")}</span> })
    };
    let error = move || match state.get() {
        Some(UploadState::Failed(e)) => {
            Some(view! { <p class="error upload-error" role="alert">{e}</p> })
        }
        _ => None,
    };
    view! {
        <li class="upload-item" data-name=field(|i| i.name.clone())
            data-state=move || state.get().map(|s| s.slug())>
            <div class="upload-line">
                <span class="upload-name" title=field(|i| i.path.clone())>{field(|i| i.path.clone())}</span>
                {resumed}
                <span class="spacer"></span>
                <span class="upload-percent">{move || format!("{:.0}%", percent().floor())}</span>
                {move || match state.get() {
                    Some(s) if s.is_active() => view! {
                        <button class="ghost small upload-cancel" on:click=move |_| uploads.cancel(key)>"Cancel"</button>
                    }.into_any(),
                    Some(UploadState::Done) | None => view! {
                        <button class="ghost small upload-dismiss" aria-label="Dismiss" on:click=move |_| uploads.dismiss(key)>"×"</button>
                    }.into_any(),
                    Some(_) => view! {
                        <span class="row-actions">
                            <button class="ghost small upload-retry" on:click=move |_| uploads.retry(key)>"Retry"</button>
                            <button class="ghost small upload-dismiss" aria-label="Dismiss" on:click=move |_| uploads.dismiss(key)>"×"</button>
                        </span>
                    }.into_any(),
                }}
            </div>
            <ProgressBar value=Signal::derive(percent) max=100.0 tone=Signal::derive(tone) />
            <div class="upload-detail muted">{detail}</div>
            {error}
        </li>
    }
}
