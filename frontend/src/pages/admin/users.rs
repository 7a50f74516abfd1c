//! Admin → Users: the user table (role, disabled, created), a form to create a user, and per
//! row: change the role, disable or enable, set a password.

use crate::api::{self, ApiError};
use crate::components::status::{count, day, RoleBadge};
use ::api::auth::{validate_password, CreateUser, Role, Secret, UpdateUser, User};
use ::api::FieldError;
use leptos::prelude::*;

/// A line above the table saying what the last action did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Notice {
    ok: bool,
    text: String,
}

impl Notice {
    fn ok(text: String) -> Option<Self> {
        Some(Self { ok: true, text })
    }
    fn err(text: String) -> Option<Self> {
        Some(Self { ok: false, text })
    }
}

/// The roles `me` may hand out: nobody but a superadmin makes a superadmin.
fn grantable(me: Role) -> Vec<Role> {
    let mut roles = vec![Role::User, Role::Admin];
    if me == Role::Superadmin {
        roles.push(Role::Superadmin);
    }
    roles
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::User => "User",
        Role::Admin => "Admin",
        Role::Superadmin => "Superadmin",
    }
}

#[component]
pub fn UsersTab() -> impl IntoView {
    let me = expect_context::<User>();
    let users = RwSignal::new(Vec::<User>::new());
    let loaded = RwSignal::new(false);
    let list_error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<Notice>);
    leptos::task::spawn_local(async move {
        match api::get::<Vec<User>>("/api/v1/users").await {
            Ok(list) => users.set(list),
            Err(e) => list_error.set(Some(e.detail)),
        }
        loaded.set(true);
    });

    // One PATCH for every row action; the answer replaces the row.
    let update = move |id: String, change: UpdateUser, done: String| {
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::patch::<_, User>(&format!("/api/v1/users/{id}"), &change).await {
                Ok(u) => {
                    users.update(|v| {
                        if let Some(x) = v.iter_mut().find(|x| x.id == u.id) {
                            *x = u;
                        }
                    });
                    notice.set(Notice::ok(done));
                }
                Err(e) => {
                    notice.set(Notice::err(e.field("password").unwrap_or(e.detail)));
                    // Redraw the rows so a select shows the role the user really has.
                    users.update(|_| {});
                }
            }
        });
    };

    let pw_for = RwSignal::new(None::<String>);
    let pw_text = RwSignal::new(String::new());
    let pw_tried = RwSignal::new(false);

    let my_role = me.role;
    let my_id = me.id.clone();
    view! {
        <div class="admin-grid">
            <CreateUserForm me=my_role users=users notice=notice />
            <section class="card list">
                <div class="list-head">
                    <h2>"Users"</h2>
                    <span class="muted">{move || count(users.with(Vec::len), "account", "accounts")}</span>
                </div>
                {move || list_error.get().map(|e| view! { <p class="error">{e}</p> })}
                {move || notice.get().map(|n| if n.ok {
                    view! { <p class="success" role="status" id="users-notice">{n.text}</p> }.into_any()
                } else {
                    view! { <p class="error" role="alert" id="users-notice">{n.text}</p> }.into_any()
                })}
                {move || {
                    if !loaded.get() {
                        return view! { <p class="muted">"Loading users…"</p> }.into_any();
                    }
                    let my_id = my_id.clone();
                    view! {
                        <table class="grid" id="users">
                            <thead><tr>
                                <th>"Username"</th><th>"Role"</th><th>"Status"</th><th>"Created"</th><th class="right">"Actions"</th>
                            </tr></thead>
                            <tbody>
                                {users.get().into_iter().map(|u| {
                                    let is_self = u.id == my_id;
                                    // An admin leaves superadmins alone; nobody demotes or disables themselves here.
                                    let can_manage = u.role != Role::Superadmin || my_role == Role::Superadmin;
                                    let mut roles = grantable(my_role);
                                    if !roles.contains(&u.role) {
                                        roles.push(u.role);
                                    }
                                    let lock_reason = if is_self {
                                        "This is your own account: change your password in Settings."
                                    } else if !can_manage {
                                        "Only a superadmin changes a superadmin."
                                    } else {
                                        ""
                                    };
                                    let id = u.id.clone();
                                    let name = u.username.clone();
                                    let on_role = {
                                        let (id, name) = (id.clone(), name.clone());
                                        move |ev: leptos::ev::Event| {
                                            let role = event_target_value(&ev);
                                            let label = Role::parse(&role).map(role_label).unwrap_or("?").to_lowercase();
                                            update(id.clone(), UpdateUser { role: Some(role), ..Default::default() },
                                                format!("{name} is now {label}."));
                                        }
                                    };
                                    let on_disable = {
                                        let (id, name, disabled) = (id.clone(), name.clone(), u.disabled);
                                        move |_| {
                                            let text = if disabled { format!("{name} can log in again.") } else { format!("{name} is disabled: their sessions in the console and their API keys stop working.") };
                                            update(id.clone(), UpdateUser { disabled: Some(!disabled), ..Default::default() }, text);
                                        }
                                    };
                                    let open_pw = {
                                        let id = id.clone();
                                        move |_| {
                                            pw_text.set(String::new());
                                            pw_tried.set(false);
                                            pw_for.set(Some(id.clone()));
                                        }
                                    };
                                    let pw_row = {
                                        let (id, name) = (id.clone(), name.clone());
                                        move || (pw_for.get().as_deref() == Some(id.as_str())).then(|| {
                                            let (id, name) = (id.clone(), name.clone());
                                            let label = format!("New password for {name}");
                                            let pw_error = move || {
                                                let t = pw_text.get();
                                                (pw_tried.get() || !t.is_empty()).then(|| validate_password(&t).err()).flatten()
                                            };
                                            let save = move |ev: leptos::ev::SubmitEvent| {
                                                ev.prevent_default();
                                                pw_tried.set(true);
                                                let pw = pw_text.get();
                                                if validate_password(&pw).is_err() {
                                                    return;
                                                }
                                                pw_for.set(None);
                                                update(id.clone(), UpdateUser { password: Some(Secret(pw)), ..Default::default() },
                                                    format!("{name}'s password is set; tell them the new one."));
                                            };
                                            view! {
                                                <tr class="inline-dialog">
                                                    <td colspan="5">
                                                        <form class="inline-form" id="set-password-form" on:submit=save>
                                                            <label class="grow">
                                                                {label}
                                                                <input id="set-password" type="password" autocomplete="new-password"
                                                                    prop:value=move || pw_text.get()
                                                                    on:input=move |ev| pw_text.set(event_target_value(&ev)) />
                                                                {move || pw_error().map(|m| view! { <span class="field-error">{m}</span> })}
                                                            </label>
                                                            <button type="button" on:click=move |_| pw_for.set(None)>"Cancel"</button>
                                                            <button id="set-password-save" type="submit" class="primary">"Set password"</button>
                                                        </form>
                                                    </td>
                                                </tr>
                                            }
                                        })
                                    };
                                    view! {
                                        <tr class="user-row" data-username=u.username.clone() class:disabled-user=u.disabled>
                                            <td class="strong">{u.username.clone()}{is_self.then(|| view! { <span class="tag">"you"</span> })}</td>
                                            <td><RoleBadge role=u.role /></td>
                                            <td>{if u.disabled {
                                                view! { <span class="badge badge-disabled">"DISABLED"</span> }.into_any()
                                            } else {
                                                view! { <span class="badge badge-active">"ACTIVE"</span> }.into_any()
                                            }}</td>
                                            <td class="mono">{day(&u.created_at)}</td>
                                            <td><div class="row-actions" title=lock_reason>
                                                <select class="small role-select" aria-label=format!("Role of {}", u.username)
                                                    disabled=is_self || !can_manage on:change=on_role>
                                                    {roles.into_iter().map(|r| view! {
                                                        <option value=r.as_str() selected=r == u.role
                                                            disabled=!grantable(my_role).contains(&r)>{role_label(r)}</option>
                                                    }).collect_view()}
                                                </select>
                                                <button type="button" class="small toggle-disabled"
                                                    class:danger=!u.disabled
                                                    disabled=is_self || !can_manage on:click=on_disable>
                                                    {if u.disabled { "Enable" } else { "Disable" }}
                                                </button>
                                                <button type="button" class="small set-password" disabled=is_self || !can_manage on:click=open_pw>
                                                    "Set password"
                                                </button>
                                            </div></td>
                                        </tr>
                                        {pw_row}
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        </div>
    }
}

#[component]
fn CreateUserForm(
    me: Role,
    users: RwSignal<Vec<User>>,
    notice: RwSignal<Option<Notice>>,
) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::User.as_str().to_string());
    let tried = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<ApiError>);

    let request = move || CreateUser {
        username: username.get().trim().to_string(),
        password: Secret(password.get()),
        role: Some(role.get()),
    };
    // The gateway's own rules, as the admin types.
    let errors = Memo::new(move |_| request().validate().err().unwrap_or_default());
    let field_error = move |f: &'static str, typed: RwSignal<String>| {
        move || {
            let local = (tried.get() || !typed.get().is_empty())
                .then(|| {
                    errors
                        .get()
                        .into_iter()
                        .find(|e: &FieldError| e.field == f)
                        .map(|e| e.message)
                })
                .flatten();
            local
                .or_else(|| server_error.get().and_then(|e| e.field(f)))
                .map(|m| view! { <span class="field-error">{m}</span> })
        }
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
            match api::post::<_, User>("/api/v1/users", &req).await {
                Ok(u) => {
                    notice.set(Notice::ok(format!(
                        "User {} created; they can log in now.",
                        u.username
                    )));
                    users.update(|v| v.push(u));
                    username.set(String::new());
                    password.set(String::new());
                    role.set(Role::User.as_str().to_string());
                    tried.set(false);
                }
                Err(e) => server_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card" id="create-user" on:submit=submit>
            <h2>"Create a user"</h2>
            <label>
                "Username"
                <input id="new-username" type="text" autocomplete="off" placeholder="lowercase, e.g. alice"
                    prop:value=move || username.get()
                    on:input=move |ev| { server_error.set(None); username.set(event_target_value(&ev)) } />
                {field_error("username", username)}
            </label>
            <label>
                "Password"
                <input id="new-password" type="password" autocomplete="new-password"
                    prop:value=move || password.get()
                    on:input=move |ev| { server_error.set(None); password.set(event_target_value(&ev)) } />
                {field_error("password", password)}
            </label>
            <label>
                "Role"
                <select id="new-role" prop:value=move || role.get()
                    on:change=move |ev| role.set(event_target_value(&ev))>
                    {grantable(me).into_iter().map(|r| view! {
                        <option value=r.as_str()>{role_label(r)}</option>
                    }).collect_view()}
                </select>
                {field_error("role", role)}
            </label>
            {move || server_error.get().filter(|e| e.errors.is_empty()).map(|e| view! { <p class="error" role="alert">{e.detail}</p> })}
            <div class="actions end">
                <button id="create-user-submit" class="primary" type="submit"
                    disabled=move || busy.get() || (tried.get() && !errors.get().is_empty())>
                    {move || if busy.get() { "Creating…" } else { "Create user" }}
                </button>
            </div>
        </form>
    }
}
