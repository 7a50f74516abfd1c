//! The Clone dialog: a name for the new personal folder, then the copy's progress (the job is
//! polled every second) and a link to the new folder when it is done.

use crate::api::{self, ApiError};
use crate::components::dialog::Dialog;
use crate::components::vfolder::{bytes, ProgressBar};
use ::api::vfolders::{validate_name, Job, VFolder};
use leptos::prelude::*;

/// How often the job is asked about, in milliseconds.
const POLL_MS: i32 = 1000;

#[component]
pub fn CloneDialog(folder: VFolder, on_close: Callback<()>) -> impl IntoView {
    let source = folder.id.clone();
    let name = RwSignal::new(format!("{}-copy", folder.name));
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);
    let job = RwSignal::new(None::<Job>);
    // Stops the polling when the dialog goes away.
    let open = StoredValue::new(true);
    on_cleanup(move || open.set_value(false));

    let name_error = move || {
        let n = name.get();
        (tried.get() || !n.is_empty())
            .then(|| validate_name(n.trim()).err())
            .flatten()
            .or_else(|| server_error.get().and_then(|e| e.field("name")))
    };

    let poll = move |id: String| {
        leptos::task::spawn_local(async move {
            loop {
                api::sleep(POLL_MS).await;
                if !open.try_get_value().unwrap_or(false) {
                    return;
                }
                match api::job(&id).await {
                    Ok(j) => {
                        let running = j.state == "RUNNING";
                        job.set(Some(j));
                        if !running {
                            return;
                        }
                    }
                    // A blip on a slow link: keep asking; the job runs on the server anyway.
                    Err(e) if e.status == 0 => continue,
                    Err(e) => {
                        server_error.set(Some(e));
                        return;
                    }
                }
            }
        });
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        server_error.set(None);
        let n = name.get().trim().to_string();
        if validate_name(&n).is_err() || busy.get() {
            return;
        }
        busy.set(true);
        let source = source.clone();
        leptos::task::spawn_local(async move {
            match api::clone_vfolder(&source, &n).await {
                Ok(j) => {
                    let id = j.id.clone();
                    let running = j.state == "RUNNING";
                    job.set(Some(j));
                    if running {
                        poll(id);
                    }
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let progress = move || {
        let j = job.get()?;
        let state = j.state.clone();
        let (done, total) = (j.done_bytes, j.total_bytes);
        let tone = match state.as_str() {
            "DONE" => "done",
            "FAILED" => "failed",
            _ => "",
        };
        let value = if state == "DONE" && total == 0 {
            1.0
        } else {
            done as f64
        };
        let max = if total == 0 { 1.0 } else { total as f64 };
        let pct = (done * 100)
            .checked_div(total)
            .unwrap_or(if state == "DONE" { 100 } else { 0 });
        let text = match state.as_str() {
            "DONE" => format!("Copied {}.", bytes(total)),
            "FAILED" => "The copy failed.".to_string(),
            _ => format!("Copying… {pct}% · {} of {}", bytes(done), bytes(total)),
        };
        Some(view! {
            <div class="job" id="clone-job" data-state=state.clone()>
                <ProgressBar value=value max=max tone=tone.to_string() />
                <p class="muted small-print">{text}</p>
                {j.error.clone().filter(|_| state == "FAILED").map(|e| view! { <p class="error" role="alert">{e}</p> })}
                {j.vfolder.clone().filter(|_| state == "DONE").map(|id| view! {
                    <p class="success" role="status">
                        "The new folder is ready: "
                        <a id="clone-open" href=crate::folder_href(&id, "") on:click=move |_| on_close.run(())>{format!("open {}", name.get_untracked().trim())}</a>
                    </p>
                })}
            </div>
        })
    };

    view! {
        <Dialog title=format!("Clone {}", folder.name) id="clone-dialog" on_close=on_close>
            <p class="muted">"Copies every file into a new folder of your own. Large folders take a while; you can close this and find the new folder in Folders when it is done."</p>
            <form on:submit=submit>
                <label>
                    "Name of the new folder"
                    <input id="clone-name" type="text" autocomplete="off" maxlength="64"
                        disabled=move || job.get().is_some()
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    {move || name_error().map(|m| view! { <span class="field-error">{m}</span> })}
                </label>
                {move || server_error.get().filter(|e| e.field("name").is_none()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
                {progress}
                <div class="actions end">
                    <button type="button" id="clone-close" on:click=move |_| on_close.run(())>
                        {move || if job.get().is_some() { "Close" } else { "Cancel" }}
                    </button>
                    {move || job.get().is_none().then(|| view! {
                        <button id="clone-submit" class="primary" type="submit" disabled=move || busy.get()>
                            {move || if busy.get() { "Starting…" } else { "Clone" }}
                        </button>
                    })}
                </div>
            </form>
        </Dialog>
    }
}
