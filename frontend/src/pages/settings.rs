//! Settings: change the password, manage API keys (the secret is shown once, in a dialog),
//! keep my dotfiles (`components::dotfiles`), and read the resource limits that apply to me.

use crate::api::{self, ApiError};
use crate::components::dialog::{copy_text, select_input, Copied, Dialog};
use crate::components::dotfiles::DotfilesEditor;
use crate::components::listed::{ConfirmButton, Listed};
use crate::components::policy_form::{setting_in_words, SETTINGS};
use crate::components::status::{when, RoleBadge};
use ::api::auth::{
    validate_key_name, validate_password, ApiKey, ChangePassword, CreateKey, CreatedKey, Secret,
    User,
};
use ::api::dotfiles::Level;
use ::api::policy::UserPolicy;
use leptos::prelude::*;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let me = expect_context::<User>();
    view! {
        <div class="settings-page">
            <div class="stack">
                <section class="card account">
                    <h2>"Account"</h2>
                    <dl class="facts facts-2">
                        <dt>"Username"</dt><dd id="account-username">{me.username.clone()}</dd>
                        <dt>"Role"</dt><dd><RoleBadge role=me.role /></dd>
                        <dt>"Member since"</dt><dd>{when(&me.created_at)}</dd>
                    </dl>
                </section>
                <PasswordCard />
                <MyLimits user_id=me.id.clone() />
            </div>
            <div class="stack">
                <KeysCard />
                <crate::components::ssh::SshKeysCard />
                <DotfilesEditor level=Level::User base="/api/v1/dotfiles".to_string() title="Dotfiles"
                    intro="Written into every session you start, over your project's and the domain's files at the same path: ~/.bashrc, ~/.gitconfig, ~/.vimrc, tools in ~/.local/bin (always on PATH)." />
            </div>
        </div>
    }
}

#[component]
fn PasswordCard() -> impl IntoView {
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let touched = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let done = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);

    let new_error = move || {
        let n = new.get();
        (touched.get() || !n.is_empty())
            .then(|| validate_password(&n).err())
            .flatten()
    };
    let repeat_error = move || {
        let r = repeat.get();
        ((touched.get() || !r.is_empty()) && r != new.get())
            .then(|| "The two new passwords differ; type the same one twice.".to_string())
    };
    let current_error = move || {
        (touched.get() && current.get().is_empty())
            .then(|| "Enter your current password.".to_string())
            .or_else(|| server_error.get().and_then(|e| e.field("current_password")))
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        done.set(false);
        server_error.set(None);
        if busy.get()
            || current.get().is_empty()
            || validate_password(&new.get()).is_err()
            || new.get() != repeat.get()
        {
            return;
        }
        let req = ChangePassword {
            current_password: Secret(current.get()),
            new_password: Secret(new.get()),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post_no_content("/api/v1/me/password", &req).await {
                Ok(()) => {
                    current.set(String::new());
                    new.set(String::new());
                    repeat.set(String::new());
                    touched.set(false);
                    done.set(true);
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let field = |m: Option<String>| m.map(|m| view! { <span class="field-error">{m}</span> });
    view! {
        <form class="card" id="password-form" on:submit=submit>
            <h2>"Password"</h2>
            <label>
                "Current password"
                <input id="password-current" type="password" autocomplete="current-password"
                    prop:value=move || current.get()
                    on:input=move |ev| { done.set(false); current.set(event_target_value(&ev)) } />
                {move || field(current_error())}
            </label>
            <label>
                <span>"New password " <span class="hint">"at least 10 characters"</span></span>
                <input id="password-new" type="password" autocomplete="new-password"
                    prop:value=move || new.get()
                    on:input=move |ev| { done.set(false); new.set(event_target_value(&ev)) } />
                {move || field(new_error().or_else(|| server_error.get().and_then(|e| e.field("new_password"))))}
            </label>
            <label>
                "Repeat the new password"
                <input id="password-repeat" type="password" autocomplete="new-password"
                    prop:value=move || repeat.get()
                    on:input=move |ev| { done.set(false); repeat.set(event_target_value(&ev)) } />
                {move || field(repeat_error())}
            </label>
            {move || server_error.get().filter(|e| e.errors.is_empty()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
            {move || done.get().then(|| view! { <p class="success" role="status" id="password-done">"Your password has been changed."</p> })}
            <div class="actions end">
                <button id="password-submit" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Changing…" } else { "Change password" }}
                </button>
            </div>
        </form>
    }
}

#[component]
fn KeysCard() -> impl IntoView {
    let keys = Listed::<ApiKey>::new("/api/v1/keys".into());
    let name = RwSignal::new(String::new());
    let touched = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let create_error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<CreatedKey>);
    let confirming = RwSignal::new(None::<String>);

    let name_error = move || {
        let n = name.get();
        (touched.get() || !n.is_empty())
            .then(|| validate_key_name(&n).err())
            .flatten()
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        create_error.set(None);
        if busy.get() || validate_key_name(&name.get()).is_err() {
            return;
        }
        let req = CreateKey {
            name: name.get().trim().to_string(),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post::<_, CreatedKey>("/api/v1/keys", &req).await {
                Ok(k) => {
                    name.set(String::new());
                    touched.set(false);
                    created.set(Some(k));
                    keys.reload();
                }
                Err(e) => create_error.set(Some(e.field("name").unwrap_or(e.detail))),
            }
            busy.set(false);
        });
    };

    let revoke = Callback::new(move |id: String| {
        keys.delete(format!("/api/v1/keys/{id}"), move |t| t.id == id);
    });

    view! {
        <section class="card keys">
            <div class="list-head">
                <h2>"API keys"</h2>
                <span class="muted">
                    "For the berth CLI and scripts: send one as Authorization: Bearer KEY. "
                    <a id="api-docs-link" href="/api/v1/docs" target="_blank" rel="noopener">"API reference"</a>
                </span>
            </div>
            <form class="inline-form" id="key-form" on:submit=submit>
                <label class="grow">
                    "New key name"
                    <input id="key-name" type="text" placeholder="e.g. laptop CLI" maxlength="64"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                    {move || name_error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                <button id="key-create" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create key" }}
                </button>
            </form>
            {move || create_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {keys.view("Loading keys…", "No API keys yet. Create one to use the berth CLI.", move |list| {
                view! {
                    <table class="grid" id="keys">
                        <thead><tr>
                            <th>"Name"</th><th>"Prefix"</th><th>"Created"</th><th>"Last used"</th><th></th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|k| {
                                view! {
                                    <tr class="key-row" data-id=k.id.clone()>
                                        <td class="strong">{k.name.clone()}</td>
                                        <td class="mono key-prefix">{format!("{}…", k.prefix)}</td>
                                        <td class="mono">{when(&k.created_at)}</td>
                                        <td class="mono">{k.last_used_at.as_deref().map(when).unwrap_or_else(|| "never".into())}</td>
                                        <td><div class="row-actions">
                                            <ConfirmButton id=k.id.clone() asking=confirming label="Revoke" class="revoke" on_confirm=revoke />
                                        </div></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })}
            {move || created.get().map(|k| view! { <KeyDialog key=k on_close=Callback::new(move |_| created.set(None)) /> })}
        </section>
    }
}

/// The one time the secret is shown.
#[component]
fn KeyDialog(key: CreatedKey, on_close: Callback<()>) -> impl IntoView {
    let copied = RwSignal::new(None::<Copied>);
    let secret = key.key.clone();
    // Focus lands in the dialog (so Escape closes it) with the key selected.
    let secret_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = secret_input.get() {
            let _ = el.focus();
            el.select();
        }
    });
    let copy = move |_| {
        let secret = secret.clone();
        leptos::task::spawn_local(async move {
            let outcome = copy_text(&secret).await;
            if outcome == Copied::No {
                select_input("key-secret");
            }
            copied.set(Some(outcome));
        });
    };
    let title = format!("API key \u{201c}{}\u{201d} created", key.name);
    view! {
        <Dialog title=title id="key-dialog" on_close=on_close>
            <p>
                "Copy the key now. "
                <strong>"berth will not show it again"</strong>
                ": only a hash is stored. If you lose it, revoke it and create a new one."
            </p>
            <div class="secret-row">
                <input id="key-secret" node_ref=secret_input class="mono secret" type="text" readonly prop:value=key.key.clone()
                    on:focus=move |_| select_input("key-secret") />
                <button id="key-copy" type="button" class="primary" on:click=copy>
                    {move || if copied.get() == Some(Copied::Yes) { "Copied" } else { "Copy" }}
                </button>
            </div>
            {move || match copied.get() {
                Some(Copied::Yes) => Some(view! { <p class="success" role="status">"The key is on your clipboard."</p> }.into_any()),
                Some(Copied::No) => Some(view! { <p class="error" role="alert">"This browser does not let the page copy here; the key is selected, so press Ctrl+C (⌘C on a Mac)."</p> }.into_any()),
                None => None,
            }}
            <p class="muted small-print">
                "Use it with the CLI as "<code>"BERTH_KEY"</code>", or in a request header "
                <code>"Authorization: Bearer …"</code>"."
            </p>
            <div class="actions end">
                <button id="key-dialog-close" type="button" on:click=move |_| on_close.run(())>"Done"</button>
            </div>
        </Dialog>
    }
}

/// The limits that apply to me, read-only.
#[component]
fn MyLimits(user_id: String) -> impl IntoView {
    let policy = RwSignal::new(None::<UserPolicy>);
    let error = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        match api::get::<UserPolicy>(&format!("/api/v1/users/{user_id}/policy")).await {
            Ok(p) => policy.set(Some(p)),
            Err(e) => error.set(Some(e.detail)),
        }
    });
    view! {
        <section class="card">
            <h2>"Your limits"</h2>
            {move || error.get().map(|e| view! { <p class="error">{e}</p> })}
            {move || policy.get().map(|p| view! {
                <dl class="facts facts-2 limits">
                    {SETTINGS.iter().enumerate().map(|(i, s)| {
                        let mine = p.overridden.iter().any(|k| k == s.key);
                        view! {
                            <dt>{s.label}</dt>
                            <dd>
                                {setting_in_words(&p.policy, i)}
                                {mine.then(|| view! { <span class="tag" title="Set for your account by an administrator">"yours"</span> })}
                            </dd>
                        }
                    }).collect_view()}
                </dl>
            })}
        </section>
    }
}
