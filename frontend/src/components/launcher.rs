//! The session launcher: image, presets, CPU and memory, an optional project, folders to
//! mount, ports and a name. Every rule is the `api` crate's, checked as the user types; the
//! server's answer is shown as a sentence. When the user's policy has limits, a line says
//! what they may still ask for.

use crate::api::{self, ApiError};
use crate::components::vfolder::PermissionBadge;
use crate::state::Sessions;
use ::api::auth::User;
use ::api::images::ImageInfo;
use ::api::policy::{Policy, UserPolicy};
use ::api::projects::Project;
use ::api::session::{CreateSession, MountRequest, Session};
use ::api::vfolders::{check_mount_points, mount_point, Permission, VFolder};
use ::api::{FieldError, Resources, ResourcesRequest};
use leptos::prelude::*;

const PRESETS: [(&str, &str, &str); 4] = [
    ("Tiny", "0.25", "256m"),
    ("Small", "0.5", "512m"),
    ("Medium", "1", "1g"),
    ("Large", "2", "4g"),
];

#[component]
pub fn Launcher() -> impl IntoView {
    let store = expect_context::<Sessions>();
    let images = RwSignal::new(Vec::<ImageInfo>::new());
    let images_error = RwSignal::new(None::<String>);
    let image = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let me = expect_context::<User>();
    let my_id = me.id.clone();
    let projects = RwSignal::new(Vec::<Project>::new());
    let projects_error = RwSignal::new(None::<String>);
    let project = RwSignal::new(String::new());
    let cpu = RwSignal::new("1".to_string());
    let mem = RwSignal::new("1g".to_string());
    let server_error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let touched = RwSignal::new(false);
    // Off: the user's persistent home folder is /home/work (the default).
    let clean_home = RwSignal::new(false);

    leptos::task::spawn_local(async move {
        match api::get::<Vec<ImageInfo>>("/api/v1/images").await {
            Ok(list) => {
                if let Some(first) = list.iter().find(|i| i.error.is_none()) {
                    let pick = list
                        .iter()
                        .find(|i| i.name == "berth/base" && i.error.is_none())
                        .unwrap_or(first);
                    image.set(pick.name.clone());
                }
                images.set(list);
            }
            Err(e) => images_error.set(Some(e.detail)),
        }
    });

    // Admins see every project; a session may only name one its owner belongs to.
    leptos::task::spawn_local(async move {
        match api::get::<Vec<Project>>("/api/v1/projects").await {
            Ok(list) => projects.set(
                list.into_iter()
                    .filter(|p| p.members.iter().any(|m| m.id == me.id))
                    .collect(),
            ),
            Err(e) => projects_error.set(Some(e.detail)),
        }
    });

    // My policy, for "you may still ask for"; without it (an error) the line is left out.
    let policy = RwSignal::new(None::<Policy>);
    {
        let path = format!("/api/v1/users/{}/policy", api::enc(&my_id));
        leptos::task::spawn_local(async move {
            if let Ok(p) = api::get::<UserPolicy>(&path).await {
                policy.set(Some(p.policy));
            }
        });
    }

    // Folders to mount: every usable one is offered; `chosen` keeps the picked ones in order.
    let folders = RwSignal::new(Vec::<VFolder>::new());
    let folders_loaded = RwSignal::new(false);
    let folders_error = RwSignal::new(None::<String>);
    let chosen = RwSignal::new(Vec::<MountChoice>::new());
    leptos::task::spawn_local(async move {
        match api::list_vfolders().await {
            Ok(list) => folders.set(list),
            Err(e) => folders_error.set(Some(e.detail)),
        }
        folders_loaded.set(true);
    });
    // Each chosen folder's mount point (or why its alias is refused), then the clashes.
    let mount_check = Memo::new(move |_| {
        let list = chosen.get();
        let mut points = Vec::new();
        let mut each = Vec::new();
        for m in &list {
            let alias = m.alias.trim();
            let r = mount_point((!alias.is_empty()).then_some(alias), &m.name);
            if let Ok(p) = &r {
                points.push((m.label.clone(), p.clone()));
            }
            each.push((m.id.clone(), r));
        }
        (each, check_mount_points(&points))
    });

    let ports = RwSignal::new(String::new());
    // "8000, 8080" → numbers; a word that is not a number is reported by `errors` below.
    let parsed_ports = move || -> (Vec<u32>, Option<String>) {
        let mut out = Vec::new();
        for w in ports.get().split([',', ' ']).filter(|w| !w.is_empty()) {
            match w.parse::<u32>() {
                Ok(p) => out.push(p),
                Err(_) => return (out, Some(format!("\"{w}\" is not a port number."))),
            }
        }
        (out, None)
    };
    let request = move || CreateSession {
        mounts: Some(chosen.with(|c| c.iter().map(MountChoice::request).collect::<Vec<_>>()))
            .filter(|m| !m.is_empty()),
        preopen_ports: Some(parsed_ports().0).filter(|p| !p.is_empty()),
        name: Some(name.get().trim().to_string()).filter(|n| !n.is_empty()),
        project: Some(project.get()).filter(|p| !p.is_empty()),
        image: image.get(),
        resources: ResourcesRequest::new(cpu.get().trim(), mem.get().trim()),
        home: clean_home.get().then(|| "clean".to_string()),
        ..Default::default()
    };
    // The same validation the gateway runs.
    let errors = Memo::new(move |_| {
        let mut errs = request().validate().err().unwrap_or_default();
        if let Some(m) = parsed_ports().1 {
            errs.push(FieldError::new("preopen_ports", m));
        }
        let (each, clashes) = mount_check.get();
        for (_, r) in each {
            if let Err(m) = r {
                errs.push(FieldError::new("mounts.alias", m));
            }
        }
        errs.extend(clashes.into_iter().map(|m| FieldError::new("mounts", m)));
        errs
    });
    let field_error = move |f: &'static str| {
        move || {
            // Every complaint about the field, not just the first (e.g. two bad ports).
            let local: Vec<String> = errors
                .get()
                .into_iter()
                .filter(|e: &FieldError| e.field == f)
                .map(|e| e.message)
                .collect();
            let local = (!local.is_empty()).then(|| local.join(" "));
            let remote = server_error.get().and_then(|e| e.field(f));
            local
                .or(remote)
                .map(|m| view! { <span class="field-error">{m}</span> })
        }
    };
    let summary = move || {
        request()
            .resources
            .validate()
            .map(|r| r.summary())
            .unwrap_or_else(|_| "—".into())
    };

    // What my policy still allows, from my live sessions in the store (kept current by
    // events); `None` when the policy limits neither sessions nor resources.
    let allowance = Memo::new(move |_| {
        let p = policy.get()?;
        store
            .list
            .with(|list| Allowance::of(&p, list.iter().filter(|s| s.owner == my_id)))
    });
    let would_wait = move || {
        let a = allowance.get()?;
        let want = request().resources.validate().ok()?;
        a.would_wait(&want)
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        if !errors.get().is_empty() || busy.get() {
            return;
        }
        let req = request();
        busy.set(true);
        server_error.set(None);
        leptos::task::spawn_local(async move {
            let mark = store.mark();
            match api::post::<_, Session>("/api/v1/sessions", &req).await {
                Ok(s) => {
                    let id = s.id.clone();
                    store.answer(s, mark);
                    name.set(String::new());
                    crate::navigate(&format!("/sessions/{id}"));
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card launcher" on:submit=submit>
            <h2>"Launch a session"</h2>
            {move || images_error.get().map(|e| view! { <p class="error">{e}</p> })}
            <label>
                "Image"
                <select id="launch-image" on:change=move |ev| image.set(event_target_value(&ev))
                    prop:value=move || image.get()>
                    {move || images.get().into_iter().map(|i| {
                        let label = match &i.error {
                            Some(_) => format!("{} (unusable)", i.name),
                            None => i.name.clone(),
                        };
                        let selected = i.name == image.get_untracked();
                        view! { <option value=i.name.clone() disabled=i.error.is_some() selected=selected>{label}</option> }
                    }).collect_view()}
                </select>
                {field_error("image")}
                {move || images.get().into_iter().filter_map(|i| i.error.map(|e| view! {
                    <span class="image-error">{format!("{} cannot be launched: {e}", i.name)}</span>
                })).collect_view()}
            </label>
            <div class="presets">
                {PRESETS.into_iter().map(|(label, c, m)| view! {
                    <button type="button" class="chip"
                        class:selected=move || cpu.get() == c && mem.get() == m
                        on:click=move |_| { cpu.set(c.to_string()); mem.set(m.to_string()); }>
                        {label}
                    </button>
                }).collect_view()}
            </div>
            <div class="row">
                <label>
                    "CPU (cores)"
                    <input id="launch-cpu" type="text" inputmode="decimal" placeholder="1 or 500m"
                        prop:value=move || cpu.get() on:input=move |ev| cpu.set(event_target_value(&ev)) />
                    {field_error("resources.cpu")}
                </label>
                <label>
                    "Memory"
                    <input id="launch-mem" type="text" placeholder="1g or 512m"
                        prop:value=move || mem.get() on:input=move |ev| mem.set(event_target_value(&ev)) />
                    {field_error("resources.mem")}
                </label>
            </div>
            <label>
                "Project"
                <select id="launch-project" prop:value=move || project.get()
                    on:change=move |ev| project.set(event_target_value(&ev))>
                    <option value="">"None"</option>
                    {move || projects.get().into_iter().map(|p| view! {
                        <option value=p.name.clone()>{p.name.clone()}</option>
                    }).collect_view()}
                </select>
                {move || projects_error.get().map(|e| view! { <span class="field-error">{e}</span> })}
                {field_error("project")}
            </label>
            <label class="check" title="Your home folder keeps what you install and write under /home/work between sessions.">
                <input id="launch-clean-home" type="checkbox" prop:checked=move || clean_home.get()
                    on:change=move |ev| clean_home.set(event_target_checked(&ev)) />
                "Clean home (nothing is kept)"
            </label>
            <p class="muted small-print" id="launch-home-hint">
                {move || if clean_home.get() {
                    "/home/work starts as the image made it and goes with the session; your home folder can still be mounted below."
                } else {
                    "/home/work is your home folder: what you install or write there is kept for your next sessions."
                }}
            </p>
            {field_error("home")}
            <div class="mounts" id="launch-mounts">
                <div class="mounts-head">
                    <span class="field-title">"Mounts"</span>
                    <a class="small-print" href="#/folders">"Manage folders"</a>
                </div>
                {move || folders_error.get().map(|e| view! { <span class="field-error">{e}</span> })}
                {move || {
                    // The home is /home/work already unless the session starts clean.
                    let clean = clean_home.get();
                    let list: Vec<VFolder> = folders.get().into_iter().filter(|f| clean || f.kind != "home").collect();
                    if !folders_loaded.get() {
                        view! { <p class="muted small-print">"Loading folders…"</p> }.into_any()
                    } else if list.is_empty() && folders_error.get().is_none() {
                        view! { <p class="muted small-print">"No folders yet. Create one in Folders to keep data between sessions."</p> }.into_any()
                    } else {
                        view! {
                            <div class="mount-list">
                                {list.into_iter().map(|f| view! { <MountRow folder=f chosen=chosen check=mount_check /> }).collect_view()}
                            </div>
                        }.into_any()
                    }
                }}
                {move || {
                    let local: Vec<String> = errors.get().into_iter().filter(|e| e.field == "mounts").map(|e| e.message).collect();
                    let remote: Vec<String> = server_error.get().map(|e| e.errors.into_iter()
                        .filter(|f| f.field.starts_with("mounts")).map(|f| f.message).collect()).unwrap_or_default();
                    local.into_iter().chain(remote).map(|m| view! { <span class="field-error mount-error">{m}</span> }).collect_view()
                }}
            </div>
            <label>
                "Preopen ports (optional)"
                <input id="launch-ports" type="text" placeholder="e.g. 8000, 8080" maxlength="120"
                    prop:value=move || ports.get() on:input=move |ev| ports.set(event_target_value(&ev)) />
                {field_error("preopen_ports")}
            </label>
            <label>
                "Name (optional)"
                <input id="launch-name" type="text" placeholder="generated when empty" maxlength="80"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                {field_error("name")}
            </label>
            {move || allowance.get().map(|a| view! {
                <p class="allowance" id="launch-allowance" title=a.limits.clone()>
                    {a.sentence()}
                    {move || would_wait().map(|w| view! { <span class="would-wait">{w}</span> })}
                </p>
            })}
            {move || server_error.get().filter(|e| e.errors.is_empty()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
            <div class="actions">
                <span class="muted">{summary}</span>
                <button id="launch-submit" class="primary" type="submit"
                    disabled=move || busy.get() || !errors.get().is_empty()>
                    {move || if busy.get() { "Launching…" } else { "Launch" }}
                </button>
            </div>
        </form>
    }
}

/// What a user's policy still allows beside their live sessions (waiting ones included: a new
/// session queues behind them).
#[derive(Debug, Clone, PartialEq)]
struct Allowance {
    /// Resources left under `max_total_resources`, the total, and whether GPUs are limited
    /// at all (a policy's zero GPUs means "not limited").
    resources: Option<(Resources, Resources, bool)>,
    /// Sessions left under `max_concurrent_sessions`.
    sessions: Option<u64>,
    /// The limits and what is held, for the tooltip.
    limits: String,
}

impl Allowance {
    fn of<'a>(p: &Policy, mine: impl Iterator<Item = &'a Session>) -> Option<Self> {
        if p.max_total_resources.is_none() && p.max_concurrent_sessions.is_none() {
            return None;
        }
        let live: Vec<&Session> = mine.filter(|s| s.status.is_live()).collect();
        let held = live
            .iter()
            .fold(Resources::default(), |acc, s| acc.add(&s.resources));
        let mut limits = Vec::new();
        if let Some(total) = &p.max_total_resources {
            limits.push(format!("{} in all", total.summary()));
        }
        if let Some(max) = p.max_concurrent_sessions {
            limits.push(format!(
                "{max} concurrent session{}",
                if max == 1 { "" } else { "s" }
            ));
        }
        let limits = format!(
            "Your policy allows {}; your {} live session{} hold{} {}.",
            limits.join(" and "),
            live.len(),
            if live.len() == 1 { "" } else { "s" },
            if live.len() == 1 { "s" } else { "" },
            held.summary()
        );
        Some(Self {
            resources: p
                .max_total_resources
                .map(|t| (t.saturating_sub(&held), t, t.gpu > 0 || t.gpu_shares.0 > 0)),
            sessions: p
                .max_concurrent_sessions
                .map(|m| m.saturating_sub(live.len() as u64)),
            limits,
        })
    }

    /// "You may still ask for 3 CPU, 6 GiB and 1 more session."
    fn sentence(&self) -> String {
        let mut parts = Vec::new();
        if let Some((left, _, gpus)) = &self.resources {
            let mut r = format!("{} CPU, {}", left.cpu, left.mem.human());
            if *gpus {
                r.push_str(&format!(", {} GPU", left.gpu));
                if left.gpu_shares.0 > 0 {
                    r.push_str(&format!(" and {} GPU shares", left.gpu_shares));
                }
            }
            parts.push(r);
        }
        if let Some(n) = self.sessions {
            parts.push(match n {
                0 => "no more sessions".to_string(),
                1 => "1 more session".to_string(),
                n => format!("{n} more sessions"),
            });
        }
        format!("You may still ask for {}.", parts.join(" and "))
    }

    /// Why a request for `want` would wait in the queue now (or be refused), if it would.
    fn would_wait(&self, want: &Resources) -> Option<String> {
        let over = |have: &Resources, gpus: bool| {
            want.cpu > have.cpu
                || want.mem > have.mem
                || (gpus && (want.gpu > have.gpu || want.gpu_shares > have.gpu_shares))
        };
        if let Some((_, total, gpus)) = &self.resources {
            if over(total, *gpus) {
                return Some(
                    " This request is more than your policy allows in all; it would be refused."
                        .into(),
                );
            }
        }
        if self.sessions == Some(0) {
            return Some(" A new session waits until one of yours ends.".into());
        }
        let (left, _, gpus) = self.resources?;
        over(&left, gpus)
            .then(|| " This request is more than that: it would wait until yours free room.".into())
    }
}

/// Each chosen folder's id with its mount point (or why its alias is refused), and the
/// sentences about mount points that clash.
type MountCheck = (Vec<(String, Result<String, String>)>, Vec<String>);

/// A folder picked for mounting, with its alias and mode.
#[derive(Debug, Clone, PartialEq)]
struct MountChoice {
    id: String,
    name: String,
    /// How errors name it: the name, with the owner when it is not mine.
    label: String,
    permission: Permission,
    alias: String,
    read_only: bool,
}

impl MountChoice {
    fn new(f: &VFolder) -> Self {
        let label = if f.kind == "project" {
            format!("{} (project {})", f.name, f.owner)
        } else if f.permission == Permission::Owner {
            f.name.clone()
        } else {
            format!("{} ({})", f.name, f.owner)
        };
        Self {
            id: f.id.clone(),
            name: f.name.clone(),
            label,
            permission: f.permission,
            alias: String::new(),
            read_only: !f.permission.can_write(),
        }
    }

    /// By id: a name could mean one of mine and one shared with me at once.
    fn request(&self) -> MountRequest {
        let alias = self.alias.trim();
        MountRequest {
            vfolder: self.id.clone(),
            path: (!alias.is_empty()).then(|| alias.to_string()),
            mode: Some(if self.read_only { "ro" } else { "rw" }.to_string()),
        }
    }
}

/// One folder in the launcher's Mounts list: a checkbox, then its alias and mode when picked.
#[component]
fn MountRow(
    folder: VFolder,
    chosen: RwSignal<Vec<MountChoice>>,
    check: Memo<MountCheck>,
) -> impl IntoView {
    let id = folder.id.clone();
    let writable = folder.permission.can_write();
    let usable = folder.state == "READY";
    let choice = {
        let id = id.clone();
        Memo::new(move |_| chosen.with(|c| c.iter().find(|m| m.id == id).cloned()))
    };
    let toggle = {
        let f = folder.clone();
        move |ev: leptos::ev::Event| {
            let on = event_target_checked(&ev);
            chosen.update(|c| {
                c.retain(|m| m.id != f.id);
                if on {
                    c.push(MountChoice::new(&f));
                }
            });
        }
    };
    let picked = Memo::new(move |_| choice.get().is_some());
    let set_alias = {
        let id = id.clone();
        move |v: String| {
            chosen.update(|c| {
                if let Some(m) = c.iter_mut().find(|m| m.id == id) {
                    m.alias = v;
                }
            })
        }
    };
    let set_mode = {
        let id = id.clone();
        move |ro: bool| {
            chosen.update(|c| {
                if let Some(m) = c.iter_mut().find(|m| m.id == id) {
                    m.read_only = ro;
                }
            })
        }
    };
    let point = {
        let id = id.clone();
        move || check.with(|(each, _)| each.iter().find(|(i, _)| *i == id).map(|(_, r)| r.clone()))
    };
    let default_point = format!("{}/{}", ::api::vfolders::HOME, folder.name);
    let name = folder.name.clone();
    let title = if usable {
        folder.permission.describe().to_string()
    } else {
        "A clone is still filling this folder; it can be mounted when it is done.".to_string()
    };
    view! {
        <div class="mount-choice" data-name=folder.name.clone() class:picked=move || choice.get().is_some()>
            <label class="check" title=title>
                <input type="checkbox" class="mount-pick" disabled=!usable
                    prop:checked=move || choice.get().is_some() on:change=toggle />
                <span class="mount-name">{folder.name.clone()}</span>
                {(folder.permission != Permission::Owner || folder.kind == "project").then(|| view! {
                    <span class="muted small-print">{if folder.kind == "project" { format!("project {}", folder.owner) } else { folder.owner.clone() }}</span>
                })}
                <span class="spacer"></span>
                <PermissionBadge permission=folder.permission />
            </label>
            {move || picked.get().then(|| {
                let (set_alias, set_mode) = (set_alias.clone(), set_mode.clone());
                view! {
                    <div class="mount-opts">
                        <input type="text" class="mount-alias" placeholder=default_point.clone()
                            aria-label=format!("Mount path for {name}") maxlength="255"
                            prop:value=move || choice.get().map(|c| c.alias).unwrap_or_default()
                            on:input=move |ev| set_alias(event_target_value(&ev)) />
                        <select class="mount-mode" aria-label=format!("Mode for {name}") disabled=!writable
                            title=if writable { "Mount read-write or read-only" } else { "Read-only: you may only read this folder." }
                            prop:value=move || if choice.get().is_some_and(|c| c.read_only) { "ro" } else { "rw" }
                            on:change=move |ev| set_mode(event_target_value(&ev) == "ro")>
                            <option value="rw" disabled=!writable>"rw"</option>
                            <option value="ro">"ro"</option>
                        </select>
                    </div>
                }
            })}
            {move || match point() {
                Some(Ok(p)) => Some(view! { <span class="mount-point mono">{format!("→ {p}")}</span> }.into_any()),
                Some(Err(e)) => Some(view! { <span class="field-error">{e}</span> }.into_any()),
                None => None,
            }}
        </div>
    }
}
