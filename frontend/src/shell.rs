//! The logged-in frame: top bar, the live session store (`state::Sessions`, fed by
//! `/api/v1/events`), and the page for the current route. Pages never import the shell: what
//! they share with it lives in `state`.

use crate::components::status::count;
use crate::components::upload::Uploads;
use crate::state::{self, CurrentRoute, Endings, LiveStats, Sessions};
use crate::{api, pages, Route};
use ::api::auth::User;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Listens to `event` on the window until the calling component goes away (after a logout
/// the next shell has listeners of its own; old ones would reach disposed signals).
fn listen_while_mounted(event: &'static str, f: Closure<dyn FnMut(web_sys::Event)>) {
    let _ = window().add_event_listener_with_callback(event, f.as_ref().unchecked_ref());
    let f = SendWrapper::new(f);
    on_cleanup(move || {
        let _ = window().remove_event_listener_with_callback(event, f.as_ref().unchecked_ref());
    });
}

#[component]
pub fn Shell(user: User, me: RwSignal<Option<User>>) -> impl IntoView {
    let store = Sessions::new();
    provide_context(store);
    provide_context(user.clone());
    store.refresh();
    let stats = LiveStats::new();
    provide_context(stats);
    let endings = Endings::new();
    provide_context(endings);
    let es = SendWrapper::new(state::subscribe(store, stats, endings));
    on_cleanup(move || {
        if let Some(es) = es.take() {
            es.close();
        }
    });

    let route = RwSignal::new(crate::route_now());
    provide_context(CurrentRoute(route));
    // Uploads outlive the page that started them: they go on while the user browses, and
    // leaving berth with one under way asks first (it can resume, but only if the file is
    // added again).
    let uploads = Uploads::new();
    provide_context(uploads);
    on_cleanup(move || uploads.abort_all());
    let on_unload = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        let active = uploads
            .items
            .try_with_untracked(|v| v.iter().any(|i| i.state.is_active()))
            .unwrap_or(false);
        if active {
            ev.prevent_default();
            let _ = js_sys::Reflect::set(&ev, &"returnValue".into(), &"".into());
        }
    });
    listen_while_mounted("beforeunload", on_unload);
    let uploading = move || {
        uploads.items.with(|v| {
            let active: Vec<_> = v.iter().filter(|i| i.state.is_active()).collect();
            let first = active.first()?;
            let (sent, size) = active
                .iter()
                .fold((0u64, 0u64), |(s, t), i| (s + i.sent, t + i.size));
            let pct = (sent * 100).checked_div(size).unwrap_or(0);
            Some((active.len(), pct, first.folder.clone()))
        })
    };
    // The page to show: moving between directories of one folder keeps its file manager
    // (it follows the path itself) instead of building it again.
    let page = Memo::new(move |_| match route.get() {
        Route::Folder { id, .. } => Route::Folder {
            id,
            path: String::new(),
        },
        r => r,
    });
    let on_hash = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
        route.try_set(crate::route_now());
    });
    listen_while_mounted("hashchange", on_hash);

    let logout = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::post_empty("/api/v1/auth/logout").await;
            crate::navigate("/");
            me.set(None);
        });
    };
    let role = user.role.as_str().to_lowercase();
    let is_admin = user.role.is_admin();
    view! {
        <header class="topbar">
            <a class="brand" href="#/">"berth"</a>
            <nav>
                <a href="#/" id="nav-sessions"
                    class:active=move || matches!(route.get(), Route::Sessions | Route::Session(_))>"Sessions"</a>
                <a href="#/folders" id="nav-folders"
                    class:active=move || matches!(route.get(), Route::Folders | Route::Folder { .. })>"Folders"</a>
                <a href="#/settings" id="nav-settings"
                    class:active=move || route.get() == Route::Settings>"Settings"</a>
                {is_admin.then(|| view! {
                    <a href="#/admin/users" id="nav-admin"
                        class:active=move || matches!(route.get(), Route::Admin(_))>"Admin"</a>
                })}
            </nav>
            <span class="spacer"></span>
            {move || uploading().map(|(n, pct, folder)| view! {
                <a class="uploads-pill" id="uploads-pill" href=crate::folder_href(&folder, "")
                    title="Uploads in progress; open their folder">
                    <span class="spinner"></span>
                    {format!("Uploading {} · {pct}%", count(n, "file", "files"))}
                </a>
            })}
            {move || (!store.live.get()).then(|| view! {
                <span class="offline" title="Live updates are reconnecting">"Reconnecting…"</span>
            })}
            <span class="who">{user.username.clone()} <span class="role">{role}</span></span>
            <button class="ghost" id="logout" on:click=logout>"Log out"</button>
        </header>
        <main class="content">
            {move || match page.get() {
                Route::Sessions => view! { <pages::sessions::SessionsPage /> }.into_any(),
                Route::Session(id) => view! { <pages::session::SessionPage id=id /> }.into_any(),
                Route::Folders => view! { <pages::folders::FoldersPage /> }.into_any(),
                Route::Folder { id, .. } => view! { <pages::folder::FolderPage id=id /> }.into_any(),
                Route::Settings => view! { <pages::settings::SettingsPage /> }.into_any(),
                Route::Admin(_) if !is_admin => view! {
                    <p class="card error">"The admin pages are for administrators; your account is a user account."</p>
                }.into_any(),
                Route::Admin(tab) => view! { <pages::admin::AdminPage tab=tab /> }.into_any(),
            }}
        </main>
    }
}
