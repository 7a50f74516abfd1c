//! berth's web console: a Leptos app rendered in the browser. Pages live in `pages/`, shared
//! pieces in `components/`, and every server call goes through `api.rs`. Validation comes
//! from the `api` crate, the same code the gateway runs.

mod api;
mod components;
mod pages;
mod shell;
mod state;

use ::api::auth::User;
use leptos::prelude::*;

/// Where the user is, from the URL's hash (`#/`, `#/sessions/ID`, `#/folders`,
/// `#/folders/ID/dir/sub`, `#/settings`, `#/admin/users`, `#/admin/nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Sessions,
    Session(String),
    Folders,
    /// A folder's file manager at `path` inside it (empty: the folder itself).
    Folder {
        id: String,
        path: String,
    },
    Settings,
    Admin(AdminTab),
}

/// The hash of a folder's file manager at `path`: each path component URL-encoded.
pub fn folder_href(id: &str, path: &str) -> String {
    let mut h = format!("#/folders/{}", api::enc(id));
    for part in path.split('/').filter(|p| !p.is_empty()) {
        h.push('/');
        h.push_str(&api::enc(part));
    }
    h
}

/// The admin pages' tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTab {
    Users,
    Projects,
    Policies,
    Dotfiles,
    Nodes,
    Usage,
}

impl AdminTab {
    pub const ALL: [AdminTab; 6] = [
        Self::Users,
        Self::Projects,
        Self::Policies,
        Self::Dotfiles,
        Self::Nodes,
        Self::Usage,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Projects => "projects",
            Self::Policies => "policies",
            Self::Dotfiles => "dotfiles",
            Self::Nodes => "nodes",
            Self::Usage => "usage",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Users => "Users",
            Self::Projects => "Projects",
            Self::Policies => "Policies",
            Self::Dotfiles => "Dotfiles",
            Self::Nodes => "Nodes",
            Self::Usage => "Usage",
        }
    }
}

pub fn route_now() -> Route {
    let hash = window().location().hash().unwrap_or_default();
    parse_route(hash.trim_start_matches('#'))
}

fn parse_route(path: &str) -> Route {
    let path = path.trim_end_matches('/');
    if path == "/settings" {
        return Route::Settings;
    }
    if path == "/folders" {
        return Route::Folders;
    }
    if let Some(rest) = path.strip_prefix("/folders/") {
        let mut parts = rest.split('/');
        let id = decode(parts.next().unwrap_or_default());
        let path: Vec<String> = parts.filter(|p| !p.is_empty()).map(decode).collect();
        if id.is_empty() {
            return Route::Folders;
        }
        return Route::Folder {
            id,
            path: path.join("/"),
        };
    }
    if path == "/admin" {
        return Route::Admin(AdminTab::Users);
    }
    if let Some(tab) = path.strip_prefix("/admin/") {
        return match AdminTab::ALL.into_iter().find(|t| t.slug() == tab) {
            Some(t) => Route::Admin(t),
            None => Route::Admin(AdminTab::Users),
        };
    }
    match path.strip_prefix("/sessions/") {
        Some(id) if !id.is_empty() => Route::Session(id.to_string()),
        _ => Route::Sessions,
    }
}

/// A URL component decoded; kept as it is when it is not valid percent-encoding.
fn decode(s: &str) -> String {
    js_sys::decode_uri_component(s)
        .map(String::from)
        .unwrap_or_else(|_| s.to_string())
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
                    Some(user) => view! { <shell::Shell user=user me=me /> }.into_any(),
                }
            }
        }}
    }
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
