//! The logged-in frame: top bar, the live session store fed by `/api/v1/events`, and the
//! page for the current route.

use crate::{api, pages, Route};
use ::api::auth::User;
use ::api::session::Session;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Every session the user can see, kept current by server-sent events.
#[derive(Clone, Copy)]
pub struct Sessions {
    pub list: RwSignal<Vec<Session>>,
    pub loaded: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    /// False while the live connection is down (the page says so).
    pub live: RwSignal<bool>,
}

impl Sessions {
    pub fn upsert(&self, s: Session) {
        self.list
            .update(|v| match v.iter_mut().find(|x| x.id == s.id) {
                Some(x) => *x = s,
                None => v.insert(0, s),
            });
    }

    pub fn refresh(self) {
        leptos::task::spawn_local(async move {
            match api::get::<Vec<Session>>("/api/v1/sessions").await {
                Ok(list) => {
                    self.list.set(list);
                    self.error.set(None);
                }
                Err(e) => self.error.set(Some(e.detail)),
            }
            self.loaded.set(true);
        });
    }
}

fn subscribe(store: Sessions) -> Option<web_sys::EventSource> {
    let es = web_sys::EventSource::new("/api/v1/events").ok()?;
    let on_session =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                if let Ok(s) = serde_json::from_str::<Session>(&text) {
                    store.upsert(s);
                }
            }
        });
    let _ = es.add_event_listener_with_callback("session", on_session.as_ref().unchecked_ref());
    on_session.forget();
    // After a reconnect the browser resumes with Last-Event-ID; a refresh covers the rest.
    let on_open = Closure::<dyn FnMut()>::new(move || {
        store.live.set(true);
        store.refresh();
    });
    es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    on_open.forget();
    let on_error = Closure::<dyn FnMut()>::new(move || store.live.set(false));
    es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Some(es)
}

#[component]
pub fn Shell(user: User, me: RwSignal<Option<User>>) -> impl IntoView {
    let store = Sessions {
        list: RwSignal::new(Vec::new()),
        loaded: RwSignal::new(false),
        error: RwSignal::new(None),
        live: RwSignal::new(true),
    };
    provide_context(store);
    provide_context(user.clone());
    store.refresh();
    let es = SendWrapper::new(subscribe(store));
    on_cleanup(move || {
        if let Some(es) = es.take() {
            es.close();
        }
    });

    let route = RwSignal::new(crate::route_now());
    let on_hash = Closure::<dyn FnMut()>::new(move || route.set(crate::route_now()));
    let _ =
        window().add_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
    on_hash.forget();

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
                <a href="#/settings" id="nav-settings"
                    class:active=move || route.get() == Route::Settings>"Settings"</a>
                {is_admin.then(|| view! {
                    <a href="#/admin/users" id="nav-admin"
                        class:active=move || matches!(route.get(), Route::Admin(_))>"Admin"</a>
                })}
            </nav>
            <span class="spacer"></span>
            {move || (!store.live.get()).then(|| view! {
                <span class="offline" title="Live updates are reconnecting">"Reconnecting…"</span>
            })}
            <span class="who">{user.username.clone()} <span class="role">{role}</span></span>
            <button class="ghost" id="logout" on:click=logout>"Log out"</button>
        </header>
        <main class="content">
            {move || match route.get() {
                Route::Sessions => view! { <pages::sessions::SessionsPage /> }.into_any(),
                Route::Session(id) => view! { <pages::session::SessionPage id=id /> }.into_any(),
                Route::Settings => view! { <pages::settings::SettingsPage /> }.into_any(),
                Route::Admin(_) if !is_admin => view! {
                    <p class="card error">"The admin pages are for administrators; your account is a user account."</p>
                }.into_any(),
                Route::Admin(tab) => view! { <pages::admin::AdminPage tab=tab /> }.into_any(),
            }}
        </main>
    }
}
