//! Admin → Projects: every project with its members; create a project, add a member from the
//! user list, remove one; and a chosen project's dotfiles (`components::dotfiles`).

use crate::api::{self, ApiError};
use crate::components::dotfiles::DotfilesEditor;
use crate::components::status::{count, day};
use ::api::auth::User;
use ::api::dotfiles::Level;
use ::api::projects::{AddMember, CreateProject, Project};
use ::api::FieldError;
use leptos::prelude::*;

#[component]
pub fn ProjectsTab() -> impl IntoView {
    let projects = RwSignal::new(Vec::<Project>::new());
    let users = RwSignal::new(Vec::<User>::new());
    let loaded = RwSignal::new(false);
    let list_error = RwSignal::new(None::<String>);
    let row_error = RwSignal::new(None::<(String, String)>);
    leptos::task::spawn_local(async move {
        match api::get::<Vec<Project>>("/api/v1/projects").await {
            Ok(list) => projects.set(list),
            Err(e) => list_error.set(Some(e.detail)),
        }
        loaded.set(true);
    });
    leptos::task::spawn_local(async move {
        match api::get::<Vec<User>>("/api/v1/users").await {
            Ok(list) => users.set(list),
            Err(e) => list_error.set(Some(e.detail)),
        }
    });

    let replace = move |p: Project| {
        projects.update(|v| match v.iter_mut().find(|x| x.id == p.id) {
            Some(x) => *x = p,
            None => v.push(p),
        })
    };
    let add_member = move |project_id: String, user: String| {
        row_error.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/projects/{project_id}/members");
            match api::post::<_, Project>(&path, &AddMember { user }).await {
                Ok(p) => replace(p),
                Err(e) => row_error.set(Some((project_id, e.detail))),
            }
        });
    };
    let remove_member = move |project_id: String, user_id: String| {
        row_error.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/projects/{project_id}/members/{user_id}");
            match api::delete::<Project>(&path).await {
                Ok(p) => replace(p),
                Err(e) => row_error.set(Some((project_id, e.detail))),
            }
        });
    };

    view! {
        <div class="stack">
        <div class="admin-grid">
            <CreateProjectForm on_created=Callback::new(replace) />
            <section class="card list">
                <div class="list-head">
                    <h2>"Projects"</h2>
                    <span class="muted">{move || count(projects.with(Vec::len), "project", "projects")}</span>
                </div>
                {move || list_error.get().map(|e| view! { <p class="error">{e}</p> })}
                {move || {
                    let list = projects.get();
                    if !loaded.get() {
                        view! { <p class="muted">"Loading projects…"</p> }.into_any()
                    } else if list.is_empty() {
                        view! { <p class="empty">"No projects yet. A project groups users; sessions and shared folders can belong to one."</p> }.into_any()
                    } else {
                        view! {
                            <table class="grid" id="projects">
                                <thead><tr>
                                    <th>"Project"</th><th>"Members"</th><th>"Add a member"</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|p| view! {
                                        <ProjectRow project=p users=users row_error=row_error
                                            add=Callback::new(move |(p, u)| add_member(p, u))
                                            remove=Callback::new(move |(p, u)| remove_member(p, u)) />
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                }}
            </section>
        </div>
        <ProjectDotfiles projects=projects />
        </div>
    }
}

/// The dotfiles of one project, chosen in a list (the first one to begin with).
#[component]
fn ProjectDotfiles(projects: RwSignal<Vec<Project>>) -> impl IntoView {
    let chosen = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if chosen.get_untracked().is_none() {
            if let Some(p) = projects.with(|v| v.first().map(|p| p.id.clone())) {
                chosen.set(Some(p));
            }
        }
    });
    view! {
        {move || (!projects.with(Vec::is_empty)).then(|| view! {
            <div class="inline-form project-dotfiles-pick">
                <label>
                    "Dotfiles of project"
                    <select id="project-dotfiles-select" prop:value=move || chosen.get().unwrap_or_default()
                        on:change=move |ev| chosen.set(Some(event_target_value(&ev)).filter(|v| !v.is_empty()))>
                        {move || projects.get().into_iter().map(|p| view! {
                            <option value=p.id.clone()>{p.name.clone()}</option>
                        }).collect_view()}
                    </select>
                </label>
            </div>
        })}
        {move || chosen.get().and_then(|id| {
            let name = projects.with(|v| v.iter().find(|p| p.id == id).map(|p| p.name.clone()))?;
            Some(view! {
                <DotfilesEditor level=Level::Project base=format!("/api/v1/projects/{}/dotfiles", api::enc(&id))
                    title=format!("Dotfiles of {name}")
                    intro="Written into the sessions of this project's members, over the domain's files and under each member's own at the same path. Paths are ~/… or /etc/…." />
            })
        })}
    }
}

#[component]
fn ProjectRow(
    project: Project,
    users: RwSignal<Vec<User>>,
    row_error: RwSignal<Option<(String, String)>>,
    /// `(project id, username)`.
    add: Callback<(String, String)>,
    /// `(project id, user id)`.
    remove: Callback<(String, String)>,
) -> impl IntoView {
    let pick = RwSignal::new(String::new());
    let pid = project.id.clone();
    let member_ids: Vec<String> = project.members.iter().map(|m| m.id.clone()).collect();
    let candidates = move || {
        users
            .get()
            .into_iter()
            .filter(|u| !member_ids.contains(&u.id))
            .collect::<Vec<_>>()
    };
    let on_add = {
        let pid = pid.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let user = pick.get();
            if user.is_empty() {
                row_error.set(Some((pid.clone(), "Choose a user to add.".into())));
                return;
            }
            pick.set(String::new());
            add.run((pid.clone(), user));
        }
    };
    let err_pid = pid.clone();
    let error = move || {
        row_error
            .get()
            .filter(|(id, _)| *id == err_pid)
            .map(|(_, e)| view! { <p class="error" role="alert">{e}</p> })
    };
    let members = project.members.clone();
    view! {
        <tr class="project-row" data-name=project.name.clone()>
            <td>
                <div class="strong">{project.name.clone()}</div>
                <div class="muted small-print">{project.description.clone()}</div>
                <div class="muted small-print mono">{format!("created {}", day(&project.created_at))}</div>
            </td>
            <td>
                {if members.is_empty() {
                    view! { <span class="muted">"No members yet."</span> }.into_any()
                } else {
                    view! {
                        <div class="chips">
                            {members.into_iter().map(|m| {
                                let (pid, uid) = (pid.clone(), m.id.clone());
                                view! {
                                    <span class="member" data-username=m.username.clone()>
                                        {m.username.clone()}
                                        <button type="button" class="chip-x" title=format!("Remove {} from the project", m.username)
                                            aria-label=format!("Remove {}", m.username)
                                            on:click=move |_| remove.run((pid.clone(), uid.clone()))>"×"</button>
                                    </span>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any()
                }}
                {error}
            </td>
            <td>
                <form class="inline-form tight" on:submit=on_add>
                    <select class="small add-member-select" aria-label=format!("User to add to {}", project.name)
                        prop:value=move || pick.get() on:change=move |ev| pick.set(event_target_value(&ev))>
                        <option value="">"Choose a user…"</option>
                        {move || candidates().into_iter().map(|u| view! {
                            <option value=u.username.clone()>{u.username.clone()}</option>
                        }).collect_view()}
                    </select>
                    <button type="submit" class="small add-member">"Add"</button>
                </form>
            </td>
        </tr>
    }
}

#[component]
fn CreateProjectForm(on_created: Callback<Project>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);
    let notice = RwSignal::new(None::<String>);

    let request = move || CreateProject {
        name: name.get().trim().to_string(),
        description: Some(description.get().trim().to_string()).filter(|d| !d.is_empty()),
    };
    let errors = Memo::new(move |_| request().validate().err().unwrap_or_default());
    let field_error = move |f: &'static str, typed: RwSignal<String>| {
        move || {
            (tried.get() || !typed.get().is_empty())
                .then(|| {
                    errors
                        .get()
                        .into_iter()
                        .find(|e: &FieldError| e.field == f)
                        .map(|e| e.message)
                })
                .flatten()
                .or_else(|| server_error.get().and_then(|e| e.field(f)))
                .map(|m| view! { <span class="field-error">{m}</span> })
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        notice.set(None);
        if busy.get() || !errors.get().is_empty() {
            return;
        }
        let req = request();
        busy.set(true);
        server_error.set(None);
        leptos::task::spawn_local(async move {
            match api::post::<_, Project>("/api/v1/projects", &req).await {
                Ok(p) => {
                    notice.set(Some(format!(
                        "Project {} created; add its members in the list.",
                        p.name
                    )));
                    on_created.run(p);
                    name.set(String::new());
                    description.set(String::new());
                    tried.set(false);
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card" id="create-project" on:submit=submit>
            <h2>"Create a project"</h2>
            <label>
                "Name"
                <input id="project-name" type="text" autocomplete="off" placeholder="lowercase, e.g. vision-lab"
                    prop:value=move || name.get() on:input=move |ev| { server_error.set(None); name.set(event_target_value(&ev)) } />
                {field_error("name", name)}
            </label>
            <label>
                "Description (optional)"
                <textarea id="project-description" rows="3" maxlength="500"
                    prop:value=move || description.get()
                    on:input=move |ev| description.set(event_target_value(&ev))></textarea>
                {field_error("description", description)}
            </label>
            {move || server_error.get().filter(|e| e.errors.is_empty()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
            {move || notice.get().map(|n| view! { <p class="success" role="status">{n}</p> })}
            <div class="actions end">
                <button id="create-project-submit" class="primary" type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create project" }}
                </button>
            </div>
        </form>
    }
}
