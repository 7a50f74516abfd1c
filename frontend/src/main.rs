//! berth's web console: a Leptos app rendered in the browser. Pages live in `pages/`, shared
//! pieces in `components/`, and every server call goes through `api.rs`. Validation comes
//! from the `api` crate, the same code the gateway runs.

mod api;
mod components;
mod pages;

use ::api::auth::User;
use leptos::prelude::*;

/// Where the user is, from the URL's hash (`#/`, `#/sessions/ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Sessions,
    Session(String),
}

pub fn route_now() -> Route {
    let hash = window().location().hash().unwrap_or_default();
    let path = hash.trim_start_matches('#');
    match path.strip_prefix("/sessions/") {
        Some(id) if !id.is_empty() => Route::Session(id.to_string()),
        _ => Route::Sessions,
    }
}

pub fn navigate(path: &str) {
    let _ = window().location().set_hash(path);
}

#[component]
fn App() -> impl IntoView {
    let me: RwSignal<Option<User>> = RwSignal::new(None);
    let checked = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        if let Ok(u) = api::get::<User>("/api/v1/me").await {
            me.set(Some(u));
        }
        checked.set(true);
    });
    view! {
        {move || {
            if !checked.get() {
                view! { <div class="boot">"Loading berth…"</div> }.into_any()
            } else {
                match me.get() {
                    None => view! { <pages::login::Login me=me /> }.into_any(),
                    Some(user) => view! { <pages::shell::Shell user=user me=me /> }.into_any(),
                }
            }
        }}
    }
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
