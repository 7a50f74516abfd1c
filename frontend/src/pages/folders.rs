//! Folders: mine, shared with me and my projects', each with its usage against the quota;
//! create a folder (admins also project folders), answer invitations, and the trash.

use crate::api::{self, ApiError};
use crate::components::dialog::{ConfirmDialog, Dialog};
use crate::components::status::{count, day};
use crate::components::vfolder::{bytes, ownership, PermissionBadge, UsageBar};
use ::api::auth::User;
use ::api::projects::Project;
use ::api::vfolders::{validate_name, CreateVFolder, Invitation, Permission, VFolder};
use leptos::prelude::*;

fn sort(v: &mut [VFolder]) {
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.owner.cmp(&b.owner)));
}

#[component]
pub fn FoldersPage() -> impl IntoView {
    let me = expect_context::<User>();
    let folders = RwSignal::new(Vec::<VFolder>::new());
    let loaded = RwSignal::new(false);
    let list_error = RwSignal::new(None::<String>);
    let trash = RwSignal::new(Vec::<VFolder>::new());
    let trash_error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let row_error = RwSignal::new(None::<String>);

    leptos::task::spawn_local(async move {
        match api::list_vfolders().await {
            Ok(list) => folders.set(list),
            Err(e) => list_error.set(Some(e.detail)),
        }
        loaded.set(true);
    });
    leptos::task::spawn_local(async move {
        match api::list_trash().await {
            Ok(list) => trash.set(list),
            Err(e) => trash_error.set(Some(e.detail)),
        }
    });

    let add = move |f: VFolder| {
        folders.update(|v| {
            v.retain(|x| x.id != f.id);
            v.push(f);
            sort(v);
        })
    };
    let renaming = RwSignal::new(None::<VFolder>);
    let leaving = RwSignal::new(None::<VFolder>);
    let purging = RwSignal::new(None::<VFolder>);
    let dialog_busy = RwSignal::new(false);
    let dialog_error = RwSignal::new(None::<String>);
    let close_dialogs = move || {
        renaming.set(None);
        leaving.set(None);
        purging.set(None);
        dialog_busy.set(false);
        dialog_error.set(None);
    };

    let to_trash = move |f: VFolder| {
        row_error.set(None);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::trash_vfolder(&f.id).await {
                Ok(t) => {
                    folders.update(|v| v.retain(|x| x.id != t.id));
                    notice.set(Some(format!(
                        "{} is in the trash; restore it from there if you need it again.",
                        t.name
                    )));
                    trash.update(|v| {
                        v.retain(|x| x.id != t.id);
                        v.insert(0, t);
                    });
                }
                Err(e) => row_error.set(Some(e.detail)),
            }
        });
    };
    let restore = move |f: VFolder| {
        trash_error.set(None);
        leptos::task::spawn_local(async move {
            match api::restore_vfolder(&f.id).await {
                Ok(r) => {
                    trash.update(|v| v.retain(|x| x.id != r.id));
                    notice.set(Some(format!("{} is back.", r.name)));
                    add(r);
                }
                Err(e) => trash_error.set(Some(e.detail)),
            }
        });
    };
    let leave = move |_| {
        let Some(f) = leaving.get_untracked() else {
            return;
        };
        dialog_busy.set(true);
        leptos::task::spawn_local(async move {
            match api::leave(&f.id).await {
                Ok(()) => {
                    folders.update(|v| v.retain(|x| x.id != f.id));
                    notice.set(Some(format!("You left {}.", f.name)));
                    close_dialogs();
                }
                Err(e) => {
                    dialog_error.set(Some(e.detail));
                    dialog_busy.set(false);
                }
            }
        });
    };
    let purge = move |_| {
        let Some(f) = purging.get_untracked() else {
            return;
        };
        dialog_busy.set(true);
        leptos::task::spawn_local(async move {
            match api::purge_vfolder(&f.id).await {
                Ok(()) => {
                    trash.update(|v| v.retain(|x| x.id != f.id));
                    notice.set(Some(format!("{} is deleted for good.", f.name)));
                    close_dialogs();
                }
                Err(e) => {
                    dialog_error.set(Some(e.detail));
                    dialog_busy.set(false);
                }
            }
        });
    };

    let actions = RowActions {
        rename: Callback::new(move |f| renaming.set(Some(f))),
        trash: Callback::new(to_trash),
        leave: Callback::new(move |f| leaving.set(Some(f))),
    };
    let group = move |title: &'static str,
                      id: &'static str,
                      empty: &'static str,
                      pick: fn(&VFolder) -> bool| {
        view! {
            <section class="folder-group" id=id>
                <div class="list-head">
                    <h3 class="sub">{title}</h3>
                    <span class="muted small-print">
                        {move || count(folders.with(|v| v.iter().filter(|f| pick(f)).count()), "folder", "folders")}
                    </span>
                </div>
                {move || {
                    let list: Vec<VFolder> = folders.with(|v| v.iter().filter(|f| pick(f)).cloned().collect());
                    if list.is_empty() {
                        view! { <p class="muted small-print empty-group">{empty}</p> }.into_any()
                    } else {
                        view! {
                            <table class="grid folders">
                                <thead><tr>
                                    <th>"Name"</th><th>"Permission"</th><th class="usage-col">"Usage"</th><th></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|f| view! { <FolderRow folder=f actions=actions /> }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                }}
            </section>
        }
    };

    let is_admin = me.role.is_admin();
    view! {
        <div class="folders-page">
            <div class="stack">
                <CreateFolderForm is_admin=is_admin on_created=Callback::new(move |f: VFolder| {
                    notice.set(Some(format!("Folder {} created.", f.name)));
                    add(f);
                }) />
                <InvitationsCard on_accepted=Callback::new(move |f: VFolder| {
                    notice.set(Some(format!("{} is now shared with you ({}).", f.name, f.permission.describe())));
                    add(f);
                }) />
            </div>
            <div class="stack">
                <section class="card list">
                    <div class="list-head">
                        <h2>"Folders"</h2>
                        <span class="muted">{move || {
                            let (n, b) = folders.with(|v| (v.len(), v.iter().map(|f| f.bytes).sum::<u64>()));
                            format!("{} · {}", count(n, "folder", "folders"), bytes(b))
                        }}</span>
                    </div>
                    {move || notice.get().map(|n| view! { <p class="success" role="status" id="folders-notice">{n}</p> })}
                    {move || list_error.get().map(|e| view! { <p class="error">{e}</p> })}
                    {move || row_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    {move || if !loaded.get() {
                        view! { <p class="muted">"Loading folders…"</p> }.into_any()
                    } else {
                        view! {
                            <div>
                                {group("Mine", "folders-mine", "No folders of your own yet. Create one to keep data between sessions.",
                                    |f| f.kind != "project" && f.permission == Permission::Owner)}
                                {group("Shared with me", "folders-shared", "Nothing is shared with you. Invitations appear on the left.",
                                    |f| f.kind != "project" && f.permission != Permission::Owner)}
                                {group("Project", "folders-project", "Your projects have no folders.",
                                    |f| f.kind == "project")}
                            </div>
                        }.into_any()
                    }}
                </section>
                <section class="card trash" id="trash">
                    <div class="list-head">
                        <h2>"Trash"</h2>
                        <span class="muted small-print">{move || count(trash.with(Vec::len), "folder", "folders")}</span>
                    </div>
                    {move || trash_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    {move || {
                        let list = trash.get();
                        if list.is_empty() {
                            view! { <p class="muted small-print">"The trash is empty. A folder you delete waits here until you restore it or delete it for good."</p> }.into_any()
                        } else {
                            view! {
                                <table class="grid">
                                    <thead><tr><th>"Name"</th><th>"Size"</th><th>"Deleted"</th><th></th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|f| {
                                            let (r, p) = (f.clone(), f.clone());
                                            view! {
                                                <tr class="trash-row" data-name=f.name.clone()>
                                                    <td class="strong">{f.name.clone()}</td>
                                                    <td>{bytes(f.bytes)}</td>
                                                    <td class="mono">{f.deleted_at.as_deref().map(day).unwrap_or_default()}</td>
                                                    <td>
                                                        <div class="row-actions">
                                                            <button class="small restore" on:click=move |_| restore(r.clone())>"Restore"</button>
                                                            <button class="small danger purge" on:click=move |_| {
                                                                dialog_error.set(None);
                                                                purging.set(Some(p.clone()));
                                                            }>"Delete for good"</button>
                                                        </div>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }
                    }}
                </section>
            </div>
            {move || renaming.get().map(|f| view! {
                <RenameFolderDialog folder=f
                    on_done=Callback::new(move |f: VFolder| {
                        notice.set(Some(format!("Renamed to {}.", f.name)));
                        add(f);
                        close_dialogs();
                    })
                    on_close=Callback::new(move |_| close_dialogs()) />
            })}
            {move || leaving.get().map(|f| view! {
                <ConfirmDialog title=format!("Leave {}?", f.name) id="leave-dialog"
                    message=format!("You will no longer see {} or mount it; {} can invite you again.", f.name, f.owner)
                    confirm="Leave".to_string() on_confirm=Callback::new(leave)
                    on_close=Callback::new(move |_| close_dialogs())
                    busy=dialog_busy error=dialog_error />
            })}
            {move || purging.get().map(|f| view! {
                <ConfirmDialog title=format!("Delete {} for good?", f.name) id="purge-dialog"
                    message=format!("Every file in {} ({}) is removed. This cannot be undone.", f.name, bytes(f.bytes))
                    confirm="Delete for good".to_string() on_confirm=Callback::new(purge)
                    on_close=Callback::new(move |_| close_dialogs())
                    busy=dialog_busy error=dialog_error />
            })}
        </div>
    }
}

/// What a folder row can ask the page to do.
#[derive(Clone, Copy)]
struct RowActions {
    rename: Callback<VFolder>,
    trash: Callback<VFolder>,
    leave: Callback<VFolder>,
}

#[component]
fn FolderRow(folder: VFolder, actions: RowActions) -> impl IntoView {
    let href = crate::folder_href(&folder.id, "");
    let owner = folder.permission == Permission::Owner;
    let shared = folder.kind != "project" && !owner;
    let cloning = folder.state == "CLONING";
    // A home keeps its name; it may be deleted (the server refuses while a session uses it).
    let home = folder.kind == "home";
    let (f1, f2, f3) = (folder.clone(), folder.clone(), folder.clone());
    view! {
        <tr class="folder-row" data-name=folder.name.clone() data-id=folder.id.clone()>
            <td>
                <a class="folder-link strong" href=href.clone()>
                    <span class="icon icon-dir" aria-hidden="true"></span>{folder.name.clone()}
                </a>
                {cloning.then(|| view! { <span class="tag">"cloning…"</span> })}
                {home.then(|| view! { <span class="tag home-tag" title="Mounted at /home/work in your sessions; never shared">"home"</span> })}
                <div class="muted small-print">{ownership(&folder)}</div>
            </td>
            <td><PermissionBadge permission=folder.permission /></td>
            <td class="usage-col"><UsageBar folder=folder.clone() /></td>
            <td>
                <div class="row-actions">
                    <a class="button small" href=href>"Open"</a>
                    {(owner && !home).then(|| view! {
                        <button class="small ghost rename-folder" on:click=move |_| actions.rename.run(f1.clone())>"Rename"</button>
                    })}
                    {owner.then(|| view! {
                        <button class="small ghost trash-folder"
                            title=if home { "Move to the trash (only while no session uses it; the next session gets a fresh home)" } else { "Move to the trash" }
                            on:click=move |_| actions.trash.run(f2.clone())>"Delete"</button>
                    })}
                    {shared.then(|| view! {
                        <button class="small ghost leave-folder" on:click=move |_| actions.leave.run(f3.clone())>"Leave"</button>
                    })}
                </div>
            </td>
        </tr>
    }
}

#[component]
fn RenameFolderDialog(
    folder: VFolder,
    on_done: Callback<VFolder>,
    on_close: Callback<()>,
) -> impl IntoView {
    let name = RwSignal::new(folder.name.clone());
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<String>);
    let id = folder.id.clone();
    let error = move || {
        validate_name(name.get().trim())
            .err()
            .or(server_error.get())
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get().trim().to_string();
        if validate_name(&n).is_err() || busy.get() {
            return;
        }
        busy.set(true);
        server_error.set(None);
        let id = id.clone();
        leptos::task::spawn_local(async move {
            match api::rename_vfolder(&id, &n).await {
                Ok(f) => on_done.run(f),
                Err(e) => server_error.set(Some(e.field("name").unwrap_or(e.detail))),
            }
            busy.set(false);
        });
    };
    view! {
        <Dialog title=format!("Rename {}", folder.name) id="rename-folder-dialog" on_close=on_close>
            <form on:submit=submit>
                <label>
                    "New name"
                    <input id="rename-folder-name" type="text" maxlength="64" autocomplete="off"
                        prop:value=move || name.get() on:input=move |ev| { server_error.set(None); name.set(event_target_value(&ev)) } />
                    {move || error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                <p class="muted small-print">"Sessions that mount it by name use the new name from their next launch."</p>
                <div class="actions end">
                    <button type="button" on:click=move |_| on_close.run(())>"Cancel"</button>
                    <button id="rename-folder-submit" class="primary" type="submit" disabled=move || busy.get()>"Rename"</button>
                </div>
            </form>
        </Dialog>
    }
}

#[component]
fn CreateFolderForm(is_admin: bool, on_created: Callback<VFolder>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("user".to_string());
    let project = RwSignal::new(String::new());
    let projects = RwSignal::new(Vec::<Project>::new());
    let projects_error = RwSignal::new(None::<String>);
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);
    if is_admin {
        leptos::task::spawn_local(async move {
            match api::get::<Vec<Project>>("/api/v1/projects").await {
                Ok(list) => projects.set(list),
                Err(e) => projects_error.set(Some(e.detail)),
            }
        });
    }
    let request = move || CreateVFolder {
        name: name.get().trim().to_string(),
        kind: (kind.get() == "project").then(|| "project".to_string()),
        project: Some(project.get()).filter(|p| kind.get() == "project" && !p.is_empty()),
    };
    // The same checks the gateway runs (`api::vfolders`).
    let errors = Memo::new(move |_| request().validate().err().unwrap_or_default());
    let field_error = move |f: &'static str| {
        move || {
            let show = tried.get() || (f == "name" && !name.get().is_empty());
            show.then(|| {
                errors
                    .get()
                    .into_iter()
                    .find(|e| e.field == f)
                    .map(|e| e.message)
            })
            .flatten()
            .or_else(|| server_error.get().and_then(|e| e.field(f)))
            .map(|m| view! { <span class="field-error">{m}</span> })
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        server_error.set(None);
        if !errors.get().is_empty() || busy.get() {
            return;
        }
        let req = request();
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::create_vfolder(&req).await {
                Ok(f) => {
                    name.set(String::new());
                    tried.set(false);
                    on_created.run(f);
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card" id="create-folder" on:submit=submit>
            <h2>"New folder"</h2>
            <label>
                <span>"Name " <span class="hint">"letters, digits, '.', '_' and '-'"</span></span>
                <input id="new-folder-name" type="text" autocomplete="off" maxlength="80" placeholder="e.g. datasets"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                {field_error("name")}
            </label>
            {is_admin.then(|| view! {
                <div class="row">
                    <label>
                        "Type"
                        <select id="new-folder-type" prop:value=move || kind.get()
                            on:change=move |ev| kind.set(event_target_value(&ev))>
                            <option value="user">"Personal"</option>
                            <option value="project">"Project"</option>
                        </select>
                        {field_error("type")}
                    </label>
                    <label>
                        "Project"
                        <select id="new-folder-project" disabled=move || kind.get() != "project"
                            prop:value=move || project.get() on:change=move |ev| project.set(event_target_value(&ev))>
                            <option value="">"Choose…"</option>
                            {move || projects.get().into_iter().map(|p| view! {
                                <option value=p.name.clone()>{p.name.clone()}</option>
                            }).collect_view()}
                        </select>
                        {field_error("project")}
                        {move || projects_error.get().map(|e| view! { <span class="field-error">{e}</span> })}
                    </label>
                </div>
            })}
            {move || (kind.get() == "project").then(|| view! {
                <p class="muted small-print">"Every member of the project can read, write and delete in a project folder."</p>
            })}
            {move || server_error.get().filter(|e| e.errors.is_empty()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
            <div class="actions end">
                <button id="create-folder-submit" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create folder" }}
                </button>
            </div>
        </form>
    }
}

#[component]
fn InvitationsCard(on_accepted: Callback<VFolder>) -> impl IntoView {
    let inbox = RwSignal::new(Vec::<Invitation>::new());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        match api::inbox().await {
            Ok(list) => inbox.set(list),
            Err(e) => error.set(Some(e.detail)),
        }
        loaded.set(true);
    });
    let answer = move |inv: Invitation, accept: bool| {
        error.set(None);
        busy.set(Some(inv.id.clone()));
        leptos::task::spawn_local(async move {
            let result = if accept {
                api::accept_invitation(&inv.id).await.map(Some)
            } else {
                api::decline_invitation(&inv.id).await.map(|_| None)
            };
            match result {
                Ok(folder) => {
                    inbox.update(|v| v.retain(|i| i.id != inv.id));
                    if let Some(f) = folder {
                        on_accepted.run(f);
                    }
                }
                Err(e) => error.set(Some(e.detail)),
            }
            busy.set(None);
        });
    };
    view! {
        <section class="card" id="invitations">
            <div class="list-head">
                <h2>"Invitations"</h2>
                <span class="muted small-print">{move || count(inbox.with(Vec::len), "waiting", "waiting")}</span>
            </div>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || {
                let list = inbox.get();
                if !loaded.get() {
                    view! { <p class="muted small-print">"Loading…"</p> }.into_any()
                } else if list.is_empty() {
                    view! { <p class="muted small-print">"No invitations. When someone shares a folder with you, it waits here for your answer."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain invitations">
                            {list.into_iter().map(|i| {
                                let (a, d) = (i.clone(), i.clone());
                                let id = i.id.clone();
                                let pending = move || busy.get().as_deref() == Some(id.as_str());
                                let pending2 = pending.clone();
                                view! {
                                    <li class="invitation" data-folder=i.vfolder_name.clone()>
                                        <div>
                                            <span class="strong">{i.inviter.clone()}</span>" shares "
                                            <span class="strong">{i.vfolder_name.clone()}</span>" "
                                            <PermissionBadge permission=i.permission />
                                        </div>
                                        <div class="muted small-print">{format!("{} · {}", i.permission.describe(), day(&i.created_at))}</div>
                                        <div class="row-actions start">
                                            <button class="small primary accept" disabled=pending on:click=move |_| answer(a.clone(), true)>"Accept"</button>
                                            <button class="small decline" disabled=pending2 on:click=move |_| answer(d.clone(), false)>"Decline"</button>
                                        </div>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
        </section>
    }
}
