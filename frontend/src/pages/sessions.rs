//! The sessions page: the launcher and the live list.

use crate::components::launcher::Launcher;
use crate::components::stats::StatsGauge;
use crate::components::status::{clock, StatusBadge};
use crate::state::Sessions;
use ::api::session::SessionStatus;
use leptos::prelude::*;

#[component]
pub fn SessionsPage() -> impl IntoView {
    let store = expect_context::<Sessions>();
    let live_count = move || {
        store
            .list
            .with(|v| v.iter().filter(|s| s.status.is_live()).count())
    };
    view! {
        <div class="sessions-page">
            <Launcher />
            <section class="card list">
                <div class="list-head">
                    <h2>"Sessions"</h2>
                    <span class="muted">{move || format!("{} live", live_count())}</span>
                </div>
                {move || store.error.get().map(|e| view! { <p class="error">{e}</p> })}
                {move || {
                    let list = store.list.get();
                    if !store.loaded.get() {
                        view! { <p class="muted">"Loading sessions…"</p> }.into_any()
                    } else if list.is_empty() {
                        view! { <p class="empty">"No sessions yet. Launch one to get a terminal in your browser."</p> }.into_any()
                    } else {
                        view! {
                            <table class="sessions">
                                <thead><tr>
                                    <th>"Name"</th><th>"Status"</th><th>"Image"</th><th>"Resources"</th><th>"Use"</th><th>"Created"</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|s| {
                                        let href = format!("#/sessions/{}", s.id);
                                        let reason = s.status_reason.clone();
                                        view! {
                                            <tr class="session-row" data-id=s.id.clone()>
                                                <td><a class="name" href=href>{s.name.clone()}</a></td>
                                                <td>
                                                    <StatusBadge status=s.status />
                                                    <div class="reason">
                                                        {reason}
                                                        {s.queue_position.filter(|_| s.status == SessionStatus::Pending).map(|p| view! {
                                                            <span class="tag queue-tag" title="Place in the scheduler's queue">{format!("#{p} in queue")}</span>
                                                        })}
                                                    </div>
                                                </td>
                                                <td class="mono">{s.image.clone()}</td>
                                                <td>{s.resources.summary()}</td>
                                                <td class="use">{(s.status == SessionStatus::Running).then(|| view! { <StatsGauge session_id=s.id.clone() /> })}</td>
                                                <td class="mono">{clock(&s.created_at)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                }}
            </section>
        </div>
    }
}
