//! A modal dialog over the page, and copying text to the clipboard.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// A modal dialog: a dimmed backdrop and a card. Escape or a click on the backdrop calls
/// `on_close`; the content brings its own buttons.
#[component]
pub fn Dialog(
    /// The heading, also the dialog's accessible name.
    title: String,
    /// The dialog element's id, for tests and labels.
    id: &'static str,
    on_close: Callback<()>,
    children: Children,
) -> impl IntoView {
    let title_id = format!("{id}-title");
    let labelled_by = title_id.clone();
    view! {
        <div class="modal-backdrop"
            on:click=move |ev| {
                // Only a click on the backdrop itself, not one that bubbles up from the card.
                if ev.target() == ev.current_target() {
                    on_close.run(());
                }
            }
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    on_close.run(());
                }
            }>
            <div class="modal card" role="dialog" aria-modal="true" id=id aria-labelledby=labelled_by>
                <h2 id=title_id>{title}</h2>
                {children()}
            </div>
        </div>
    }
}

/// What happened when the console tried to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    Yes,
    /// The browser has no clipboard here (an insecure origin) or refused; the caller selects
    /// the text so the user can press Ctrl+C.
    No,
}

/// Writes `text` to the clipboard with `navigator.clipboard.writeText`.
pub async fn copy_text(text: &str) -> Copied {
    let navigator = window().navigator();
    let has_clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into())
        .map(|v| !v.is_undefined() && !v.is_null())
        .unwrap_or(false);
    if !has_clipboard {
        return Copied::No;
    }
    let promise = navigator.clipboard().write_text(text);
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(_) => Copied::Yes,
        Err(_) => Copied::No,
    }
}

/// Selects the text of the input with `id`, so the user can copy it by hand.
pub fn select_input(id: &str) {
    if let Some(el) = document()
        .get_element_by_id(id)
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
    {
        let _ = el.focus();
        el.select();
    }
}

/// A question before something that cannot be undone: the sentence, Cancel, and a button
/// that says what happens. The caller runs the action, keeps `busy` and `error`, and closes
/// the dialog when it is done.
#[component]
pub fn ConfirmDialog(
    title: String,
    id: &'static str,
    /// What will happen, as a sentence.
    message: String,
    /// The confirming button's words, e.g. "Delete for good".
    confirm: String,
    on_confirm: Callback<()>,
    on_close: Callback<()>,
    #[prop(into)] busy: Signal<bool>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let confirm_id = format!("{id}-confirm");
    view! {
        <Dialog title=title id=id on_close=on_close>
            <p>{message}</p>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <div class="actions end">
                <button type="button" class="cancel" on:click=move |_| on_close.run(())>"Cancel"</button>
                <button type="button" class="danger" id=confirm_id disabled=move || busy.get()
                    on:click=move |_| on_confirm.run(())>{confirm}</button>
            </div>
        </Dialog>
    }
}
