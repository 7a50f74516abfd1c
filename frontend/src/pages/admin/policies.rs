//! Admin → Policies: the default resource policy (empty = unlimited) and a per-user editor that
//! shows a user's effective values and which of them the user overrides.

use crate::api;
use crate::components::policy_form::{PolicyFields, PolicyForm, SETTINGS};
use ::api::auth::User;
use ::api::policy::{Policy, UserPolicy};
use ::api::FieldError;
use leptos::prelude::*;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Ok(String),
    Err(String),
}

fn said_view(s: Option<Said>) -> Option<AnyView> {
    s.map(|s| match s {
        Said::Ok(m) => view! { <p class="success" role="status">{m}</p> }.into_any(),
        Said::Err(m) => view! { <p class="error" role="alert">{m}</p> }.into_any(),
    })
}

#[component]
pub fn PoliciesTab() -> impl IntoView {
    // The defaults as saved on the server (what users inherit), apart from the form's edits.
    let saved_default = RwSignal::new(None::<Policy>);
    let default_form = PolicyForm::new();
    let default_errors = RwSignal::new(Vec::<FieldError>::new());
    let default_said = RwSignal::new(None::<Said>);
    let default_busy = RwSignal::new(false);

    let users = RwSignal::new(Vec::<User>::new());
    let picked = RwSignal::new(String::new());
    let user_policy = RwSignal::new(None::<UserPolicy>);
    let user_form = PolicyForm::new();
    let user_errors = RwSignal::new(Vec::<FieldError>::new());
    let user_said = RwSignal::new(None::<Said>);
    let user_busy = RwSignal::new(false);

    let load_default = move || {
        leptos::task::spawn_local(async move {
            match api::get::<Policy>("/api/v1/policies/default").await {
                Ok(p) => {
                    default_form.fill(&p, None);
                    saved_default.set(Some(p));
                }
                Err(e) => default_said.set(Some(Said::Err(e.detail))),
            }
        });
    };
    let load_user = move |id: String| {
        user_policy.set(None);
        user_errors.set(Vec::new());
        if id.is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::get::<UserPolicy>(&format!("/api/v1/users/{id}/policy")).await {
                Ok(p) => {
                    user_form.fill(&p.policy, Some(&p.overridden));
                    user_policy.set(Some(p));
                }
                Err(e) => user_said.set(Some(Said::Err(e.detail))),
            }
        });
    };
    load_default();
    leptos::task::spawn_local(async move {
        match api::get::<Vec<User>>("/api/v1/users").await {
            Ok(list) => users.set(list),
            Err(e) => user_said.set(Some(Said::Err(e.detail))),
        }
    });

    let save_default = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        default_said.set(None);
        let body = match default_form.check(true) {
            Ok(m) => m,
            Err(errs) => {
                default_errors.set(errs);
                default_said.set(Some(Said::Err(
                    "Some values are not valid; see the notes beside them.".into(),
                )));
                return;
            }
        };
        default_errors.set(Vec::new());
        default_busy.set(true);
        leptos::task::spawn_local(async move {
            match api::put_no_content("/api/v1/policies/default", &body).await {
                Ok(()) => {
                    default_said.set(Some(Said::Ok(
                        "Default policy saved; it applies to every setting a user does not override."
                            .into(),
                    )));
                    load_default();
                    load_user(picked.get_untracked());
                }
                Err(e) => {
                    default_errors.set(e.errors.clone());
                    default_said.set(Some(Said::Err(e.detail)));
                }
            }
            default_busy.set(false);
        });
    };

    let put_overrides = move |body: Map<String, Value>, done: String| {
        let id = picked.get_untracked();
        user_busy.set(true);
        leptos::task::spawn_local(async move {
            match api::put_no_content(&format!("/api/v1/users/{id}/policy"), &body).await {
                Ok(()) => {
                    user_said.set(Some(Said::Ok(done)));
                    load_user(id);
                }
                Err(e) => {
                    user_errors.set(e.errors.clone());
                    user_said.set(Some(Said::Err(e.detail)));
                }
            }
            user_busy.set(false);
        });
    };
    let picked_name = move || {
        let id = picked.get();
        users
            .with(|v| v.iter().find(|u| u.id == id).map(|u| u.username.clone()))
            .unwrap_or_default()
    };
    let save_user = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        user_said.set(None);
        match user_form.check(false) {
            Ok(m) => {
                user_errors.set(Vec::new());
                let n = m.len();
                let done = match n {
                    0 => format!("{} now follows the defaults everywhere.", picked_name()),
                    1 => format!("Saved: {} overrides 1 setting.", picked_name()),
                    _ => format!("Saved: {} overrides {n} settings.", picked_name()),
                };
                put_overrides(m, done);
            }
            Err(errs) => {
                user_errors.set(errs);
                user_said.set(Some(Said::Err(
                    "Some values are not valid; see the notes beside them.".into(),
                )));
            }
        }
    };
    let clear_user = move |_| {
        user_said.set(None);
        put_overrides(
            Map::new(),
            format!(
                "Overrides cleared: {} follows the defaults everywhere.",
                picked_name()
            ),
        );
    };

    view! {
        <div class="policies">
            <form class="card" id="default-policy" on:submit=save_default>
                <div class="list-head">
                    <h2>"Default policy"</h2>
                    <span class="muted">"For every user; an empty box means unlimited."</span>
                </div>
                <PolicyFields form=default_form id_prefix="policy-default" errors=default_errors />
                {move || said_view(default_said.get())}
                <div class="actions end">
                    <button type="button" on:click=move |_| {
                        if let Some(p) = saved_default.get_untracked() {
                            default_form.fill(&p, None);
                            default_errors.set(Vec::new());
                            default_said.set(None);
                        }
                    }>"Undo changes"</button>
                    <button id="default-policy-save" class="primary" type="submit" disabled=move || default_busy.get()>
                        {move || if default_busy.get() { "Saving…" } else { "Save defaults" }}
                    </button>
                </div>
            </form>
            <form class="card" id="user-policy" on:submit=save_user>
                <div class="list-head">
                    <h2>"A user's policy"</h2>
                    <span class="muted">"Overrides win over the defaults; the rest is inherited."</span>
                </div>
                <label class="user-pick">
                    "User"
                    <select id="policy-user" prop:value=move || picked.get()
                        on:change=move |ev| {
                            let id = event_target_value(&ev);
                            user_said.set(None);
                            picked.set(id.clone());
                            load_user(id);
                        }>
                        <option value="">"Choose a user…"</option>
                        {move || users.get().into_iter().map(|u| view! {
                            <option value=u.id.clone()>{u.username.clone()}</option>
                        }).collect_view()}
                    </select>
                </label>
                {move || {
                    if picked.get().is_empty() {
                        return view! { <p class="empty">"Choose a user to see the limits that apply to them and override some of them."</p> }.into_any();
                    }
                    match user_policy.get() {
                        None => view! { <p class="muted">"Loading the policy…"</p> }.into_any(),
                        Some(p) => {
                            let n = p.overridden.len();
                            view! {
                                <p class="muted" id="user-policy-summary">
                                    {format!("{} of {} settings overridden for {}.", n, SETTINGS.len(), picked_name())}
                                </p>
                                <PolicyFields form=user_form id_prefix="policy-user" errors=user_errors
                                    defaults=Signal::derive(move || saved_default.get()) />
                            }.into_any()
                        }
                    }
                }}
                {move || said_view(user_said.get())}
                <div class="actions end">
                    <button id="user-policy-clear" type="button" class="danger"
                        disabled=move || user_busy.get() || user_policy.with(|p| p.as_ref().is_none_or(|p| p.overridden.is_empty()))
                        on:click=clear_user>"Clear all overrides"</button>
                    <button id="user-policy-save" class="primary" type="submit"
                        disabled=move || user_busy.get() || user_policy.with(Option::is_none)>
                        {move || if user_busy.get() { "Saving…" } else { "Save overrides" }}
                    </button>
                </div>
            </form>
        </div>
    }
}
