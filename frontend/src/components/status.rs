//! Status badges and small formatting helpers.

use api::auth::Role;
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

#[component]
pub fn RoleBadge(role: Role) -> impl IntoView {
    let class = format!("badge badge-role-{}", role.as_str().to_lowercase());
    view! { <span class=class data-role=role.as_str()>{role.as_str()}</span> }
}

/// `1 project`, `3 projects`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `2026-11-23T20:45:29.615Z` → `2026-11-23`.
pub fn day(t: &str) -> String {
    t.get(0..10).unwrap_or(t).to_string()
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
