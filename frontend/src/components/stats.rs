//! Live charts of a running session's resource use: CPU against its allocation, memory
//! against its limit, network and disk rates, and GPUs where it holds real ones. Plain SVG:
//! each series is one polyline whose points are replaced as samples arrive, over at most the
//! last 15 minutes, so the DOM and memory stay the same size however long the page is open.

use crate::api;
use crate::state::LiveStats;
use ::api::stats::{SessionStats, StatsSample};
use ::api::Bytes;
use leptos::prelude::*;

/// Chart size in SVG units (the CSS scales it to the card).
const W: f64 = 300.0;
const H: f64 = 80.0;
/// The shortest time span drawn: the first samples fill the chart from the left, not all of it.
const MIN_SPAN_MS: i64 = 2 * 60 * 1000;

/// A value of a sample for one line of a chart.
type Value = fn(&StatsSample) -> f64;

fn rate(bps: f64) -> String {
    format!("{}/s", Bytes(bps.max(0.0) as u64).human())
}

/// The largest value of `samples`.
fn max_of(samples: &[StatsSample], value: Value) -> f64 {
    samples.iter().map(value).fold(0.0, f64::max)
}

/// The points of one line over `samples`, scaled to `ceiling`.
fn points(samples: &[StatsSample], value: Value, ceiling: f64) -> String {
    let Some(last) = samples.last() else {
        return String::new();
    };
    // Short histories grow from the left; longer ones scroll, the newest at the right.
    let span = (last.at_ms - samples[0].at_ms).max(MIN_SPAN_MS) as f64;
    let start = samples[0].at_ms.max(last.at_ms - span as i64) as f64;
    samples
        .iter()
        .map(|s| {
            let x = (s.at_ms as f64 - start) / span * W;
            let y = H - (value(s) / ceiling).clamp(0.0, 1.0) * H;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One chart: a title with the newest reading, and its lines.
#[component]
fn Chart(
    id: &'static str,
    title: &'static str,
    samples: Memo<Vec<StatsSample>>,
    /// (CSS class, value) of each line.
    lines: Vec<(&'static str, Value)>,
    /// The top of the scale for these samples.
    ceiling: fn(&[StatsSample]) -> f64,
    /// The newest reading, in words.
    reading: fn(&StatsSample) -> String,
) -> impl IntoView {
    let lines = StoredValue::new(lines);
    view! {
        <figure class="chart" id=id>
            <figcaption>
                <span class="chart-title">{title}</span>
                <span class="chart-reading">{move || samples.with(|v| v.last().map(reading)).unwrap_or_default()}</span>
            </figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=title>
                <line class="grid" x1="0" y1=H / 2.0 x2=W y2=H / 2.0 />
                {move || lines.get_value().into_iter().map(|(class, value)| {
                    let pts = samples.with(|v| points(v, value, ceiling(v).max(1e-9)));
                    view! { <polyline class=format!("line {class}") points=pts /> }
                }).collect_view()}
            </svg>
        </figure>
    }
}

#[component]
pub fn StatsCharts(session_id: String) -> impl IntoView {
    let stats = expect_context::<LiveStats>();
    // What happened before the page opened; live events add to it.
    {
        let sid = session_id.clone();
        leptos::task::spawn_local(async move {
            if let Ok(s) = api::get::<SessionStats>(&format!("/api/v1/sessions/{sid}/stats")).await
            {
                stats.add(s.history);
            }
        });
    }
    let sid = session_id.clone();
    let samples = Memo::new(move |_| stats.samples(&sid));
    view! {
        <section class="card stats" id="session-stats">
            <div class="list-head">
                <h2>"Resource use"</h2>
                <span class="muted">
                    {move || if samples.with(Vec::is_empty) { "Waiting for the first sample…" } else { "Live, every 2 s, the last 15 minutes" }}
                </span>
            </div>
            <div class="charts">
                <Chart id="chart-cpu" title="CPU (of its allocation)" samples=samples
                    lines=vec![("cpu", |s: &StatsSample| s.cpu_pct)]
                    ceiling=|v: &[StatsSample]| v.iter().map(|s| s.cpu_pct).fold(100.0, f64::max)
                    reading=|s: &StatsSample| format!("{:.0} %", s.cpu_pct) />
                <Chart id="chart-mem" title="Memory (of its limit)" samples=samples
                    lines=vec![("mem", |s: &StatsSample| s.mem_bytes as f64)]
                    ceiling=|v: &[StatsSample]| v.last().map(|s| s.mem_limit_bytes as f64).unwrap_or(1.0)
                    reading=|s: &StatsSample| format!("{} of {}", Bytes(s.mem_bytes).human(), Bytes(s.mem_limit_bytes).human()) />
                <Chart id="chart-net" title="Network ↓ in ↑ out" samples=samples
                    lines=vec![("rx", |s: &StatsSample| s.net_rx_rate), ("tx", |s: &StatsSample| s.net_tx_rate)]
                    ceiling=|v: &[StatsSample]| max_of(v, |s| s.net_rx_rate.max(s.net_tx_rate)).max(1024.0)
                    reading=|s: &StatsSample| format!("↓ {} ↑ {}", rate(s.net_rx_rate), rate(s.net_tx_rate)) />
                <Chart id="chart-disk" title="Disk read / write" samples=samples
                    lines=vec![("rx", |s: &StatsSample| s.blk_read_rate), ("tx", |s: &StatsSample| s.blk_write_rate)]
                    ceiling=|v: &[StatsSample]| max_of(v, |s| s.blk_read_rate.max(s.blk_write_rate)).max(1024.0)
                    reading=|s: &StatsSample| format!("r {} w {}", rate(s.blk_read_rate), rate(s.blk_write_rate)) />
                {move || samples.with(|v| v.last().and_then(|s| s.gpu.clone())).map(|_| view! {
                    <Chart id="chart-gpu" title="GPU utilisation" samples=samples
                        lines=vec![("cpu", |s: &StatsSample| s.gpu.as_ref().map(|g| g.iter().map(|d| d.util_pct).sum::<f64>() / g.len().max(1) as f64).unwrap_or(0.0))]
                        ceiling=|_: &[StatsSample]| 100.0
                        reading=|s: &StatsSample| s.gpu.as_ref().map(|g| g.iter().map(|d| format!("#{} {:.0} % {}", d.index, d.util_pct, Bytes(d.mem_bytes).human())).collect::<Vec<_>>().join(", ")).unwrap_or_default() />
                })}
            </div>
            <p class="muted small" id="stats-pids">{move || samples.with(|v| v.last().map(|s| format!("{} processes", s.pids))).unwrap_or_default()}</p>
        </section>
    }
}

/// A small live gauge for the session list: CPU and memory as bars.
#[component]
pub fn StatsGauge(session_id: String) -> impl IntoView {
    let stats = expect_context::<LiveStats>();
    let latest = Memo::new(move |_| stats.latest(&session_id));
    move || {
        latest.get().map(|s| {
            let cpu = s.cpu_pct.clamp(0.0, 100.0);
            let mem = if s.mem_limit_bytes > 0 {
                (s.mem_bytes as f64 / s.mem_limit_bytes as f64 * 100.0).clamp(0.0, 100.0)
            } else {
                0.0
            };
            view! {
                <div class="gauges" title=format!("CPU {:.0} % of its allocation, memory {} of {}", s.cpu_pct, Bytes(s.mem_bytes).human(), Bytes(s.mem_limit_bytes).human())>
                    <div class="gauge"><span class="cpu" style=format!("width: {cpu:.0}%")></span></div>
                    <div class="gauge"><span class="mem" style=format!("width: {mem:.0}%")></span></div>
                </div>
            }
        })
    }
}
