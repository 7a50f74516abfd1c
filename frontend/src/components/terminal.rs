//! The browser terminal: xterm.js driven by `static/term.js`, which owns the websocket, the
//! fit-to-box logic and the resize messages. This component asks the gateway for a terminal
//! handle and hands its URL to the script.

use crate::api;
use ::api::session::TerminalUrl;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = berthTerm, js_name = open)]
    fn term_open(el: &web_sys::HtmlElement, url: &str, on_state: &js_sys::Function) -> JsValue;
    #[wasm_bindgen(js_namespace = berthTerm, js_name = close)]
    fn term_close(handle: &JsValue);
}

#[component]
pub fn Terminal(session_id: String) -> impl IntoView {
    let host = NodeRef::<leptos::html::Div>::new();
    let state = RwSignal::new("connecting".to_string());
    let error = RwSignal::new(None::<String>);
    let generation = RwSignal::new(0u32);
    let handle: SendWrapper<Rc<RefCell<Option<JsValue>>>> =
        SendWrapper::new(Rc::new(RefCell::new(None)));

    let h = handle.clone();
    let sid = session_id.clone();
    Effect::new(move |_| {
        generation.track();
        let Some(el) = host.get() else { return };
        if let Some(old) = h.borrow_mut().take() {
            term_close(&old);
        }
        let el: web_sys::HtmlElement = el.into();
        let h = h.clone();
        let sid = sid.clone();
        state.set("connecting".into());
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::post::<_, TerminalUrl>(
                &format!("/api/v1/sessions/{sid}/terminal"),
                &serde_json::json!({}),
            )
            .await
            {
                Ok(t) => {
                    let cb = Closure::<dyn FnMut(String)>::new(move |s: String| state.set(s));
                    let js = term_open(&el, &t.url, cb.as_ref().unchecked_ref());
                    cb.forget();
                    *h.borrow_mut() = Some(js);
                }
                Err(e) => {
                    state.set("closed".into());
                    error.set(Some(e.detail));
                }
            }
        });
    });
    on_cleanup(move || {
        if let Some(old) = handle.borrow_mut().take() {
            term_close(&old);
        }
    });

    let label = move || {
        let s = state.get();
        match s.as_str() {
            "connecting" => "Connecting…".to_string(),
            "open" => "Connected".to_string(),
            "closed" => "Disconnected".to_string(),
            "reconnecting" => "Connection lost — reconnecting…".to_string(),
            "taken" => "This terminal was opened in another window".to_string(),
            other => other.to_string(),
        }
    };
    view! {
        <div class="terminal-panel">
            <div class="terminal-bar">
                <span class=move || format!("dot dot-{}", if state.get() == "open" { "open" } else if state.get() == "connecting" { "connecting" } else { "closed" })></span>
                <span id="terminal-state">{label}</span>
                <span class="spacer"></span>
                {move || matches!(state.get().as_str(), "closed" | "exited" | "taken").then(|| view! {
                    <button class="ghost" id="terminal-reconnect" on:click=move |_| generation.update(|g| *g += 1)>"New terminal"</button>
                })}
            </div>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <div class="terminal-host" id="terminal" node_ref=host></div>
        </div>
    }
}
