//! A folder's file manager: breadcrumbs, the directory as a table (paged), uploads by
//! drag-and-drop or picker with progress, downloads (files, and directories as zip), rename,
//! delete, new directory; share, clone and leave for the folder itself. Actions the user's
//! permission does not allow are not offered.

use crate::api;
use crate::components::clone::CloneDialog;
use crate::components::dialog::{ConfirmDialog, Dialog};
use crate::components::share::ShareDialog;
use crate::components::status::{clock, day};
use crate::components::upload::{UnfinishedUploads, UploadList, Uploads};
use crate::components::vfolder::{bytes, ownership, PermissionBadge, UsageBar};
use crate::state::CurrentRoute;
use crate::{folder_href, Route};
use ::api::vfolders::{normalize_entry_path, FileEntry, FileList, Permission, VFolder};
use leptos::prelude::*;

/// Entries per page of a directory.
const PAGE: u64 = 200;

/// `a/b` + `c` → `a/b/c`.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

/// `2026-11-23T20:45:29Z` → `2026-11-23 20:45`.
fn modified(t: &str) -> String {
    let c = clock(t);
    format!("{} {}", day(t), c.get(0..5).unwrap_or(&c))
}

/// The files of a drop or a picker.
fn file_list(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Which dialog is open.
#[derive(Debug, Clone, PartialEq)]
enum Open {
    Mkdir,
    Rename(FileEntry),
    Delete(FileEntry),
    Share,
    Clone,
    Leave,
}

#[component]
pub fn FolderPage(id: String) -> impl IntoView {
    let route = expect_context::<CurrentRoute>().0;
    let uploads = expect_context::<Uploads>();
    let path = Memo::new(move |_| match route.get() {
        Route::Folder { path, .. } => path,
        _ => String::new(),
    });

    let folder = RwSignal::new(None::<VFolder>);
    let folder_error = RwSignal::new(None::<String>);
    let reload_folder = {
        let id = id.clone();
        move || {
            let id = id.clone();
            leptos::task::spawn_local(async move {
                match api::get_vfolder(&id).await {
                    Ok(f) => {
                        folder.set(Some(f));
                        folder_error.set(None);
                    }
                    Err(e) => folder_error.set(Some(e.detail)),
                }
            });
        }
    };
    reload_folder();

    // The listing: the page's offset belongs to the path it was chosen for.
    let listing = RwSignal::new(None::<FileList>);
    let list_error = RwSignal::new(None::<String>);
    let loading = RwSignal::new(true);
    let page = RwSignal::new((String::new(), 0u64));
    let tick = RwSignal::new(0u32);
    let generation = StoredValue::new(0u32);
    {
        let id = id.clone();
        Effect::new(move |_| {
            let p = path.get();
            let offset = page.with(|(pp, o)| if *pp == p { *o } else { 0 });
            tick.track();
            let gen = generation.get_value() + 1;
            generation.set_value(gen);
            loading.set(true);
            let id = id.clone();
            leptos::task::spawn_local(async move {
                let result = api::list_files(&id, &p, offset, PAGE).await;
                // A slow answer for a directory the user already left is dropped.
                if generation.try_get_value() != Some(gen) {
                    return;
                }
                match result {
                    Ok(l) => {
                        listing.set(Some(l));
                        list_error.set(None);
                    }
                    Err(e) => list_error.set(Some(e.detail)),
                }
                loading.set(false);
            });
        });
    }
    let refresh = {
        let reload_folder = reload_folder.clone();
        move || {
            tick.update(|t| *t += 1);
            reload_folder();
        }
    };
    // An upload that lands here shows up in the table, and in the usage.
    {
        let id = id.clone();
        let refresh = refresh.clone();
        Effect::new(move |prev: Option<u32>| {
            let landed = uploads.landed.get();
            let seq = landed.as_ref().map_or(0, |l| l.seq);
            if let (Some(prev), Some(l)) = (prev, landed) {
                if prev != seq && l.folder == id {
                    if l.dir == path.get_untracked() {
                        refresh();
                    } else {
                        reload_folder();
                    }
                }
            }
            seq
        });
    }

    let permission = Memo::new(move |_| folder.get().map(|f| f.permission));
    let ready = Memo::new(move |_| folder.get().is_some_and(|f| f.state == "READY"));
    let can_write = move || ready.get() && permission.get().is_some_and(|p| p.can_write());
    let can_delete = move || ready.get() && permission.get().is_some_and(|p| p.can_delete());

    let open = RwSignal::new(None::<Open>);
    let dialog_busy = RwSignal::new(false);
    let dialog_error = RwSignal::new(None::<String>);
    let close = move || {
        open.set(None);
        dialog_busy.set(false);
        dialog_error.set(None);
    };
    let show = move |o: Open| {
        dialog_busy.set(false);
        dialog_error.set(None);
        open.set(Some(o));
    };

    // Uploads: the picker and drag-and-drop both end here.
    let notice = RwSignal::new(None::<String>);
    let add_files = {
        let id = id.clone();
        move |files: Vec<web_sys::File>| {
            if files.is_empty() {
                return;
            }
            if !can_write() {
                notice.set(Some(
                    "You can only read this folder; uploads need the rw permission.".into(),
                ));
                return;
            }
            notice.set(None);
            uploads.add(&id, &path.get_untracked(), files);
        }
    };
    let picker = NodeRef::<leptos::html::Input>::new();
    let on_pick = {
        let add_files = add_files.clone();
        move |_| {
            let Some(input) = picker.get() else { return };
            let input: web_sys::HtmlInputElement = input;
            add_files(file_list(input.files()));
            // The same file may be picked again (to resume it).
            input.set_value("");
        }
    };
    let dragging = RwSignal::new(false);
    let has_files = |ev: &web_sys::DragEvent| {
        ev.data_transfer().is_some_and(|dt| {
            dt.types()
                .iter()
                .any(|t| t.as_string().as_deref() == Some("Files"))
        })
    };
    let on_drop = {
        let add_files = add_files.clone();
        move |ev: web_sys::DragEvent| {
            ev.prevent_default();
            dragging.set(false);
            add_files(file_list(ev.data_transfer().and_then(|dt| dt.files())));
        }
    };

    // Dialog actions.
    let do_delete = {
        let id = id.clone();
        let refresh = refresh.clone();
        move |_| {
            let Some(Open::Delete(e)) = open.get_untracked() else {
                return;
            };
            dialog_busy.set(true);
            let id = id.clone();
            let refresh = refresh.clone();
            leptos::task::spawn_local(async move {
                match api::delete_files(&id, vec![e.path.clone()]).await {
                    Ok(_) => {
                        notice.set(Some(format!("Deleted {}.", e.name)));
                        close();
                        refresh();
                    }
                    Err(err) => {
                        dialog_error.set(Some(err.detail));
                        dialog_busy.set(false);
                    }
                }
            });
        }
    };
    let do_leave = {
        let id = id.clone();
        move |_| {
            dialog_busy.set(true);
            let id = id.clone();
            leptos::task::spawn_local(async move {
                match api::leave(&id).await {
                    Ok(()) => crate::navigate("/folders"),
                    Err(err) => {
                        dialog_error.set(Some(err.detail));
                        dialog_busy.set(false);
                    }
                }
            });
        }
    };

    let fid = id.clone();
    let breadcrumbs = move || {
        let f = folder.get();
        let name = f.map(|f| f.name).unwrap_or_else(|| "…".into());
        let p = path.get();
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let mut crumbs = vec![if parts.is_empty() {
            view! { <span class="crumb current">{name}</span> }.into_any()
        } else {
            view! { <a class="crumb" href=folder_href(&fid, "")>{name}</a> }.into_any()
        }];
        for (i, part) in parts.iter().enumerate() {
            let sub = parts[..=i].join("/");
            crumbs.push(view! { <span class="crumb-sep">"/"</span> }.into_any());
            if i + 1 == parts.len() {
                crumbs.push(
                    view! { <span class="crumb current">{part.to_string()}</span> }.into_any(),
                );
            } else {
                crumbs.push(
                    view! { <a class="crumb" href=folder_href(&fid, &sub)>{part.to_string()}</a> }
                        .into_any(),
                );
            }
        }
        view! { <nav class="breadcrumbs" id="breadcrumbs" aria-label="Path">{crumbs}</nav> }
    };

    let fid = id.clone();
    let header = move || {
        let f = folder.get()?;
        let owner = f.permission == Permission::Owner;
        let shared = f.kind != "project" && !owner;
        let zip = api::download_url(&fid, "");
        Some(view! {
            <section class="card folder-head">
                <div class="title-row">
                    <h1 id="folder-name"><span class="icon icon-dir big" aria-hidden="true"></span>{f.name.clone()}</h1>
                    <PermissionBadge permission=f.permission />
                    {(f.state == "CLONING").then(|| view! { <span class="tag">"cloning…"</span> })}
                    {(f.kind == "home").then(|| view! { <span class="tag home-tag" title="Mounted at /home/work in your sessions; never shared">"home"</span> })}
                    <span class="spacer"></span>
                    <div class="row-actions">
                        <a class="button small" id="download-folder" href=zip download=format!("{}.zip", f.name)>"Download .zip"</a>
                        {(owner && f.kind == "user").then(|| view! {
                            <button class="small" id="share-button" on:click=move |_| show(Open::Share)>"Share"</button>
                        })}
                        <button class="small" id="clone-button" on:click=move |_| show(Open::Clone)>"Clone"</button>
                        {shared.then(|| view! {
                            <button class="small danger" id="leave-button" on:click=move |_| show(Open::Leave)>"Leave"</button>
                        })}
                    </div>
                </div>
                <div class="folder-meta">
                    <span class="muted">
                        {ownership(&f)}
                        {(!owner).then(|| format!(" · {}", f.permission.describe()))}
                    </span>
                    <UsageBar folder=f.clone() />
                </div>
                {(f.state == "CLONING").then(|| view! {
                    <p class="muted small-print">"A clone is still filling this folder; it can be read, written and mounted once it is done."</p>
                })}
            </section>
        })
    };

    let fid = id.clone();
    let table = move || {
        let Some(l) = listing.get() else {
            return if list_error.get().is_some() {
                ().into_any()
            } else {
                view! { <p class="muted">"Loading files…"</p> }.into_any()
            };
        };
        let p = path.get();
        if l.entries.is_empty() && l.total == 0 {
            let msg = if can_write() {
                "This directory is empty. Drop files anywhere on this page, or use Upload files."
            } else {
                "This directory is empty."
            };
            return view! { <p class="empty" id="files-empty">{msg}</p> }.into_any();
        }
        let (w, d) = (can_write(), can_delete());
        let up = (!p.is_empty()).then(|| {
            let href = folder_href(&fid, &parent(&p));
            view! {
                <tr class="up-row">
                    <td colspan="4"><a href=href><span class="icon icon-up" aria-hidden="true"></span>".. (up one level)"</a></td>
                </tr>
            }
        });
        let fid2 = fid.clone();
        view! {
            <table class="grid files" id="files">
                <thead><tr>
                    <th>"Name"</th><th class="right">"Size"</th><th>"Modified"</th><th></th>
                </tr></thead>
                <tbody>
                    {up}
                    {l.entries.into_iter().map(|e| {
                        let fid = fid2.clone();
                        let dir = e.kind == "dir";
                        let download = api::download_url(&fid, &e.path);
                        let name_cell = if dir {
                            view! {
                                <a class="file-link dir" href=folder_href(&fid, &e.path)>
                                    <span class="icon icon-dir" aria-hidden="true"></span>{e.name.clone()}
                                </a>
                            }.into_any()
                        } else if e.kind == "file" {
                            view! {
                                <a class="file-link" href=download.clone() download=e.name.clone() title="Download">
                                    <span class="icon icon-file" aria-hidden="true"></span>{e.name.clone()}
                                </a>
                            }.into_any()
                        } else {
                            // Links are never followed and special files never read: shown,
                            // renamable and deletable, not downloadable.
                            let (tag, why) = special_kind(&e.kind);
                            view! {
                                <span class="file-link special" title=why>
                                    <span class="icon icon-file" aria-hidden="true"></span>{e.name.clone()}
                                </span>
                                <span class="tag" title=why>{tag}</span>
                            }.into_any()
                        };
                        let downloadable = dir || e.kind == "file";
                        let (er, ed) = (e.clone(), e.clone());
                        view! {
                            <tr class="file-row" data-name=e.name.clone() data-kind=e.kind.clone()>
                                <td class="name-cell">{name_cell}</td>
                                <td class="right mono" title=format!("{} bytes", e.size)>
                                    {if e.kind != "file" { "—".to_string() } else { bytes(e.size) }}
                                </td>
                                <td class="mono muted">{modified(&e.modified)}</td>
                                <td>
                                    <div class="row-actions">
                                        {downloadable.then(|| view! {
                                            <a class="button small ghost download" href=download
                                                download=if dir { format!("{}.zip", e.name) } else { e.name.clone() }>
                                                {if dir { "Download .zip" } else { "Download" }}
                                            </a>
                                        })}
                                        {w.then(|| view! {
                                            <button class="small ghost rename" on:click=move |_| show(Open::Rename(er.clone()))>"Rename"</button>
                                        })}
                                        {d.then(|| view! {
                                            <button class="small ghost danger delete" on:click=move |_| show(Open::Delete(ed.clone()))>"Delete"</button>
                                        })}
                                    </div>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };

    let pager = move || {
        let l = listing.get()?;
        if l.total <= PAGE && l.offset == 0 {
            return None;
        }
        let from = l.offset + 1;
        let to = l.offset + l.entries.len() as u64;
        let (prev, next) = (l.offset.saturating_sub(PAGE), l.offset + PAGE);
        let has_next = next < l.total;
        Some(view! {
            <div class="pager" id="pager">
                <span class="muted">{format!("{from}–{to} of {}", l.total)}</span>
                <button class="small" id="page-prev" disabled=l.offset == 0
                    on:click=move |_| page.set((path.get_untracked(), prev))>"← Previous"</button>
                <button class="small" id="page-next" disabled=!has_next
                    on:click=move |_| page.set((path.get_untracked(), next))>"Next →"</button>
            </div>
        })
    };

    let fid = id.clone();
    let dialogs = move || {
        let o = open.get()?;
        let on_close = Callback::new(move |_| close());
        let fid = fid.clone();
        Some(match o {
            Open::Mkdir => view! {
                <MkdirDialog folder=fid dir=path.get_untracked() on_close=on_close
                    on_done=Callback::new(move |name: String| {
                        notice.set(Some(format!("Directory {name} created.")));
                        close();
                        tick.update(|t| *t += 1);
                    }) />
            }
            .into_any(),
            Open::Rename(e) => view! {
                <RenameDialog folder=fid entry=e on_close=on_close
                    on_done=Callback::new(move |to: FileEntry| {
                        notice.set(Some(format!("Renamed to {}.", to.path)));
                        close();
                        tick.update(|t| *t += 1);
                    }) />
            }
            .into_any(),
            Open::Delete(e) => {
                let what = if e.kind == "dir" {
                    format!("The directory {} and everything in it will be deleted. This cannot be undone.", e.path)
                } else {
                    format!(
                        "{} ({}) will be deleted. This cannot be undone.",
                        e.path,
                        bytes(e.size)
                    )
                };
                view! {
                    <ConfirmDialog title=format!("Delete {}?", e.name) id="delete-dialog" message=what
                        confirm="Delete".to_string() on_confirm=Callback::new(do_delete.clone())
                        on_close=on_close busy=dialog_busy error=dialog_error />
                }.into_any()
            }
            Open::Share => match folder.get_untracked() {
                Some(f) => view! { <ShareDialog folder=f on_close=on_close /> }.into_any(),
                None => ().into_any(),
            },
            Open::Clone => match folder.get_untracked() {
                Some(f) => view! { <CloneDialog folder=f on_close=on_close /> }.into_any(),
                None => ().into_any(),
            },
            Open::Leave => {
                let f = folder.get_untracked();
                let (name, owner) = f.map(|f| (f.name, f.owner)).unwrap_or_default();
                view! {
                    <ConfirmDialog title=format!("Leave {name}?") id="leave-dialog"
                        message=format!("You will no longer see {name} or mount it; {owner} can invite you again.")
                        confirm="Leave".to_string() on_confirm=Callback::new(do_leave.clone())
                        on_close=on_close busy=dialog_busy error=dialog_error />
                }.into_any()
            }
        })
    };

    let fid = id.clone();
    let zip_here = move || {
        let p = path.get();
        (!p.is_empty()).then(|| {
            let name = p.rsplit('/').next().unwrap_or(&p).to_string();
            view! {
                <a class="button small ghost" id="download-dir" href=api::download_url(&fid, &p)
                    download=format!("{name}.zip")>"Download this directory"</a>
            }
        })
    };
    let drop_target = move || {
        let p = path.get();
        let name = folder.get().map(|f| f.name).unwrap_or_default();
        join(&name, &p)
    };

    view! {
        <div class="folder-page"
            on:dragenter=move |ev: web_sys::DragEvent| if has_files(&ev) { ev.prevent_default(); dragging.set(true); }
            on:dragover=move |ev: web_sys::DragEvent| if has_files(&ev) { ev.prevent_default(); dragging.set(true); }>
            <a class="back" href="#/folders">"← All folders"</a>
            {move || folder_error.get().map(|e| view! { <p class="error card" role="alert">{e}</p> })}
            {header}
            <UnfinishedUploads folder=id.clone() />
            <UploadList folder=id.clone() />
            <section class="card files-card">
                <div class="files-bar">
                    {breadcrumbs}
                    <span class="spacer"></span>
                    {move || loading.get().then(|| view! { <span class="muted small-print loading-note">"Loading…"</span> })}
                    {zip_here}
                    <Show when=can_write>
                        <button class="small" id="mkdir-button" on:click=move |_| show(Open::Mkdir)>"New directory"</button>
                        <button class="small primary" id="upload-button"
                            on:click=move |_| if let Some(i) = picker.get() { let i: web_sys::HtmlInputElement = i; i.click(); }>
                            "Upload files"
                        </button>
                    </Show>
                    <input type="file" multiple id="upload-input" class="visually-hidden" tabindex="-1"
                        node_ref=picker on:change=on_pick.clone() />
                </div>
                {move || notice.get().map(|n| view! { <p class="success" role="status" id="files-notice">{n}</p> })}
                {move || list_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <div class:dim=move || loading.get()>{table}</div>
                {pager}
            </section>
            {move || dragging.get().then(|| {
                let on_drop = on_drop.clone();
                view! {
                    <div class="drop-overlay" id="drop-overlay"
                        on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
                        on:dragleave=move |ev: web_sys::DragEvent| {
                            // Leaving for the outside of the window, not for a child.
                            if ev.related_target().is_none() || ev.target() == ev.current_target() {
                                dragging.set(false);
                            }
                        }
                        on:drop=on_drop>
                        <div class="drop-box">
                            {move || if can_write() {
                                format!("Drop to upload into {}", drop_target())
                            } else {
                                "You can only read this folder; uploads need the rw permission.".to_string()
                            }}
                        </div>
                    </div>
                }
            })}
            {dialogs}
        </div>
    }
}

#[component]
fn MkdirDialog(
    folder: String,
    dir: String,
    on_done: Callback<String>,
    on_close: Callback<()>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<String>);
    let target = {
        let dir = dir.clone();
        move || normalize_entry_path(&join(&dir, name.get().trim()))
    };
    let error = {
        let target = target.clone();
        move || {
            (tried.get() || !name.get().is_empty())
                .then(|| target().err())
                .flatten()
                .or(server_error.get())
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        server_error.set(None);
        let Ok(path) = target() else { return };
        if busy.get() {
            return;
        }
        busy.set(true);
        let folder = folder.clone();
        leptos::task::spawn_local(async move {
            match api::mkdir(&folder, &path).await {
                Ok(e) => on_done.run(e.name),
                Err(e) => {
                    server_error.set(Some(e.field("path").unwrap_or(e.detail)));
                    busy.set(false);
                }
            }
        });
    };
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(i) = input.get() {
            let _ = i.focus();
        }
    });
    let place = if dir.is_empty() {
        "the top of the folder".to_string()
    } else {
        dir.clone()
    };
    view! {
        <Dialog title="New directory".to_string() id="mkdir-dialog" on_close=on_close>
            <form on:submit=submit>
                <label>
                    <span>"Name " <span class="hint">{format!("in {place}; a/b makes both")}</span></span>
                    <input id="mkdir-name" type="text" autocomplete="off" node_ref=input
                        prop:value=move || name.get() on:input=move |ev| { server_error.set(None); name.set(event_target_value(&ev)) } />
                    {move || error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                <div class="actions end">
                    <button type="button" on:click=move |_| on_close.run(())>"Cancel"</button>
                    <button id="mkdir-submit" class="primary" type="submit" disabled=move || busy.get()>"Create"</button>
                </div>
            </form>
        </Dialog>
    }
}

#[component]
fn RenameDialog(
    folder: String,
    entry: FileEntry,
    on_done: Callback<FileEntry>,
    on_close: Callback<()>,
) -> impl IntoView {
    let to = RwSignal::new(entry.path.clone());
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<String>);
    let from = entry.path.clone();
    let error = move || {
        normalize_entry_path(to.get().trim())
            .err()
            .or(server_error.get())
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        server_error.set(None);
        let Ok(target) = normalize_entry_path(to.get().trim()) else {
            return;
        };
        if target == from {
            on_close.run(());
            return;
        }
        if busy.get() {
            return;
        }
        busy.set(true);
        let (folder, from) = (folder.clone(), from.clone());
        leptos::task::spawn_local(async move {
            match api::move_file(&folder, &from, &target).await {
                Ok(e) => on_done.run(e),
                Err(e) => {
                    server_error.set(Some(
                        e.field("to")
                            .or_else(|| e.field("path"))
                            .unwrap_or(e.detail),
                    ));
                    busy.set(false);
                }
            }
        });
    };
    // Focus with the name selected, not its directory: most renames keep the place.
    let input = NodeRef::<leptos::html::Input>::new();
    let path_len = entry.path.encode_utf16().count() as u32;
    let name_start = entry
        .path
        .rfind('/')
        .map_or(0, |i| entry.path[..=i].encode_utf16().count() as u32);
    Effect::new(move |_| {
        if let Some(i) = input.get() {
            let i: web_sys::HtmlInputElement = i;
            let _ = i.focus();
            let _ = i.set_selection_range(name_start, path_len);
        }
    });
    let kind = if entry.kind == "dir" {
        "directory"
    } else {
        "file"
    };
    view! {
        <Dialog title=format!("Rename {}", entry.name) id="rename-dialog" on_close=on_close>
            <form on:submit=submit>
                <label>
                    <span>"New path " <span class="hint">{format!("change the name, or the directories to move the {kind}")}</span></span>
                    <input id="rename-path" type="text" autocomplete="off" node_ref=input
                        prop:value=move || to.get() on:input=move |ev| { server_error.set(None); to.set(event_target_value(&ev)) } />
                    {move || error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                <p class="muted small-print">"Nothing is overwritten: if something already has the new path, nothing moves."</p>
                <div class="actions end">
                    <button type="button" on:click=move |_| on_close.run(())>"Cancel"</button>
                    <button id="rename-submit" class="primary" type="submit" disabled=move || busy.get()>"Rename"</button>
                </div>
            </form>
        </Dialog>
    }
}

/// The tag and explanation shown for an entry that is neither a file nor a directory.
fn special_kind(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "symlink" => ("link", "A symbolic link: berth never follows links inside folders, so it cannot be opened or downloaded here."),
        "fifo" => ("pipe", "A named pipe: only files and directories can be downloaded."),
        "socket" => ("socket", "A socket: only files and directories can be downloaded."),
        _ => ("device", "A device file: only files and directories can be downloaded."),
    }
}
