//! The login page.

use crate::api;
use ::api::auth::{LoginRequest, Secret, User};
use leptos::prelude::*;

#[component]
pub fn Login(me: RwSignal<Option<User>>) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get() {
            return;
        }
        let req = LoginRequest {
            username: username.get().trim().to_string(),
            password: Secret(password.get()),
        };
        if req.username.is_empty() || req.password.0.is_empty() {
            error.set(Some("Enter your username and password.".into()));
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post::<_, User>("/api/v1/auth/login", &req).await {
                Ok(u) => me.set(Some(u)),
                Err(e) => {
                    error.set(Some(e.detail));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <main class="login">
            <form class="card login-card" on:submit=submit>
                <h1 class="brand">"berth"</h1>
                <p class="muted">"Compute sessions in your browser."</p>
                <label>
                    "Username"
                    <input id="login-username" type="text" autocomplete="username" autofocus
                        prop:value=move || username.get()
                        on:input=move |ev| username.set(event_target_value(&ev)) />
                </label>
                <label>
                    "Password"
                    <input id="login-password" type="password" autocomplete="current-password"
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev)) />
                </label>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button id="login-submit" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Logging in…" } else { "Log in" }}
                </button>
            </form>
        </main>
    }
}
