//! The dotfiles editor: one level's dotfiles (yours in Settings, a project's in Admin →
//! Projects, the domain's in Admin → Dotfiles) as a list with path, mode and size, a form to
//! add or edit one (path, mode, content in a textarea) checked with the server's own rules
//! before it is sent, and a delete that asks twice. The same component serves every level:
//! it is given the level and its API base.

use crate::api::{self, ApiError};
use crate::components::listed::{ConfirmButton, Listed};
use crate::components::status::when;
use ::api::dotfiles::{Dotfile, Level, PutDotfile, DEFAULT_MODE, MAX_CONTENT, MAX_PER_LEVEL};
use leptos::prelude::*;

/// A number with thin thousands separators (65,536).
fn grouped(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a path suggests for the level, shown as the path field's placeholder and hint.
fn path_hint(level: Level) -> &'static str {
    match level {
        Level::User => "~/… — a file in your home in every session, e.g. ~/.bashrc",
        Level::Project | Level::Domain => {
            "~/… (the session user's home) or /etc/…, e.g. /etc/profile.d/team.sh"
        }
    }
}

#[component]
pub fn DotfilesEditor(
    /// Which level: decides the path rules shown before sending.
    level: Level,
    /// The level's API base (`/api/v1/dotfiles`, `/api/v1/projects/ID/dotfiles`,
    /// `/api/v1/admin/dotfiles`).
    base: String,
    /// The card's title.
    #[prop(into)]
    title: String,
    /// One sentence under the title.
    #[prop(into)]
    intro: String,
) -> impl IntoView {
    let files = Listed::<Dotfile>::new(base.clone());
    let base = StoredValue::new(base);
    let path = RwSignal::new(String::new());
    let mode = RwSignal::new(DEFAULT_MODE.to_string());
    let content = RwSignal::new(String::new());
    let editing = RwSignal::new(false);
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);
    let notice = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(None::<String>);

    let request = move || PutDotfile {
        path: path.get().trim().to_string(),
        content: content.get(),
        mode: Some(mode.get().trim().to_string()).filter(|m| !m.is_empty()),
    };
    let errors = Memo::new(move |_| request().validate(level).err().unwrap_or_default());
    let field_error = move |f: &'static str| {
        move || {
            tried
                .get()
                .then(|| {
                    errors
                        .get()
                        .into_iter()
                        .find(|e| e.field == f)
                        .map(|e| e.message)
                })
                .flatten()
                .or_else(|| server_error.get().and_then(|e| e.field(f)))
                .map(|m| view! { <span class="field-error">{m}</span> })
        }
    };
    let clear = move || {
        path.set(String::new());
        mode.set(DEFAULT_MODE.to_string());
        content.set(String::new());
        editing.set(false);
        tried.set(false);
        server_error.set(None);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        notice.set(None);
        if busy.get() || !errors.get().is_empty() {
            return;
        }
        let req = request();
        busy.set(true);
        server_error.set(None);
        leptos::task::spawn_local(async move {
            match api::put::<_, Dotfile>(&base.get_value(), &req).await {
                Ok(d) => {
                    notice.set(Some(format!(
                        "Saved {}: sessions started from now on get it.",
                        d.path
                    )));
                    clear();
                    files.reload();
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let edit = move |d: Dotfile| {
        path.set(d.path);
        mode.set(d.mode);
        content.set(d.content);
        editing.set(true);
        tried.set(false);
        notice.set(None);
        server_error.set(None);
    };
    let remove = Callback::new(move |p: String| {
        let url = format!("{}?path={}", base.get_value(), api::enc(&p));
        files.delete(url, move |d| d.path == p);
    });

    let size = move || content.with(|c| c.len());
    view! {
        <section class="card dotfiles" data-level=level.as_str()>
            <div class="list-head">
                <h2>{title}</h2>
                <span class="muted">{move || format!("{} of {MAX_PER_LEVEL}", files.items.with(Vec::len))}</span>
            </div>
            <p class="muted">{intro}</p>
            {files.view("Loading dotfiles…", "No dotfiles here yet.", move |list| {
                view! {
                    <table class="grid dotfiles-list">
                        <thead><tr>
                            <th>"Path"</th><th>"Mode"</th><th class="num">"Size"</th><th>"Changed"</th><th></th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|d| {
                                let bytes = d.content.len();
                                view! {
                                    <tr class="dotfile-row" data-path=d.path.clone()>
                                        <td class="mono strong">{d.path.clone()}</td>
                                        <td class="mono">{d.mode.clone()}</td>
                                        <td class="mono num">{format!("{} B", grouped(bytes))}</td>
                                        <td class="mono">{when(&d.updated_at)}</td>
                                        <td><div class="row-actions">
                                            <button type="button" class="ghost small edit"
                                                on:click={ let d = d.clone(); move |_| edit(d.clone()) }>"Edit"</button>
                                            <ConfirmButton id=d.path.clone() asking=confirming label="Delete" class="delete" on_confirm=remove />
                                        </div></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })}
            <form class="dotfile-form" on:submit=submit>
                <h3>{move || if editing.get() { "Edit a dotfile" } else { "Add a dotfile" }}</h3>
                <div class="inline-form">
                    <label class="grow">
                        "Path"
                        <input class="mono dotfile-path" type="text" autocomplete="off" spellcheck="false"
                            placeholder=if level == Level::User { "~/.bashrc" } else { "/etc/profile.d/team.sh" }
                            prop:value=move || path.get()
                            on:input=move |ev| { server_error.set(None); path.set(event_target_value(&ev)) } />
                        <span class="hint">{path_hint(level)}</span>
                        {field_error("path")}
                    </label>
                    <label class="mode">
                        "Mode"
                        <input class="mono dotfile-mode" type="text" maxlength="4" size="5" autocomplete="off"
                            prop:value=move || mode.get()
                            on:input=move |ev| mode.set(event_target_value(&ev)) />
                    </label>
                </div>
                {field_error("mode")}
                <label class="dotfile-content-label">
                    <span>"Content "
                        <span class="hint" class:over=move || { size() > MAX_CONTENT }>
                            {move || format!("{} of {} bytes", grouped(size()), grouped(MAX_CONTENT))}
                        </span>
                    </span>
                    <textarea class="mono dotfile-content" rows="10" spellcheck="false"
                        prop:value=move || content.get()
                        on:input=move |ev| content.set(event_target_value(&ev))></textarea>
                    {field_error("content")}
                </label>
                {move || server_error.get().filter(|e| e.errors.is_empty()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
                {move || notice.get().map(|n| view! { <p class="success" role="status">{n}</p> })}
                <div class="actions end">
                    {move || editing.get().then(|| view! {
                        <button type="button" class="ghost" on:click=move |_| clear()>"Cancel"</button>
                    })}
                    <button class="primary dotfile-save" type="submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Saving…" } else { "Save dotfile" }}
                    </button>
                </div>
            </form>
        </section>
    }
}
