//! The session launcher: image, presets, CPU and memory, an optional project and name. Every
//! rule is the `api` crate's, checked as the user types; the server's answer is shown as a
//! sentence.

use crate::api::{self, ApiError};
use crate::pages::shell::Sessions;
use ::api::auth::User;
use ::api::images::ImageInfo;
use ::api::projects::Project;
use ::api::session::{CreateSession, Session};
use ::api::{FieldError, ResourcesRequest};
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
    let projects = RwSignal::new(Vec::<Project>::new());
    let projects_error = RwSignal::new(None::<String>);
    let project = RwSignal::new(String::new());
    let cpu = RwSignal::new("1".to_string());
    let mem = RwSignal::new("1g".to_string());
    let server_error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let touched = RwSignal::new(false);

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
        preopen_ports: Some(parsed_ports().0).filter(|p| !p.is_empty()),
        name: Some(name.get().trim().to_string()).filter(|n| !n.is_empty()),
        project: Some(project.get()).filter(|p| !p.is_empty()),
        image: image.get(),
        resources: ResourcesRequest::new(cpu.get().trim(), mem.get().trim()),
        ..Default::default()
    };
    // The same validation the gateway runs.
    let errors = Memo::new(move |_| {
        let mut errs = request().validate().err().unwrap_or_default();
        if let Some(m) = parsed_ports().1 {
            errs.push(FieldError::new("preopen_ports", m));
        }
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
            match api::post::<_, Session>("/api/v1/sessions", &req).await {
                Ok(s) => {
                    let id = s.id.clone();
                    store.upsert(s);
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
