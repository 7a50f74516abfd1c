//! One session: status with its reason, details and mounts, the terminal, live resource
//! charts, the history, and logs (loaded, followed live, or downloaded).

use crate::api;
use crate::components::stats::StatsCharts;
use crate::components::status::{when, StatusBadge};
use crate::components::terminal::Terminal;
use crate::state::{Endings, Sessions};
use ::api::images::AppUrl;
use ::api::session::{HistoryEntry, Session, SessionStatus};
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use std::cell::RefCell;
use std::rc::Rc;

/// The most log text the page holds while following; older lines are dropped.
const MAX_SHOWN_LOG: usize = 512 * 1024;

/// Appends `more` to `text`, dropping whole lines from the front beyond [`MAX_SHOWN_LOG`].
fn append_bounded(text: &mut String, more: &str) {
    text.push_str(more);
    if text.len() > MAX_SHOWN_LOG {
        let cut = text.len() - MAX_SHOWN_LOG;
        let at = text[cut..]
            .find('\n')
            .map(|i| cut + i + 1)
            .unwrap_or(text.len());
        text.drain(..at);
    }
}

#[component]
pub fn SessionPage(id: String) -> impl IntoView {
    let store = expect_context::<Sessions>();
    let missing = RwSignal::new(None::<String>);
    let sid = id.clone();
    // Fetch it directly too: the list may not hold it (an admin's link, an old session).
    leptos::task::spawn_local({
        let sid = sid.clone();
        async move {
            let mark = store.mark();
            match api::get::<Session>(&format!("/api/v1/sessions/{sid}")).await {
                Ok(s) => store.answer(s, mark),
                Err(e) => missing.set(Some(e.detail)),
            }
        }
    });
    let session = {
        let sid = sid.clone();
        Memo::new(move |_| store.list.with(|v| v.iter().find(|s| s.id == sid).cloned()))
    };
    let status = Memo::new(move |_| session.get().map(|s| s.status));

    let history = RwSignal::new(Vec::<HistoryEntry>::new());
    {
        let sid = sid.clone();
        Effect::new(move |_| {
            status.track();
            let sid = sid.clone();
            leptos::task::spawn_local(async move {
                if let Ok(h) =
                    api::get::<Vec<HistoryEntry>>(&format!("/api/v1/sessions/{sid}/history")).await
                {
                    history.set(h);
                }
            });
        });
    }

    let logs = RwSignal::new(None::<String>);
    let following = RwSignal::new(false);
    let reader: SendWrapper<Rc<RefCell<Option<web_sys::ReadableStreamDefaultReader>>>> =
        SendWrapper::new(Rc::default());
    let stop_following = {
        let reader = reader.clone();
        move || {
            if let Some(r) = reader.borrow_mut().take() {
                let _ = r.cancel();
            }
        }
    };
    on_cleanup({
        let stop = stop_following.clone();
        move || stop()
    });
    let follow_logs = {
        let sid = sid.clone();
        let reader = reader.clone();
        let stop = stop_following.clone();
        move |_| {
            if following.get_untracked() {
                stop();
                following.set(false);
                return;
            }
            following.set(true);
            logs.set(Some(String::new()));
            let sid = sid.clone();
            let reader = reader.clone();
            leptos::task::spawn_local(async move {
                let path = format!("/api/v1/sessions/{sid}/logs?follow=true");
                let done = crate::api::stream_text(&path, &reader, |t| {
                    logs.update(|l| append_bounded(l.get_or_insert_with(String::new), t))
                })
                .await;
                if let Err(e) = done {
                    logs.set(Some(e.detail));
                }
                following.set(false);
            });
        }
    };
    let log_box = NodeRef::<leptos::html::Pre>::new();
    Effect::new(move |_| {
        logs.track();
        // Following: keep the newest line in view.
        if following.get_untracked() {
            if let Some(pre) = log_box.get_untracked() {
                pre.set_scroll_top(pre.scroll_height());
            }
        }
    });
    let load_logs = {
        let sid = sid.clone();
        move |_| {
            let sid = sid.clone();
            leptos::task::spawn_local(async move {
                let text = match api::get_text(&format!("/api/v1/sessions/{sid}/logs")).await {
                    Ok(t) if t.is_empty() => "(no output yet)".to_string(),
                    Ok(t) => t,
                    Err(e) => e.detail,
                };
                logs.set(Some(text));
            });
        }
    };

    let terminate_error = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(false);
    let terminate = {
        let sid = sid.clone();
        move |_| {
            if !confirming.get() {
                confirming.set(true);
                return;
            }
            confirming.set(false);
            let sid = sid.clone();
            leptos::task::spawn_local(async move {
                let mark = store.mark();
                match api::delete::<Session>(&format!("/api/v1/sessions/{sid}")).await {
                    Ok(s) => store.answer(s, mark),
                    Err(e) => terminate_error.set(Some(e.detail)),
                }
            });
        }
    };

    let term_id = sid.clone();
    let stats_id = sid.clone();
    // A policy's end, when the owner was warned of it: a banner counting down.
    let endings = expect_context::<Endings>();
    let ending = {
        let sid = sid.clone();
        Memo::new(move |_| endings.0.with(|m| m.get(&sid).cloned()))
    };
    let now_ms = RwSignal::new(js_sys::Date::now());
    let ticker = leptos::prelude::set_interval_with_handle(
        move || now_ms.set(js_sys::Date::now()),
        std::time::Duration::from_secs(1),
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });
    let left = move || {
        let e = ending.get()?;
        let at = js_sys::Date::parse(e.ends_at.as_deref()?);
        let s = ((at - now_ms.get()) / 1000.0).max(0.0) as u64;
        Some((format!("{}:{:02}", s / 60, s % 60), e.detail))
    };
    let download_href = format!("/api/v1/sessions/{sid}/logs");
    let download_name = move || {
        session
            .get()
            .map(|s| format!("{}.log", s.name))
            .unwrap_or_else(|| "session.log".into())
    };
    let app_error = RwSignal::new(None::<String>);
    let open_app = {
        let sid = sid.clone();
        move |app: String| {
            // Open the tab now (a click may open windows; a finished fetch may not), then
            // send it to the one-use link.
            let tab = window()
                .open_with_url_and_target("about:blank", "_blank")
                .ok()
                .flatten();
            let sid = sid.clone();
            leptos::task::spawn_local(async move {
                match api::post::<_, AppUrl>(
                    &format!("/api/v1/sessions/{sid}/apps/{app}"),
                    &serde_json::json!({}),
                )
                .await
                {
                    Ok(u) => match tab {
                        Some(t) => {
                            let _ = t.location().set_href(&u.url);
                        }
                        None => {
                            let _ = window().location().set_href(&u.url);
                        }
                    },
                    Err(e) => {
                        if let Some(t) = tab {
                            let _ = t.close();
                        }
                        app_error.set(Some(e.detail));
                    }
                }
            });
        }
    };
    view! {
        <div class="session-page">
            <a class="back" href="#/">"← All sessions"</a>
            {move || missing.get().filter(|_| session.get().is_none()).map(|e| view! { <p class="error card">{e}</p> })}
            {move || left().map(|(t, detail)| view! {
                <div class="banner warn" id="ending-banner" role="status">
                    <b>{format!("Ends in {t}")}</b>" — "{detail}
                </div>
            })}
            {move || session.get().map(|s| {
                let live = s.status.is_live() && s.status != SessionStatus::Terminating;
                view! {
                    <section class="card session-head">
                        <div class="title-row">
                            <h1 id="session-name">{s.name.clone()}</h1>
                            <StatusBadge status=s.status />
                            <span class="spacer"></span>
                            {live.then(|| view! {
                                <button id="terminate" class="danger" on:click=terminate.clone()>
                                    {move || if confirming.get() { "Click again to terminate" } else { "Terminate" }}
                                </button>
                            })}
                        </div>
                        <p class="reason" id="session-reason">{s.status_reason.clone()}</p>
                        {move || terminate_error.get().map(|e| view! { <p class="error">{e}</p> })}
                        <dl class="facts">
                            <dt>"Image"</dt><dd class="mono">{s.image.clone()}</dd>
                            <dt>"Resources"</dt><dd>{s.resources.summary()}</dd>
                            <dt>"Node"</dt><dd>{s.node.clone().unwrap_or_else(|| "—".into())}</dd>
                            <dt>"Owner"</dt><dd>{s.owner_name.clone()}</dd>
                            <dt>"Created"</dt><dd>{when(&s.created_at)}</dd>
                            <dt>"Started"</dt><dd>{s.started_at.as_deref().map(when).unwrap_or_else(|| "—".into())}</dd>
                            <dt>"Ended"</dt><dd>{s.terminated_at.as_deref().map(when).unwrap_or_else(|| "—".into())}</dd>
                            {s.exit_code.map(|c| view! { <dt>"Exit code"</dt><dd>{c}</dd> })}
                        </dl>
                        {(!s.mounts.is_empty()).then(|| view! {
                            <div class="session-mounts" id="session-mounts">
                                <span class="field-title">"Mounts"</span>
                                <ul class="plain">
                                    {s.mounts.iter().map(|m| view! {
                                        <li class="session-mount" data-name=m.name.clone()>
                                            <a class="strong" href=crate::folder_href(&m.vfolder, "")>{m.name.clone()}</a>
                                            " → " <code>{m.path.clone()}</code> " "
                                            <span class=format!("tag mode-{}", m.mode.to_lowercase())>{m.mode.to_lowercase()}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            </div>
                        })}
                    </section>
                }
            })}
            {move || {
                let s = session.get()?;
                if s.apps.is_empty() || s.status != SessionStatus::Running {
                    return None;
                }
                let name = s.name.clone();
                Some(view! {
                    <section class="card apps">
                        <h2>"Apps"</h2>
                        <div class="app-list">
                            {s.apps.into_iter().map(|a| {
                                let open = open_app.clone();
                                let label = if a.name == "jupyter" { "JupyterLab".to_string() } else { a.name.clone() };
                                if a.protocol == "tcp" {
                                    view! {
                                        <span class="app-tcp">
                                            <b>{a.name.clone()}</b>" (TCP " {a.port} "): "
                                            <code>{format!("berth app {} {} --bind 127.0.0.1:{}", name, a.name, a.port)}</code>
                                        </span>
                                    }.into_any()
                                } else {
                                    let app = a.name.clone();
                                    view! {
                                        <button class="app-button" data-app=a.name.clone() on:click=move |_| open(app.clone())>
                                            {label} <span class="muted">{format!(":{}", a.port)}</span>
                                        </button>
                                    }.into_any()
                                }
                            }).collect_view()}
                        </div>
                        {move || app_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    </section>
                })
            }}
            {move || session.get().map(|s| view! { <crate::components::ssh::SessionSshLine session=s /> })}
            {move || {
                let running = status.get() == Some(SessionStatus::Running);
                let id = term_id.clone();
                if running {
                    view! { <Terminal session_id=id /> }.into_any()
                } else {
                    let msg = match status.get() {
                        Some(s) if s.is_final() => "This session has ended; its terminal is closed.",
                        Some(_) => "The terminal opens here once the session is RUNNING.",
                        None => "",
                    };
                    view! { <div class="card terminal-placeholder">{msg}</div> }.into_any()
                }
            }}
            {move || (status.get() == Some(SessionStatus::Running)).then(|| view! { <StatsCharts session_id=stats_id.clone() /> })}
            <div class="two-col">
                <section class="card">
                    <h2>"History"</h2>
                    <ol class="timeline" id="history">
                        {move || history.get().into_iter().map(|h| view! {
                            <li>
                                <StatusBadge status=h.status />
                                <span class="when">{when(&h.at)}</span>
                                <div class="reason">{h.reason}</div>
                            </li>
                        }).collect_view()}
                    </ol>
                </section>
                <section class="card">
                    <div class="list-head">
                        <h2>"Logs"</h2>
                        <span class="spacer"></span>
                        <button class="ghost" id="logs-load" on:click=load_logs>"Load logs"</button>
                        {move || (status.get().is_some_and(|s| s.is_live())).then(|| view! {
                            <button class="ghost" id="logs-follow" on:click=follow_logs.clone()
                                class:active=move || following.get()>
                                {move || if following.get() { "Stop following" } else { "Follow" }}
                            </button>
                        })}
                        <a class="button ghost" id="logs-download" href=download_href download=download_name>"Download"</a>
                    </div>
                    <pre class="logs" id="logs" node_ref=log_box class:hidden=move || logs.with(Option::is_none)>
                        {move || logs.get().unwrap_or_default()}
                    </pre>
                </section>
            </div>
        </div>
    }
}
