//! Two pieces every list card of the console uses: [`Listed`], a list read from the API with
//! its loading state, its errors and its rows' deletions, and [`ConfirmButton`], a row's
//! destructive button that asks once more ("Remove" → "Remove for good" beside a Cancel)
//! before it acts.

use crate::api;
use leptos::prelude::*;
use serde::de::DeserializeOwned;

/// A list read from `GET url`: the items, whether the first read has finished, the last
/// read's error and the last row action's error, as sentences.
pub struct Listed<T: Send + Sync + 'static> {
    pub items: RwSignal<Vec<T>>,
    pub loaded: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    pub action_error: RwSignal<Option<String>>,
    url: StoredValue<String>,
}

impl<T: Send + Sync + 'static> Clone for Listed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Listed<T> {}

impl<T: DeserializeOwned + Send + Sync + 'static> Listed<T> {
    /// Starts reading the list.
    pub fn new(url: String) -> Self {
        let l = Self {
            items: RwSignal::new(Vec::new()),
            loaded: RwSignal::new(false),
            error: RwSignal::new(None),
            action_error: RwSignal::new(None),
            url: StoredValue::new(url),
        };
        l.reload();
        l
    }

    /// Reads the list again; a failure keeps the items and says why.
    pub fn reload(self) {
        leptos::task::spawn_local(async move {
            match api::get::<Vec<T>>(&self.url.get_value()).await {
                Ok(list) => {
                    self.items.set(list);
                    self.error.set(None);
                }
                Err(e) => self.error.set(Some(e.detail)),
            }
            self.loaded.set(true);
        });
    }

    /// `DELETE url`; once it is done the items `gone` picks leave the list, else the server's
    /// sentence is the action error.
    pub fn delete(self, url: String, gone: impl Fn(&T) -> bool + 'static) {
        self.action_error.set(None);
        leptos::task::spawn_local(async move {
            match api::delete_empty(&url).await {
                Ok(()) => self.items.update(|v| v.retain(|t| !gone(t))),
                Err(e) => self.action_error.set(Some(e.detail)),
            }
        });
    }

    /// The list's errors, then "loading", "empty" or the table `table` makes of the items.
    pub fn view(
        self,
        loading: &'static str,
        empty: &'static str,
        table: impl Fn(Vec<T>) -> AnyView + Send + Sync + 'static,
    ) -> impl IntoView
    where
        T: Clone,
    {
        view! {
            {move || self.error.get().map(|e| view! { <p class="error">{e}</p> })}
            {move || self.action_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || {
                let list = self.items.get();
                if !self.loaded.get() {
                    view! { <p class="muted">{loading}</p> }.into_any()
                } else if list.is_empty() {
                    view! { <p class="empty">{empty}</p> }.into_any()
                } else {
                    table(list)
                }
            }}
        }
    }
}

/// A row's destructive button: the first click makes it "{label} for good" with a Cancel
/// beside it, the second calls `on_confirm` with `id`. `asking` is shared by the rows of one
/// list, so one row asks at a time.
#[component]
pub fn ConfirmButton(
    id: String,
    asking: RwSignal<Option<String>>,
    /// The action, e.g. "Remove".
    label: &'static str,
    /// The button's own class beside `danger small` (what tests select it by).
    class: &'static str,
    on_confirm: Callback<String>,
) -> impl IntoView {
    let shown = StoredValue::new(id);
    let is_asking =
        move || asking.with(|a| shown.with_value(|id| a.as_deref() == Some(id.as_str())));
    let click = move |_| {
        let id = shown.get_value();
        if asking.get_untracked().as_deref() != Some(id.as_str()) {
            asking.set(Some(id));
            return;
        }
        asking.set(None);
        on_confirm.run(id);
    };
    view! {
        {move || is_asking().then(|| view! {
            <button type="button" class="ghost small" on:click=move |_| asking.set(None)>"Cancel"</button>
        })}
        <button type="button" class=format!("danger small {class}") on:click=click>
            {move || if is_asking() { format!("{label} for good") } else { label.to_string() }}
        </button>
    }
}
