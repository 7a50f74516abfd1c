//! SSH in the console: Settings' "SSH keys" card (add a pasted public key with a name, list
//! them with their fingerprints, remove one) and the session page's line to paste into a
//! terminal (`berth ssh-config >> ~/.ssh/config`, then `ssh berth-NAME`), or the sentence why
//! the session has no SSH.

use crate::api;
use crate::components::dialog::{copy_text, Copied};
use crate::components::listed::{ConfirmButton, Listed};
use crate::components::status::when;
use ::api::session::{Session, SessionStatus};
use ::api::ssh::{host_alias, precheck_key, validate_key_name, NewSshKey, SshKey};
use leptos::prelude::*;

#[component]
pub fn SshKeysCard() -> impl IntoView {
    let keys = Listed::<SshKey>::new("/api/v1/me/ssh-keys".into());
    let name = RwSignal::new(String::new());
    let text = RwSignal::new(String::new());
    let touched = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let add_error = RwSignal::new(None::<String>);
    let added = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(None::<String>);

    // The server's rules that need no parser, before submit; the rest is the server's sentence.
    let key_error = move || {
        let t = text.get();
        (touched.get() || !t.is_empty())
            .then(|| precheck_key(&t).err())
            .flatten()
    };
    let name_error = move || {
        let n = name.get();
        (!n.trim().is_empty())
            .then(|| validate_key_name(&n).err())
            .flatten()
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        add_error.set(None);
        added.set(None);
        if busy.get() || key_error().is_some() || name_error().is_some() {
            return;
        }
        let n = name.get().trim().to_string();
        let req = NewSshKey {
            name: (!n.is_empty()).then_some(n),
            key: text.get(),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post::<_, SshKey>("/api/v1/me/ssh-keys", &req).await {
                Ok(k) => {
                    name.set(String::new());
                    text.set(String::new());
                    touched.set(false);
                    added.set(Some(format!(
                        "Added \u{201c}{}\u{201d}; your running sessions accept it now.",
                        k.name
                    )));
                    keys.reload();
                }
                Err(e) => add_error.set(Some(
                    e.field("key")
                        .or_else(|| e.field("name"))
                        .unwrap_or(e.detail),
                )),
            }
            busy.set(false);
        });
    };

    let remove = Callback::new(move |id: String| {
        keys.delete(format!("/api/v1/me/ssh-keys/{id}"), move |t| t.id == id);
    });

    view! {
        <section class="card keys ssh-keys" id="ssh-keys-card">
            <div class="list-head">
                <h2>"SSH keys"</h2>
                <span class="muted">
                    "Your sessions' SSH servers let in these keys (ssh, scp, sftp, VS Code Remote-SSH through "
                    <code>"berth ssh-config"</code>")."
                </span>
            </div>
            <form class="ssh-key-form" id="ssh-key-form" on:submit=submit>
                <label>
                    <span>"Public key " <span class="hint">"the one line of ~/.ssh/id_ed25519.pub"</span></span>
                    <textarea id="ssh-key-text" class="mono" rows="3" spellcheck="false"
                        placeholder="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5… you@laptop"
                        prop:value=move || text.get()
                        on:input=move |ev| { added.set(None); text.set(event_target_value(&ev)) }></textarea>
                    {move || key_error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                <div class="inline-form">
                    <label class="grow">
                        <span>"Name " <span class="hint">"optional: the key's comment"</span></span>
                        <input id="ssh-key-name" type="text" placeholder="e.g. laptop" maxlength="64"
                            prop:value=move || name.get()
                            on:input=move |ev| name.set(event_target_value(&ev)) />
                        {move || name_error().map(|m| view! { <span class="field-error">{m}</span> })}
                    </label>
                    <button id="ssh-key-add" class="primary" type="submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Adding…" } else { "Add key" }}
                    </button>
                </div>
            </form>
            {move || add_error.get().map(|e| view! { <p class="error" role="alert" id="ssh-key-error">{e}</p> })}
            {move || added.get().map(|m| view! { <p class="success" role="status">{m}</p> })}
            {keys.view("Loading SSH keys…", "No SSH keys yet. Add one to reach your sessions with ssh.", move |list| {
                view! {
                    <table class="grid" id="ssh-keys">
                        <thead><tr>
                            <th>"Name"</th><th>"Fingerprint"</th><th>"Added"</th><th></th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|k| {
                                let kind = k.key.split(' ').next().unwrap_or("").to_string();
                                view! {
                                    <tr class="ssh-key-row" data-id=k.id.clone()>
                                        <td class="strong">{k.name.clone()}<div class="muted small">{kind}</div></td>
                                        <td class="mono fingerprint">{k.fingerprint.clone()}</td>
                                        <td class="mono">{when(&k.created_at)}</td>
                                        <td><div class="row-actions">
                                            <ConfirmButton id=k.id.clone() asking=confirming label="Remove" class="remove" on_confirm=remove />
                                        </div></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })}
        </section>
    }
}

/// The session page's SSH line: what to paste in a terminal, with a copy button, or why
/// there is no SSH in this session.
#[component]
pub fn SessionSshLine(session: Session) -> impl IntoView {
    let copied = RwSignal::new(None::<Copied>);
    let alias = host_alias(&session.name);
    let line = format!("berth ssh-config >> ~/.ssh/config && ssh {alias}");
    let body = match &session.ssh {
        None => Some(view! {
            <p class="muted" id="ssh-why">"This session has no SSH server: berth sets one up in interactive sessions."</p>
        }.into_any()),
        Some(s) if s.error.is_some() => Some(view! {
            <p class="muted" id="ssh-why">{s.error.clone()}</p>
        }.into_any()),
        Some(_) if session.status != SessionStatus::Running => None,
        Some(_) => {
            let text = line.clone();
            let copy = move |_| {
                let text = text.clone();
                leptos::task::spawn_local(async move { copied.set(Some(copy_text(&text).await)) });
            };
            Some(view! {
                <div class="ssh-line">
                    <code id="ssh-command">{line.clone()}</code>
                    <button id="ssh-copy" type="button" class="ghost small" on:click=copy>
                        {move || if copied.get() == Some(Copied::Yes) { "Copied" } else { "Copy" }}
                    </button>
                </div>
                {move || (copied.get() == Some(Copied::No)).then(|| view! {
                    <p class="error" role="alert">"This browser does not let the page copy here; select the line and press Ctrl+C."</p>
                })}
                <p class="muted small-print">
                    "Then scp, sftp, rsync -e ssh and VS Code Remote-SSH reach it as "<code>{alias.clone()}</code>
                    ". Needs the berth CLI logged in here and one of your SSH keys (Settings → SSH keys)."
                </p>
            }.into_any())
        }
    };
    body.map(|b| {
        view! {
            <section class="card ssh" id="session-ssh">
                <h2>"SSH"</h2>
                {b}
            </section>
        }
    })
}
