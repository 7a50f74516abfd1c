//! Admin → Nodes: every Docker engine berth places sessions on, with its state (and why),
//! CPU and memory allocated against capacity, and its sessions; drain, undrain and remove a
//! node; add one (checked with `api::nodes::CreateNode::validate` before it is sent); and the
//! scheduler's queue: the sessions waiting for room, in order, each with the reason it waits.
//! Both refresh every few seconds while the page is open and visible.

use crate::api::{self, ApiError};
use crate::components::dialog::ConfirmDialog;
use crate::components::status::{clock, count};
use ::api::nodes::{CreateNode, GpuDevice, Node, NodeState, NodeTls, UpdateNode};
use ::api::session::Session;
use ::api::{Bytes, FieldError, Millicores, Shares};
use leptos::prelude::*;

/// How often the page asks again, in milliseconds.
const POLL_MS: i32 = 5000;

/// A node as `GET /api/v1/nodes` answers: the contract's own type (its resources decode as
/// reported, so an idle node's zero allocation is just zero).
type NodeView = Node;

/// Why the node is in its state (the server's sentence: who drained it, why it is down), and
/// for a node that is down when it last answered.
fn explanation(n: &NodeView) -> String {
    match (&n.state, &n.checked_at) {
        (NodeState::Down, Some(t)) => format!(
            "{} It last answered at {} UTC.",
            n.state_reason.trim_end(),
            clock(t)
        ),
        _ => n.state_reason.clone(),
    }
}

/// `a` is the same as `b` but for the time of the last health check (which moves every few
/// seconds and is only shown for a node that is down, where it stands still).
fn same_as(a: &NodeView, b: &NodeView) -> bool {
    a == &NodeView {
        checked_at: a.checked_at.clone(),
        ..b.clone()
    }
}

/// A line above the lists saying what the last action did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Ok(String),
    Err(String),
}

/// `0.5` of `2` cores → "0.5 of 2 CPU"; memory in binary units; zero without a unit.
fn cpu_text(m: u64) -> String {
    Millicores(m).cores_string()
}

fn mem_text(b: u64) -> String {
    if b == 0 {
        "0".into()
    } else {
        Bytes(b).human()
    }
}

/// The clock on this computer, for "updated 12:04:05".
fn now_clock() -> String {
    let d = js_sys::Date::new_0();
    format!(
        "{:02}:{:02}:{:02}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// Everything the page shows from the server, refreshed together.
#[derive(Clone, Copy)]
struct Board {
    nodes: RwSignal<Vec<NodeView>>,
    queue: RwSignal<Vec<Session>>,
    loaded: RwSignal<bool>,
    /// Why the last refresh failed (the lists keep what they had).
    error: RwSignal<Option<String>>,
    updated: RwSignal<Option<String>>,
}

impl Board {
    fn new() -> Self {
        Self {
            nodes: RwSignal::new(Vec::new()),
            queue: RwSignal::new(Vec::new()),
            loaded: RwSignal::new(false),
            error: RwSignal::new(None),
            updated: RwSignal::new(None),
        }
    }

    /// Asks for the nodes and the queue; `try_*` because the page may be gone meanwhile. The
    /// lists are only replaced when something changed, so rows are not redrawn under the
    /// pointer every few seconds.
    async fn refresh(self) {
        let nodes = api::get::<Vec<NodeView>>("/api/v1/nodes").await;
        let queue = api::get::<Vec<Session>>("/api/v1/scheduler/queue").await;
        let mut error = None;
        match nodes {
            Ok(list) => {
                let same = self.nodes.try_with_untracked(|old| {
                    old.len() == list.len() && old.iter().zip(&list).all(|(a, b)| same_as(a, b))
                });
                if same == Some(false) {
                    self.nodes.try_set(list);
                }
            }
            Err(e) => error = Some(e.detail),
        }
        match queue {
            Ok(list) => {
                if self.queue.try_with_untracked(|old| *old != list) == Some(true) {
                    self.queue.try_set(list);
                }
            }
            Err(e) => error = error.or(Some(e.detail)),
        }
        if error.is_none() {
            self.updated.try_set(Some(now_clock()));
        }
        self.error.try_set(error);
        self.loaded.try_set(true);
    }

    fn reload(self) {
        leptos::task::spawn_local(self.refresh());
    }
}

#[component]
pub fn NodesTab() -> impl IntoView {
    let board = Board::new();
    let said = RwSignal::new(None::<Said>);
    // The node whose drain/undrain is on its way (its buttons wait).
    let acting = RwSignal::new(None::<String>);
    let removing = RwSignal::new(None::<NodeView>);
    let remove_busy = RwSignal::new(false);
    let remove_error = RwSignal::new(None::<String>);

    // Poll while the page is open; skip while the tab is hidden (slow links pay for nothing).
    let open = StoredValue::new(true);
    on_cleanup(move || open.set_value(false));
    leptos::task::spawn_local(async move {
        board.refresh().await;
        loop {
            api::sleep(POLL_MS).await;
            if !open.try_get_value().unwrap_or(false) {
                return;
            }
            if document().hidden() {
                continue;
            }
            board.refresh().await;
        }
    });

    let set_state = move |n: NodeView, want: NodeState| {
        said.set(None);
        acting.set(Some(n.id.clone()));
        let body = UpdateNode {
            state: want.as_str().to_string(),
        };
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/nodes/{}", api::enc(&n.id));
            match api::patch::<_, NodeView>(&path, &body).await {
                Ok(updated) => {
                    let text = if updated.state == NodeState::Down {
                        // Down wins over drained in `state`; say what happens when it is back.
                        format!(
                            "{} is down; when its engine answers again it {}.",
                            updated.name,
                            if want == NodeState::Draining {
                                "stays drained"
                            } else {
                                "takes new sessions"
                            }
                        )
                    } else if updated.state == NodeState::Up {
                        format!("{} takes new sessions again.", updated.name)
                    } else if updated.sessions == 0 {
                        format!(
                            "{} is draining: no new sessions are placed there.",
                            updated.name
                        )
                    } else {
                        format!(
                            "{} is draining: its {} run on; new ones go to other nodes or wait.",
                            updated.name,
                            count(updated.sessions as usize, "session", "sessions")
                        )
                    };
                    board.nodes.update(|v| {
                        if let Some(x) = v.iter_mut().find(|x| x.id == updated.id) {
                            *x = updated;
                        }
                    });
                    said.set(Some(Said::Ok(text)));
                    // The queue moves when a node comes or goes.
                    board.reload();
                }
                Err(e) => said.set(Some(Said::Err(e.detail))),
            }
            acting.set(None);
        });
    };

    let confirm_remove = Callback::new(move |_| {
        let Some(n) = removing.get_untracked() else {
            return;
        };
        remove_busy.set(true);
        remove_error.set(None);
        leptos::task::spawn_local(async move {
            match api::delete_empty(&format!("/api/v1/nodes/{}", api::enc(&n.id))).await {
                Ok(()) => {
                    board.nodes.update(|v| v.retain(|x| x.id != n.id));
                    said.set(Some(Said::Ok(format!(
                        "Node {} is removed; berth no longer places sessions there.",
                        n.name
                    ))));
                    removing.set(None);
                }
                // The server says why (sessions still run there, or it is the local engine).
                Err(e) => remove_error.set(Some(e.detail)),
            }
            remove_busy.set(false);
        });
    });
    let close_remove = Callback::new(move |_| {
        removing.set(None);
        remove_error.set(None);
    });

    let summary = move || {
        board.nodes.with(|v| {
            let mut s = count(v.len(), "node", "nodes");
            for st in [NodeState::Up, NodeState::Draining, NodeState::Down] {
                let n = v.iter().filter(|x| x.state == st).count();
                if n > 0 {
                    s.push_str(&format!(" · {n} {}", st.as_str().to_lowercase()));
                }
            }
            s
        })
    };

    view! {
        <div class="nodes-page">
            <section class="card list" id="nodes-card">
                <div class="list-head">
                    <h2>"Nodes"</h2>
                    <span class="muted small-print refresh-note">
                        {summary}
                        {move || board.updated.get().map(|t| view! {
                            <span title="This page asks berth again every 5 seconds.">{format!(" · updated {t}")}</span>
                        })}
                    </span>
                </div>
                {move || board.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                {move || said.get().map(|s| match s {
                    Said::Ok(m) => view! { <p class="success" role="status" id="nodes-notice">{m}</p> }.into_any(),
                    Said::Err(m) => view! { <p class="error" role="alert" id="nodes-notice">{m}</p> }.into_any(),
                })}
                {move || {
                    if !board.loaded.get() {
                        return view! { <p class="muted">"Loading nodes…"</p> }.into_any();
                    }
                    let list = board.nodes.get();
                    if list.is_empty() {
                        return view! { <p class="empty">"No nodes. Add a Docker engine below."</p> }.into_any();
                    }
                    view! {
                        <table class="grid nodes" id="nodes">
                            <thead><tr>
                                <th>"Node"</th><th>"State"</th><th class="bar-col">"CPU"</th>
                                <th class="bar-col">"Memory"</th><th class="right">"Sessions"</th><th></th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|n| {
                                    let busy = acting.get().as_deref() == Some(n.id.as_str());
                                    view! { <NodeRow node=n busy=busy set_state=set_state removing=removing /> }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
            <div class="nodes-lower">
                <AddNodeForm board=board said=said />
                <QueueCard board=board />
            </div>
            {move || removing.get().map(|n| view! {
                <ConfirmDialog
                    title=format!("Remove node {}?", n.name)
                    id="remove-node"
                    message=format!(
                        "berth stops using the engine at {} and forgets the node. The engine, its images and \
                         its containers are left alone. A node where sessions still run cannot be removed: \
                         drain it first and wait for them to end.", n.docker)
                    confirm=format!("Remove {}", n.name)
                    on_confirm=confirm_remove
                    on_close=close_remove
                    busy=remove_busy
                    error=remove_error />
            })}
        </div>
    }
}

/// One node's row: name and engine, state with its sentence, the bars, its sessions, actions.
/// Drawn without reactive parts: the table is drawn again when anything in it changes.
#[component]
fn NodeRow<F>(
    node: NodeView,
    /// A drain or undrain of this node is on its way.
    busy: bool,
    set_state: F,
    removing: RwSignal<Option<NodeView>>,
) -> impl IntoView
where
    F: Fn(NodeView, NodeState) + Copy + Send + Sync + 'static,
{
    let n = node;
    let state = n.state.as_str();
    let draining = n.state == NodeState::Draining;
    let (cpu_used, cpu_total) = (n.allocated.cpu.0, n.capacity.cpu.0);
    let mut cpu_bars = vec![bar(
        "cpu-usage",
        cpu_used,
        cpu_total,
        format!("{} of {} CPU", cpu_text(cpu_used), cpu_text(cpu_total)),
    )];
    // GPUs only where the node has any: a cell per device, filled by the share held on it.
    if !n.gpus.is_empty() {
        cpu_bars.push(gpu_cells(&n.gpus));
    }
    // What the sessions really use (their live stats), beside what they hold.
    let used = n.used.clone();
    let cpu_in_use = used.as_ref().map(|u| {
        let gpus = u
            .gpus
            .iter()
            .map(|g| format!(" · GPU {} {:.0} % busy", g.index, g.util_pct))
            .collect::<String>();
        view! { <div class="in-use cpu-in-use" title="CPU the running sessions use now, from their live stats">{format!("in use: {:.2} CPU{gpus}", u.cpu)}</div> }
    });
    let mem_in_use = used.map(|u| {
        view! { <div class="in-use mem-in-use" title="Memory the running sessions use now, from their live stats">{format!("in use: {}", mem_text(u.mem_bytes))}</div> }
    });
    let mem_bar = bar(
        "mem-usage",
        n.allocated.mem.0,
        n.capacity.mem.0,
        format!(
            "{} of {}",
            mem_text(n.allocated.mem.0),
            mem_text(n.capacity.mem.0)
        ),
    );
    let toggle = {
        let n = n.clone();
        move |_| {
            let want = if draining {
                NodeState::Up
            } else {
                NodeState::Draining
            };
            set_state(n.clone(), want)
        }
    };
    let ask_remove = {
        let n = n.clone();
        move |_| removing.set(Some(n.clone()))
    };
    view! {
        <tr class="node-row" data-name=n.name.clone() data-state=state>
            <td class="node-cell">
                <div class="node-name">
                    <span class="strong">{n.name.clone()}</span>
                    {n.local.then(|| view! { <span class="tag" title="The engine berth itself runs beside; it cannot be removed.">"built-in"</span> })}
                    {n.group.clone().map(|g| view! { <span class="tag tag-group" title="Node group">{format!("group {g}")}</span> })}
                    {n.folders.then(|| view! { <span class="tag tag-folders" title=n.storage.clone().map(|p| format!("Sees the folder storage at {p}")).unwrap_or_else(|| "On berth's host: sees the folder storage".to_string())>"folders"</span> })}
                </div>
                <div class="mono endpoint" title="Docker endpoint">{n.docker.clone()}</div>
            </td>
            <td class="state-cell">
                <span class=format!("badge badge-node-{}", state.to_lowercase()) data-state=state>{state}</span>
                <div class="reason node-reason">{explanation(&n)}</div>
            </td>
            <td class="bar-col">{cpu_bars}{cpu_in_use}</td>
            <td class="bar-col">{mem_bar}{mem_in_use}</td>
            <td class="right sessions-count">{n.sessions}</td>
            <td><div class="row-actions">
                <button type="button" class="small drain-toggle" disabled=busy on:click=toggle
                    title=if draining { "Place new sessions here again." } else { "Let running sessions finish; place no new ones here." }>
                    {if busy { "Saving…" } else if draining { "Undrain" } else { "Drain" }}
                </button>
                <button type="button" class="small danger remove-node" disabled=n.local on:click=ask_remove
                    title=if n.local { "The built-in local engine cannot be removed; drain it instead." } else { "Forget this node (drain it and let its sessions end first)." }>
                    "Remove"
                </button>
            </div></td>
        </tr>
    }
}

/// A node's GPUs: one small cell per device filled as far as sessions hold it, and the total
/// ("1.45 of 4 GPU").
fn gpu_cells(devices: &[GpuDevice]) -> AnyView {
    let held: Vec<u32> = devices
        .iter()
        .map(|d| {
            Shares::parse(&d.allocated)
                .map(|s| s.0.min(100))
                .unwrap_or(0)
        })
        .collect();
    let used: u32 = held.iter().sum();
    let total = Shares(devices.len() as u32 * 100);
    view! {
        <div class="usage gpu-usage">
            <div class="gpu-cells">
                {devices.iter().zip(&held).map(|(d, h)| view! {
                    <span class="gpu-cell" data-index=d.index
                        title=format!("GPU {}: {} of the device held", d.index, Shares(*h))>
                        <span class="gpu-fill" style=format!("height: {h}%")></span>
                    </span>
                }).collect_view()}
            </div>
            <span class="usage-text">{format!("{} of {} GPU", Shares(used), total)}</span>
        </div>
    }
    .into_any()
}

/// An allocation bar with its words, drawn once (no signals): amber from 80 %, red when full.
fn bar(class: &'static str, used: u64, total: u64, text: String) -> AnyView {
    let ratio = if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64).min(1.0)
    };
    let tone = if total > 0 && used >= total {
        " danger"
    } else if ratio >= 0.8 {
        " warn"
    } else {
        ""
    };
    let pct = ratio * 100.0;
    view! {
        <div class=format!("usage {class}")>
            <div class=format!("progress{tone}") role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=format!("{:.0}", pct.floor()) title=format!("{:.0}% allocated", pct.round())>
                <div class="progress-fill" style=format!("width: {pct:.2}%")></div>
            </div>
            <span class="usage-text">{text}</span>
        </div>
    }
    .into_any()
}

/// The "Add a node" form: name, endpoint, group, TLS material for TCP engines.
#[component]
fn AddNodeForm(board: Board, said: RwSignal<Option<Said>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let docker = RwSignal::new(String::new());
    let group = RwSignal::new(String::new());
    let storage = RwSignal::new(String::new());
    let use_tls = RwSignal::new(false);
    let ca = RwSignal::new(String::new());
    let cert = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);

    // TCP needs TLS, so a tcp:// endpoint opens the TLS boxes by itself.
    let tcp = move || docker.get().trim().starts_with("tcp://");
    let tls_on = move || use_tls.get() || tcp();
    let request = move || CreateNode {
        name: name.get().trim().to_string(),
        docker: docker.get().trim().to_string(),
        group: Some(group.get().trim().to_string()).filter(|g| !g.is_empty()),
        storage: Some(storage.get().trim().to_string()).filter(|p| !p.is_empty()),
        tls: tls_on().then(|| NodeTls {
            ca: ca.get(),
            cert: cert.get(),
            key: key.get(),
        }),
        proxy_url: None,
    };
    // The gateway's own rules, as the admin types.
    let errors = Memo::new(move |_| request().validate().err().unwrap_or_default());
    let form = FormState {
        errors,
        tried,
        server_error,
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        if busy.get() || !errors.get().is_empty() {
            return;
        }
        let req = request();
        busy.set(true);
        server_error.set(None);
        leptos::task::spawn_local(async move {
            match api::post::<_, NodeView>("/api/v1/nodes", &req).await {
                Ok(n) => {
                    said.set(Some(Said::Ok(format!(
                        "Node {} added with {} CPU and {} for sessions.",
                        n.name,
                        cpu_text(n.capacity.cpu.0),
                        mem_text(n.capacity.mem.0)
                    ))));
                    board.nodes.update(|v| v.push(n));
                    for s in [name, docker, group, storage, ca, cert, key] {
                        s.set(String::new());
                    }
                    use_tls.set(false);
                    tried.set(false);
                    board.reload();
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card" id="add-node" on:submit=submit>
            <h2>"Add a node"</h2>
            <p class="muted small-print form-intro">
                "Another Docker engine for sessions. berth connects at once and reads its CPUs and memory."
            </p>
            <Field id="node-name" field="name" label="Name" hint="" placeholder="e.g. node2" value=name form=form />
            <Field id="node-docker" field="docker" label="Docker endpoint"
                hint="unix:///path/to/docker.sock, or tcp://HOST:2376 with TLS"
                placeholder="unix:///run/node2/docker.sock" value=docker form=form />
            <Field id="node-group" field="group" label="Group (optional)" hint="Policies may limit users to node groups."
                placeholder="e.g. gpu" value=group form=form />
            <Field id="node-storage" field="storage" label="Folder storage on the node (optional)"
                hint="Where this node sees berth's storage directory (e.g. the NFS mount of it); without it, only nodes on berth's own host run sessions with folders."
                placeholder="e.g. /mnt/berth" value=storage form=form />
            <label class="check tls-check" title=move || if tcp() { "A tcp:// engine is always reached with TLS." } else { "" }>
                <input id="node-tls" type="checkbox" prop:checked=tls_on disabled=tcp
                    on:change=move |ev| { server_error.set(None); use_tls.set(event_target_checked(&ev)) } />
                "TLS client certificate (PEM)"
            </label>
            {move || tls_on().then(|| view! {
                <div class="tls-fields">
                    <Field id="node-tls-ca" field="tls.ca" label="CA certificate" hint="" placeholder=PEM value=ca form=form />
                    <Field id="node-tls-cert" field="tls.cert" label="Client certificate" hint="" placeholder=PEM value=cert form=form />
                    <Field id="node-tls-key" field="tls.key" label="Client key" hint="" placeholder=PEM value=key form=form />
                </div>
            })}
            {move || server_error.get().map(|e| view! { <p class="error" role="alert" id="add-node-error">{sentence(&e.detail)}</p> })}
            <div class="actions end">
                <button id="add-node-submit" class="primary" type="submit"
                    disabled=move || busy.get() || (tried.get() && !errors.get().is_empty())>
                    {move || if busy.get() { "Connecting…" } else { "Add node" }}
                </button>
            </div>
        </form>
    }
}

/// The placeholder of the PEM boxes (which are textareas).
const PEM: &str = "-----BEGIN …";

/// What every field of the add-node form reads: the local checks and the server's answer.
#[derive(Clone, Copy)]
struct FormState {
    errors: Memo<Vec<FieldError>>,
    tried: RwSignal<bool>,
    server_error: RwSignal<Option<ApiError>>,
}

/// One field of the add-node form: a text input, or a textarea for PEM text. Its local error
/// shows once the admin typed or tried to submit; a field the server named gets a red border
/// (the server's sentence is in the box under the form).
#[component]
fn Field(
    id: &'static str,
    field: &'static str,
    label: &'static str,
    hint: &'static str,
    placeholder: &'static str,
    value: RwSignal<String>,
    form: FormState,
) -> impl IntoView {
    let error = move || {
        (form.tried.get() || !value.get().is_empty())
            .then(|| {
                form.errors.with(|v| {
                    v.iter()
                        .find(|e| e.field == field)
                        .map(|e| e.message.clone())
                })
            })
            .flatten()
    };
    let flagged = move || {
        form.server_error
            .with(|e| e.as_ref().is_some_and(|e| e.field(field).is_some()))
    };
    let input = move |ev: leptos::ev::Event| {
        form.server_error.set(None);
        value.set(event_target_value(&ev));
    };
    let control = if placeholder == PEM {
        view! {
            <textarea id=id rows="3" class="mono pem" spellcheck="false" placeholder=placeholder
                class:invalid=flagged prop:value=move || value.get() on:input=input></textarea>
        }
        .into_any()
    } else {
        view! {
            <input id=id type="text" autocomplete="off" maxlength="200" placeholder=placeholder
                class:mono=field == "docker" class:invalid=flagged
                prop:value=move || value.get() on:input=input />
        }
        .into_any()
    };
    view! {
        <label>
            {label}
            {control}
            {(!hint.is_empty()).then(|| view! { <span class="hint">{hint}</span> })}
            {move || error().map(|m| view! { <span class="field-error">{m}</span> })}
        </label>
    }
}

/// The server's sentence with a capital first letter (engine errors start in lower case).
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The scheduler's queue: pending sessions in order, with owner, resources and the reason.
#[component]
fn QueueCard(board: Board) -> impl IntoView {
    view! {
        <section class="card list" id="queue-card">
            <div class="list-head">
                <h2>"Queue"</h2>
                <span class="muted small-print">{move || format!("{} waiting", board.queue.with(Vec::len))}</span>
            </div>
            {move || {
                let mut list = board.queue.get();
                if !board.loaded.get() {
                    return view! { <p class="muted">"Loading the queue…"</p> }.into_any();
                }
                if list.is_empty() {
                    return view! { <p class="empty" id="queue-empty">"No session is waiting: every request has a node."</p> }.into_any();
                }
                list.sort_by_key(|s| s.queue_position.unwrap_or(u32::MAX));
                view! {
                    <table class="grid queue" id="queue">
                        <thead><tr>
                            <th class="right">"#"</th><th>"Session"</th><th>"Owner"</th><th>"Asks for"</th><th>"Why it waits"</th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().enumerate().map(|(i, s)| {
                                let pos = s.queue_position.unwrap_or(i as u32 + 1);
                                view! {
                                    <tr class="queue-row" data-id=s.id.clone() data-name=s.name.clone()>
                                        <td class="right queue-pos">{pos}</td>
                                        <td>
                                            <a class="strong" href=format!("#/sessions/{}", s.id)>{s.name.clone()}</a>
                                            <div class="muted small-print mono" title="Queued at (UTC)">{clock(&s.created_at)}</div>
                                        </td>
                                        <td>{s.owner_name.clone()}</td>
                                        <td class="nowrap">{s.resources.summary()}</td>
                                        <td class="queue-reason">{s.status_reason.clone()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
