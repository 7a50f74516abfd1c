//! Admin → Usage: accounted resources per UTC day (`GET /api/v1/usage`) for a range of days,
//! grouped by user, project or node — a bar chart of core-hours per day stacked by group, the
//! totals per group, the rows per day, and a CSV download of the exact seconds (the server's
//! `format=csv`). Figures are shown as hours with two decimals; the CSV and the API keep the
//! exact decimal seconds.

use crate::api::{self, ApiError};
use crate::components::status::count;
use ::api::usage::{Day, UsageReport};
use leptos::prelude::*;

/// Bar colours, one per group in the order of the totals (repeating past eight).
const COLOURS: [&str; 8] = [
    "#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777",
];

/// An exact decimal string of seconds as hours, for drawing and showing.
fn hours(seconds: &str) -> f64 {
    seconds.parse::<f64>().unwrap_or(0.0) / 3600.0
}

fn hours_text(seconds: &str) -> String {
    hours_fmt(hours(seconds))
}

/// Hours with two decimals; a small non-zero amount with four, so it does not read as none.
fn hours_fmt(h: f64) -> String {
    if h == 0.0 {
        "0".into()
    } else if h < 0.005 {
        format!("{h:.4}")
    } else {
        format!("{h:.2}")
    }
}

/// The query string for the form's values (empty ones left out: the server's defaults).
fn query(from: &str, to: &str, group_by: &str) -> String {
    let mut q = vec![format!("group_by={}", api::enc(group_by))];
    if !from.trim().is_empty() {
        q.push(format!("from={}", api::enc(from.trim())));
    }
    if !to.trim().is_empty() {
        q.push(format!("to={}", api::enc(to.trim())));
    }
    q.join("&")
}

#[component]
pub fn UsageTab() -> impl IntoView {
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let group_by = RwSignal::new("user".to_string());
    let report = RwSignal::new(None::<UsageReport>);
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);

    let load = move || {
        busy.set(true);
        let q = query(
            &from.get_untracked(),
            &to.get_untracked(),
            &group_by.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            match api::get::<UsageReport>(&format!("/api/v1/usage?{q}")).await {
                Ok(r) => {
                    // The defaults the server chose become the form's values.
                    from.set(r.from.clone());
                    to.set(r.to.clone());
                    error.set(None);
                    report.set(Some(r));
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    load();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        load();
    };
    let invalid = move |f: &'static str| move || error.get().is_some_and(|e| e.field(f).is_some());
    let csv_href = move || {
        report.get().map(|r| {
            format!(
                "/api/v1/usage?{}&format=csv",
                query(&r.from, &r.to, r.group_by.as_str())
            )
        })
    };

    view! {
        <div class="usage-page">
            <form class="card usage-form inline-form" id="usage-form" on:submit=submit>
                <label>
                    "From (UTC)"
                    <input id="usage-from" type="date" class:invalid=invalid("from") prop:value=move || from.get()
                        on:input=move |ev| from.set(event_target_value(&ev)) />
                </label>
                <label>
                    "To (UTC, included)"
                    <input id="usage-to" type="date" class:invalid=invalid("to") prop:value=move || to.get()
                        on:input=move |ev| to.set(event_target_value(&ev)) />
                </label>
                <label>
                    "Group by"
                    <select id="usage-group-by" prop:value=move || group_by.get()
                        on:change=move |ev| { group_by.set(event_target_value(&ev)); load(); }>
                        <option value="user">"User"</option>
                        <option value="project">"Project"</option>
                        <option value="node">"Node"</option>
                    </select>
                </label>
                <button id="usage-show" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Loading…" } else { "Show" }}
                </button>
                <span class="grow"></span>
                {move || csv_href().map(|href| view! {
                    <a id="usage-csv" class="button" href=href download="">"Download CSV"</a>
                })}
            </form>
            {move || error.get().map(|e| view! { <p class="error" id="usage-error" role="alert">{e.detail}</p> })}
            {move || match report.get() {
                None => view! { <p class="muted">"Loading usage…"</p> }.into_any(),
                Some(r) => view! { <UsageView report=r /> }.into_any(),
            }}
        </div>
    }
}

/// The group's label: its name, or "no project" for sessions without one.
fn label(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "(no project)".into())
}

#[component]
fn UsageView(report: UsageReport) -> impl IntoView {
    let noun = match report.group_by.as_str() {
        "project" => "Project",
        "node" => "Node",
        _ => "User",
    };
    let core: f64 = report.totals.iter().map(|t| hours(&t.core_seconds)).sum();
    let groups = noun.to_lowercase();
    let summary = format!(
        "{} to {} · {} · {} core-hours in all",
        report.from,
        report.to,
        count(report.totals.len(), &groups, &format!("{groups}s")),
        hours_fmt(core),
    );
    if report.rows.is_empty() {
        return view! {
            <section class="card">
                <h2>"Usage"</h2>
                <p class="empty" id="usage-empty">{format!("No session ran from {} to {}.", report.from, report.to)}</p>
            </section>
        }
        .into_any();
    }
    let totals = report.totals.clone();
    let rows = report.rows.clone();
    view! {
        <section class="card">
            <div class="list-head">
                <h2>"Core-hours per day"</h2>
                <span class="muted">{summary}</span>
            </div>
            <Chart report=report.clone() />
        </section>
        <section class="card">
            <h2>{format!("Totals per {groups}")}</h2>
            <table class="grid" id="usage-totals">
                <thead><tr>
                    <th>{noun}</th><th class="right">"Sessions"</th><th class="right">"Core-h"</th>
                    <th class="right">"GiB-h"</th><th class="right">"GPU-h"</th><th class="right">"GPU-share-h"</th>
                </tr></thead>
                <tbody>
                    {totals.into_iter().enumerate().map(|(i, t)| view! {
                        <tr data-group=label(&t.name)>
                            <td><span class="swatch" style=format!("background:{}", COLOURS[i % COLOURS.len()])></span>{label(&t.name)}</td>
                            <td class="right">{t.sessions}</td>
                            <td class="right" title=format!("{} core-seconds", t.core_seconds)>{hours_text(&t.core_seconds)}</td>
                            <td class="right" title=format!("{} GiB-seconds", t.gib_seconds)>{hours_text(&t.gib_seconds)}</td>
                            <td class="right" title=format!("{} GPU-seconds", t.gpu_seconds)>{hours_text(&t.gpu_seconds)}</td>
                            <td class="right" title=format!("{} GPU-share-seconds", t.gpu_share_seconds)>{hours_text(&t.gpu_share_seconds)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Per day"</h2>
            <table class="grid" id="usage-rows">
                <thead><tr>
                    <th>"Day (UTC)"</th><th>{noun}</th><th class="right">"Sessions"</th><th class="right">"Core-h"</th>
                    <th class="right">"GiB-h"</th><th class="right">"GPU-h"</th><th class="right">"GPU-share-h"</th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| view! {
                        <tr data-day=r.day.clone() data-group=label(&r.name)>
                            <td>{r.day.clone()}</td>
                            <td>{label(&r.name)}</td>
                            <td class="right">{r.sessions}</td>
                            <td class="right" title=format!("{} core-seconds", r.core_seconds)>{hours_text(&r.core_seconds)}</td>
                            <td class="right" title=format!("{} GiB-seconds", r.gib_seconds)>{hours_text(&r.gib_seconds)}</td>
                            <td class="right" title=format!("{} GPU-seconds", r.gpu_seconds)>{hours_text(&r.gpu_seconds)}</td>
                            <td class="right" title=format!("{} GPU-share-seconds", r.gpu_share_seconds)>{hours_text(&r.gpu_share_seconds)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <p class="muted small">"Hours, rounded; hover a figure for the exact seconds, or download the CSV."</p>
        </section>
    }
    .into_any()
}

/// A round number at or above `v` (1, 2 or 5 × a power of ten) for the top of the axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// Bars of core-hours per day, each stacked by group in the colours of the totals.
#[component]
fn Chart(report: UsageReport) -> impl IntoView {
    let (Some(from), Some(to)) = (Day::parse(&report.from), Day::parse(&report.to)) else {
        return view! { <p class="muted">"No chart for this range."</p> }.into_any();
    };
    let days: Vec<Day> = (from.0..=to.0).map(Day).collect();
    let groups: Vec<Option<String>> = report.totals.iter().map(|t| t.group.clone()).collect();
    let colour = |g: &Option<String>| {
        let i = groups.iter().position(|x| x == g).unwrap_or(0);
        COLOURS[i % COLOURS.len()]
    };
    // Per day: (group, name, core-hours) of each group with usage that day.
    type Stack = Vec<(Option<String>, Option<String>, f64)>;
    let per_day: Vec<Stack> = days
        .iter()
        .map(|d| {
            let day = d.to_string();
            report
                .rows
                .iter()
                .filter(|r| r.day == day)
                .map(|r| (r.group.clone(), r.name.clone(), hours(&r.core_seconds)))
                .collect()
        })
        .collect();
    let top = nice_max(
        per_day
            .iter()
            .map(|v| v.iter().map(|x| x.2).sum::<f64>())
            .fold(0.0, f64::max),
    );
    let (w, h, left, bottom, head) = (760.0, 220.0, 52.0, 24.0, 10.0);
    let plot_h = h - bottom - head;
    let slot = (w - left - 8.0) / days.len() as f64;
    let bar = (slot * 0.75).max(1.0);
    let y = move |v: f64| head + plot_h - v / top * plot_h;
    let label_every = (days.len() / 8).max(1);
    let mut bars = Vec::new();
    for (i, (d, stack)) in days.iter().zip(&per_day).enumerate() {
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let mut acc = 0.0;
        for (group, name, v) in stack {
            let (y0, y1) = (y(acc), y(acc + v));
            acc += v;
            let tip = format!("{d} {}: {v:.2} core-hours", label(name));
            bars.push(view! {
                <rect class="usage-bar" x=format!("{x:.1}") y=format!("{y1:.1}") width=format!("{bar:.1}")
                    height=format!("{:.1}", (y0 - y1).max(0.0)) fill=colour(group)>
                    <title>{tip}</title>
                </rect>
            });
        }
    }
    let ticks: Vec<_> = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|f| {
            let v = top * f;
            view! {
                <line x1=format!("{left}") x2=format!("{}", w - 4.0) y1=format!("{:.1}", y(v)) y2=format!("{:.1}", y(v)) class="usage-grid" />
                <text x=format!("{}", left - 6.0) y=format!("{:.1}", y(v) + 4.0) text-anchor="end" class="usage-axis">{format!("{v}")}</text>
            }
        })
        .collect();
    let day_labels: Vec<_> = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % label_every == 0)
        .map(|(i, d)| {
            let x = left + i as f64 * slot + slot / 2.0;
            let text = d.to_string()[5..].to_string();
            view! { <text x=format!("{x:.1}") y=format!("{}", h - 6.0) text-anchor="middle" class="usage-axis">{text}</text> }
        })
        .collect();
    let legend: Vec<_> = report
        .totals
        .iter()
        .map(|t| {
            view! {
                <span class="legend-item"><span class="swatch" style=format!("background:{}", colour(&t.group))></span>{label(&t.name)}</span>
            }
        })
        .collect();
    view! {
        <svg id="usage-chart" class="usage-chart" viewBox=format!("0 0 {w} {h}") role="img"
            aria-label=format!("Core-hours per day from {} to {}, stacked by {}", report.from, report.to, report.group_by.as_str())>
            {ticks}
            {bars}
            {day_labels}
        </svg>
        <div class="legend">{legend}</div>
    }
    .into_any()
}
