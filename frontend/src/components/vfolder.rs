//! Small pieces for folders: the permission badge, the usage bar, a progress bar, and byte
//! counts for people.

use api::vfolders::{Permission, VFolder};
use api::Bytes;
use leptos::prelude::*;

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    Bytes(n).human()
}

/// What a permission lets one do, in a badge (`OWNER`, `RO`, `RW`, `WD`) with the words in
/// its tooltip.
#[component]
pub fn PermissionBadge(permission: Permission) -> impl IntoView {
    let class = format!("badge badge-perm-{}", permission.as_str().to_lowercase());
    view! {
        <span class=class data-permission=permission.as_str() title=permission.describe()>
            {permission.as_str()}
        </span>
    }
}

/// A progress bar; `value` from 0 to `max`. The label is read out, the bar only drawn.
#[component]
pub fn ProgressBar(
    #[prop(into)] value: Signal<f64>,
    #[prop(into)] max: Signal<f64>,
    /// Extra classes: `warn`, `danger`, `done`, `failed`.
    #[prop(into, optional)]
    tone: Signal<String>,
) -> impl IntoView {
    let percent = move || {
        let m = max.get();
        if m <= 0.0 {
            0.0
        } else {
            (value.get() / m * 100.0).clamp(0.0, 100.0)
        }
    };
    view! {
        <div class=move || format!("progress {}", tone.get()) role="progressbar"
            aria-valuemin="0" aria-valuemax="100" aria-valuenow=move || format!("{:.0}", percent().floor())>
            <div class="progress-fill" style:width=move || format!("{:.2}%", percent())></div>
        </div>
    }
}

/// How much of its quota a folder uses: a bar and "1.2 GiB of 10 GiB", or "1.2 GiB ·
/// unlimited" (no bar: there is nothing to fill).
#[component]
pub fn UsageBar(folder: VFolder) -> impl IntoView {
    let used = folder.bytes;
    match folder.quota_bytes {
        Some(q) => {
            let ratio = if q == 0 { 1.0 } else { used as f64 / q as f64 };
            let tone = if ratio >= 0.95 {
                "danger"
            } else if ratio >= 0.8 {
                "warn"
            } else {
                ""
            };
            view! {
                <div class="usage" title=format!("{used} of {q} bytes")>
                    <ProgressBar value=used as f64 max=q as f64 tone=tone.to_string() />
                    <span class="usage-text">{format!("{} of {}", bytes(used), bytes(q))}</span>
                </div>
            }
            .into_any()
        }
        None => view! {
            <div class="usage" title=format!("{used} bytes; no quota")>
                <span class="usage-text">{format!("{} · unlimited", bytes(used))}</span>
            </div>
        }
        .into_any(),
    }
}

/// Who a folder belongs to, in words: "yours", "shared by alice", "project ml".
pub fn ownership(f: &VFolder) -> String {
    if f.kind == "home" {
        "your home: /home/work in your sessions".into()
    } else if f.kind == "project" {
        format!("project {}", f.owner)
    } else if f.permission == Permission::Owner {
        "yours".into()
    } else {
        format!("shared by {}", f.owner)
    }
}
