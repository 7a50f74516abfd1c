//! Status badges and small formatting helpers.

use api::session::SessionStatus;
use leptos::prelude::*;

#[component]
pub fn StatusBadge(status: SessionStatus) -> impl IntoView {
    let class = format!("badge badge-{}", status.as_str().to_lowercase());
    let live = matches!(
        status,
        SessionStatus::Pending
            | SessionStatus::Scheduled
            | SessionStatus::Preparing
            | SessionStatus::Terminating
    );
    view! {
        <span class=class data-status=status.as_str()>
            {live.then(|| view! { <span class="spinner"></span> })}
            {status.as_str()}
        </span>
    }
}

/// `2026-11-23T20:45:29.615Z` → `20:45:29`.
pub fn clock(t: &str) -> String {
    t.get(11..19).unwrap_or(t).to_string()
}

/// `2026-11-23T20:45:29.615Z` → `2026-11-23 20:45:29 UTC`.
pub fn when(t: &str) -> String {
    match (t.get(0..10), t.get(11..19)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => t.to_string(),
    }
}
