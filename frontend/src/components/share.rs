//! The Share dialog of a folder (its owner only): who has it and with what permission,
//! invitations still waiting, unshare, and invite someone by username.

use crate::api::{self, ApiError};
use crate::components::dialog::Dialog;
use crate::components::status::day;
use crate::components::vfolder::PermissionBadge;
use ::api::vfolders::{Invitation, Member, Permission, VFolder};
use leptos::prelude::*;

#[component]
pub fn ShareDialog(folder: VFolder, on_close: Callback<()>) -> impl IntoView {
    let id = folder.id.clone();
    let members = RwSignal::new(Vec::<Member>::new());
    let invitations = RwSignal::new(Vec::<Invitation>::new());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);

    let reload = {
        let id = id.clone();
        move || {
            let id = id.clone();
            leptos::task::spawn_local(async move {
                let (m, i) = (api::members(&id).await, api::folder_invitations(&id).await);
                match (m, i) {
                    (Ok(m), Ok(i)) => {
                        members.set(m);
                        invitations.set(i.into_iter().filter(|i| i.state == "PENDING").collect());
                    }
                    (Err(e), _) | (_, Err(e)) => error.set(Some(e.detail)),
                }
                loaded.set(true);
            });
        }
    };
    reload();

    let unshare = {
        let id = id.clone();
        move |m: Member| {
            let id = id.clone();
            error.set(None);
            notice.set(None);
            leptos::task::spawn_local(async move {
                match api::unshare(&id, &m.user_id).await {
                    Ok(()) => {
                        members.update(|v| v.retain(|x| x.user_id != m.user_id));
                        notice.set(Some(format!("{} no longer has this folder.", m.username)));
                    }
                    Err(e) => error.set(Some(e.detail)),
                }
            });
        }
    };

    let user = RwSignal::new(String::new());
    let permission = RwSignal::new("ro".to_string());
    let busy = RwSignal::new(false);
    let invite_error = RwSignal::new(None::<ApiError>);
    let tried = RwSignal::new(false);
    let user_error = move || {
        (tried.get() && user.get().trim().is_empty())
            .then(|| "Type the username of the person to invite.".to_string())
            .or_else(|| invite_error.get().and_then(|e| e.field("user")))
    };
    let submit = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            tried.set(true);
            invite_error.set(None);
            notice.set(None);
            let who = user.get().trim().to_string();
            if who.is_empty() || busy.get() {
                return;
            }
            let perm = permission.get();
            if let Err(m) = Permission::parse_grant(&perm) {
                invite_error.set(Some(ApiError {
                    status: 400,
                    detail: m,
                    errors: vec![],
                }));
                return;
            }
            busy.set(true);
            let id = id.clone();
            leptos::task::spawn_local(async move {
                match api::invite(&id, &who, &perm).await {
                    Ok(inv) => {
                        notice.set(Some(format!(
                            "{} is invited ({}); the folder is shared once they accept.",
                            inv.invitee,
                            inv.permission.describe()
                        )));
                        invitations.update(|v| v.push(inv));
                        user.set(String::new());
                        tried.set(false);
                    }
                    Err(e) => invite_error.set(Some(e)),
                }
                busy.set(false);
            });
        }
    };

    view! {
        <Dialog title=format!("Share {}", folder.name) id="share-dialog" on_close=on_close>
            <p class="muted">"People you share this folder with can mount it in their sessions and use it in the file manager, with the permission you give them."</p>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <h3 class="sub">"Shared with"</h3>
            {move || {
                if !loaded.get() {
                    return view! { <p class="muted">"Loading…"</p> }.into_any();
                }
                let list = members.get();
                if list.is_empty() {
                    return view! { <p class="muted small-print" id="share-none">"Nobody yet."</p> }.into_any();
                }
                let unshare = unshare.clone();
                view! {
                    <table class="grid compact" id="share-members">
                        <tbody>
                            {list.into_iter().map(|m| {
                                let unshare = unshare.clone();
                                let who = m.username.clone();
                                let gone = m.clone();
                                view! {
                                    <tr class="member-row" data-username=m.username.clone()>
                                        <td class="strong">{m.username.clone()}</td>
                                        <td><PermissionBadge permission=m.permission /></td>
                                        <td class="right">
                                            <button class="ghost small unshare" title=format!("Stop sharing with {who}")
                                                on:click=move |_| unshare(gone.clone())>"Unshare"</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            {move || {
                let pending = invitations.get();
                (!pending.is_empty()).then(|| view! {
                    <h3 class="sub">"Invited, not accepted yet"</h3>
                    <ul class="plain" id="share-pending">
                        {pending.into_iter().map(|i| view! {
                            <li>
                                <span class="strong">{i.invitee.clone()}</span>" "
                                <PermissionBadge permission=i.permission />
                                <span class="muted small-print">{format!(" since {}", day(&i.created_at))}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                })
            }}
            <h3 class="sub">"Invite"</h3>
            <form class="inline-form" id="invite-form" on:submit=submit>
                <label class="grow">
                    "Username"
                    <input id="invite-user" type="text" autocomplete="off" placeholder="e.g. bob"
                        prop:value=move || user.get() on:input=move |ev| user.set(event_target_value(&ev)) />
                    {move || user_error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                <label>
                    "Permission"
                    <select id="invite-permission" prop:value=move || permission.get()
                        on:change=move |ev| permission.set(event_target_value(&ev))>
                        <option value="ro">"Read only (ro)"</option>
                        <option value="rw">"Read and write (rw)"</option>
                        <option value="wd">"Read, write and delete (wd)"</option>
                    </select>
                </label>
                <button id="invite-submit" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Inviting…" } else { "Invite" }}
                </button>
            </form>
            {move || invite_error.get().filter(|e| e.field("user").is_none()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
            {move || notice.get().map(|n| view! { <p class="success" role="status">{n}</p> })}
            <div class="actions end">
                <button id="share-close" on:click=move |_| on_close.run(())>"Done"</button>
            </div>
        </Dialog>
    }
}
