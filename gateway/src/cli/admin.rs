//! `berth admin user|project|policy`: the admin API from the command line. `admin user add
//! --data-dir DIR` is the one local command: it writes the database directly, so a server
//! can get its users before anyone holds a key.

use super::client::{api_path, Client};
use super::table::{self, s, Table};
use super::{connect, prompt, Error, Result};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum AdminCmd {
    /// Users: add, list, passwd, disable, enable, role
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Projects (groups of users) and their members
    Project {
        #[command(subcommand)]
        cmd: ProjectCmd,
    },
    /// Resource policies: the defaults and each user's overrides
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is asked for (or read from standard input)
    Add {
        username: String,
        /// user, admin or superadmin [default: user]
        #[arg(long)]
        role: Option<String>,
        /// Write to this data directory's database instead of calling the server (for
        /// setting up a server before anyone has a key)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List users
    #[command(visible_alias = "ls")]
    List {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password; the new one is asked for (or read from standard input)
    Passwd { username: String },
    /// Disable a user: their logins, cookies and keys stop working at once
    Disable { username: String },
    /// Enable a disabled user again
    Enable { username: String },
    /// Change a user's role (user, admin or superadmin)
    Role { username: String, role: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum ProjectCmd {
    /// Create a project
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List projects with their members
    #[command(visible_alias = "ls")]
    List {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Add or remove project members
    Member {
        #[command(subcommand)]
        cmd: MemberCmd,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum MemberCmd {
    /// Add a user to a project
    Add { project: String, user: String },
    /// Remove a user from a project
    #[command(visible_alias = "remove")]
    Rm { project: String, user: String },
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Show a user's effective policy (and which settings are their own), or the defaults
    Show {
        /// Username or id (leave out with --default)
        user: Option<String>,
        /// The defaults everyone gets
        #[arg(long)]
        default: bool,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Change settings of a user's policy (or of the defaults), keeping the others.
    ///
    /// Each setting is KEY=VALUE: a number, `null` or `unlimited`, `default` (drop the
    /// user's own value), `max_total_resources=cpu=4,mem=8g`, `allowed_node_groups=a,b`.
    /// Keys: max_concurrent_sessions, max_pending_sessions, max_total_resources,
    /// max_session_lifetime_s, idle_timeout_s, max_vfolders, vfolder_quota_bytes,
    /// allowed_node_groups, max_processes.
    Set {
        /// Change the defaults instead of a user's policy
        #[arg(long)]
        default: bool,
        /// USER (unless --default), then KEY=VALUE settings
        #[arg(value_name = "[USER] KEY=VALUE", required = true, num_args = 1..)]
        args: Vec<String>,
        /// Print the server's JSON of the result
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::User {
            cmd:
                UserCmd::Add {
                    username,
                    role,
                    data_dir: Some(dir),
                },
        } => user_add_local(username, role, dir).await,
        AdminCmd::User { cmd } => user(&connect()?, cmd).await,
        AdminCmd::Project { cmd } => project(&connect()?, cmd).await,
        AdminCmd::Policy { cmd } => policy(&connect()?, cmd).await,
    }
}

fn role_word(v: &Value) -> String {
    s(v, "role").to_ascii_lowercase()
}

async fn user(c: &Client, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add { username, role, .. } => {
            let password = prompt::new_password(&format!("Password for {username}: "))?;
            let mut body = json!({"username": username, "password": password});
            if let Some(r) = role {
                body["role"] = r.into();
            }
            let v = c.post(&api_path(&["users"]), &body).await?.value()?;
            println!("Created user {} ({}).", s(&v, "username"), role_word(&v));
        }
        UserCmd::List { json } => {
            let answer = c.get(&api_path(&["users"])).await?;
            if json {
                println!("{}", answer.pretty()?);
                return Ok(());
            }
            let users = answer.value()?;
            let mut t = Table::new(&["USERNAME", "ROLE", "STATE", "CREATED", "ID"]);
            for u in users.as_array().into_iter().flatten() {
                let disabled = u["disabled"].as_bool().unwrap_or(false);
                t.row(vec![
                    s(u, "username").to_string(),
                    role_word(u),
                    if disabled { "disabled" } else { "active" }.to_string(),
                    s(u, "created_at").to_string(),
                    s(u, "id").to_string(),
                ]);
            }
            print!("{}", t.render());
        }
        UserCmd::Passwd { username } => {
            let password = prompt::new_password(&format!("New password for {username}: "))?;
            let v = patch_user(c, &username, json!({"password": password})).await?;
            println!("Changed the password of {}.", s(&v, "username"));
        }
        UserCmd::Disable { username } => {
            let v = patch_user(c, &username, json!({"disabled": true})).await?;
            println!("Disabled user {}.", s(&v, "username"));
        }
        UserCmd::Enable { username } => {
            let v = patch_user(c, &username, json!({"disabled": false})).await?;
            println!("Enabled user {}.", s(&v, "username"));
        }
        UserCmd::Role { username, role } => {
            let v = patch_user(c, &username, json!({"role": role})).await?;
            println!("{} is now {}.", s(&v, "username"), role_word(&v));
        }
    }
    Ok(())
}

/// `PATCH /users/{user}`; the answer's user (or just the name when the answer has none).
async fn patch_user(c: &Client, user: &str, body: Value) -> Result<Value> {
    let answer = c.patch(&api_path(&["users", user]), &body).await?;
    let mut v = answer.value().unwrap_or_else(|_| json!({}));
    if v.get("username").and_then(Value::as_str).is_none() {
        v = json!({"username": user, "role": v.get("role").cloned().unwrap_or_default()});
    }
    Ok(v)
}

/// The local variant: straight into the data directory's database.
async fn user_add_local(username: String, role: Option<String>, dir: PathBuf) -> Result<()> {
    let password = prompt::new_password(&format!("Password for {username}: "))?;
    let req = api::auth::CreateUser {
        username: username.clone(),
        password: api::auth::Secret(password),
        role,
    };
    let role = req.validate().map_err(|errs| {
        Error::Other(
            errs.into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join(" "),
        )
    })?;
    let db = gateway::db::open(&dir)
        .await
        .map_err(|e| Error::Other(format!("{e:#}")))?;
    gateway::auth::create_user(&db, &username, &req.password.0, role)
        .await
        .map_err(|e| match e {
            gateway::error::AppError::Problem(p) => Error::Problem {
                problem: Box::new(p),
                hint: None,
            },
            gateway::error::AppError::Internal(e) => Error::Other(format!("{e:#}")),
        })?;
    println!(
        "Created user {username} ({}).",
        role.as_str().to_lowercase()
    );
    Ok(())
}

async fn project(c: &Client, cmd: ProjectCmd) -> Result<()> {
    match cmd {
        ProjectCmd::Add { name, description } => {
            let mut body = json!({"name": name});
            if let Some(d) = description {
                body["description"] = d.into();
            }
            let v = c.post(&api_path(&["projects"]), &body).await?.value()?;
            println!("Created project {}.", s(&v, "name"));
        }
        ProjectCmd::List { json } => {
            let answer = c.get(&api_path(&["projects"])).await?;
            if json {
                println!("{}", answer.pretty()?);
                return Ok(());
            }
            let list = answer.value()?;
            if list.as_array().is_some_and(Vec::is_empty) {
                eprintln!("No projects.");
            } else {
                print!("{}", projects_table(&list).render());
            }
        }
        ProjectCmd::Member {
            cmd: MemberCmd::Add { project, user },
        } => {
            c.post(
                &api_path(&["projects", &project, "members"]),
                &json!({"user": user}),
            )
            .await?;
            println!("Added {user} to project {project}.");
        }
        ProjectCmd::Member {
            cmd: MemberCmd::Rm { project, user },
        } => {
            c.delete(&api_path(&["projects", &project, "members", &user]))
                .await?;
            println!("Removed {user} from project {project}.");
        }
    }
    Ok(())
}

pub fn projects_table(list: &Value) -> Table {
    let mut t = Table::new(&["NAME", "MEMBERS", "DESCRIPTION", "CREATED", "ID"]);
    for p in list.as_array().into_iter().flatten() {
        let members: Vec<&str> = p["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| s(m, "username"))
            .collect();
        t.row(vec![
            s(p, "name").to_string(),
            table::truncate(&members.join(","), 40),
            table::truncate(s(p, "description"), 40),
            s(p, "created_at").to_string(),
            s(p, "id").to_string(),
        ]);
    }
    t
}

/// One `KEY=VALUE` of `policy set` as JSON. `None` means "drop the user's own value".
pub fn policy_value(key: &str, raw: &str) -> Result<Option<Value>> {
    let v = raw.trim();
    if v.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    if v.eq_ignore_ascii_case("null") || v.eq_ignore_ascii_case("unlimited") {
        return Ok(Some(Value::Null));
    }
    if v.starts_with('{') || v.starts_with('[') {
        return serde_json::from_str(v)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{key}: \"{v}\" is not valid JSON ({e}).")));
    }
    let out = match key {
        "max_total_resources" => {
            let mut m = Map::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, val) = part.split_once('=').ok_or_else(|| {
                    Error::Usage(format!(
                        "{key}: \"{part}\" is not NAME=VALUE; write e.g. {key}=cpu=4,mem=8g."
                    ))
                })?;
                m.insert(k.trim().to_string(), Value::from(val.trim()));
            }
            Value::Object(m)
        }
        "allowed_node_groups" => Value::Array(
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(Value::from)
                .collect(),
        ),
        _ => match v.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(v),
        },
    };
    Ok(Some(out))
}

/// Splits `KEY=VALUE` arguments into `(key, value)` pairs.
pub fn parse_settings(args: &[String]) -> Result<Vec<(String, Option<Value>)>> {
    if args.is_empty() {
        return Err(Error::Usage(
            "Give at least one KEY=VALUE setting, e.g. idle_timeout_s=3600.".into(),
        ));
    }
    args.iter()
        .map(|a| {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                Error::Usage(format!(
                    "\"{a}\" is not KEY=VALUE, e.g. max_concurrent_sessions=3."
                ))
            })?;
            let k = k.trim();
            if k.is_empty() {
                return Err(Error::Usage(format!("\"{a}\" names no setting.")));
            }
            Ok((k.to_string(), policy_value(k, v)?))
        })
        .collect()
}

/// A user's own overrides, from the answer of `GET /users/{u}/policy`.
pub fn current_overrides(policy: &Value) -> Map<String, Value> {
    policy["overridden"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|k| (k.to_string(), policy.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

fn policy_path(user: Option<&str>) -> String {
    match user {
        Some(u) => api_path(&["users", u, "policy"]),
        None => api_path(&["policies", "default"]),
    }
}

async fn policy(c: &Client, cmd: PolicyCmd) -> Result<()> {
    match cmd {
        PolicyCmd::Show {
            user,
            default,
            json,
        } => {
            let user = match (user, default) {
                (Some(u), false) => Some(u),
                (None, true) => None,
                (Some(_), true) => {
                    return Err(Error::Usage("Give a user or --default, not both.".into()))
                }
                (None, false) => return Err(Error::Usage("Give a user, or --default.".into())),
            };
            let answer = c.get(&policy_path(user.as_deref())).await?;
            if json {
                println!("{}", answer.pretty()?);
            } else {
                print!(
                    "{}",
                    policy_table(&answer.value()?, user.is_some()).render()
                );
            }
        }
        PolicyCmd::Set {
            default,
            args,
            json,
        } => {
            let (user, settings) = if default {
                (None, &args[..])
            } else {
                (Some(args[0].as_str()), &args[1..])
            };
            let settings = parse_settings(settings)?;
            let path = policy_path(user);
            let current = c.get(&path).await?.value()?;
            let mut body = match user {
                Some(_) => current_overrides(&current),
                None => {
                    let mut m = current.as_object().cloned().unwrap_or_default();
                    m.remove("overridden");
                    m
                }
            };
            for (k, v) in settings {
                match v {
                    Some(v) => {
                        body.insert(k, v);
                    }
                    None if user.is_some() => {
                        body.remove(&k);
                    }
                    None => {
                        return Err(Error::Usage(format!(
                            "{k}=default means \"use the default\", which only a user's policy can; give a value."
                        )))
                    }
                }
            }
            let answer = c.put(&path, &Value::Object(body)).await?;
            // Show the policy as it now is (the PUT's answer, or a fresh read).
            let now = match answer.value() {
                Ok(v) if api::policy::KEYS.iter().any(|k| v.get(*k).is_some()) => answer,
                _ => c.get(&path).await?,
            };
            if json {
                println!("{}", now.pretty()?);
            } else {
                print!("{}", policy_table(&now.value()?, user.is_some()).render());
            }
        }
    }
    Ok(())
}

/// A policy value for people.
fn policy_cell(key: &str, v: &Value) -> String {
    match v {
        Value::Null => "unlimited".into(),
        Value::Object(_) if key == "max_total_resources" => table::resources(v),
        Value::Array(a) if a.is_empty() => "(none)".into(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
            .collect::<Vec<_>>()
            .join(","),
        Value::Number(n) if key.ends_with("_bytes") => match n.as_u64() {
            Some(b) => format!("{b} ({})", api::Bytes(b).human()),
            None => n.to_string(),
        },
        Value::Number(n) if key.ends_with("_s") => match n.as_u64() {
            Some(secs) => format!("{secs} ({})", table::duration(secs)),
            None => n.to_string(),
        },
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

/// `policy show`: every setting with its value, and for a user whether it is their own.
pub fn policy_table(policy: &Value, for_user: bool) -> Table {
    let own: Vec<&str> = policy["overridden"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut keys: Vec<String> = api::policy::KEYS.iter().map(|k| k.to_string()).collect();
    for k in policy.as_object().into_iter().flat_map(|m| m.keys()) {
        if k != "overridden" && !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let mut t = if for_user {
        Table::new(&["SETTING", "VALUE", "FROM"])
    } else {
        Table::new(&["SETTING", "VALUE"])
    };
    for k in keys {
        let v = policy.get(&k).cloned().unwrap_or(Value::Null);
        let mut row = vec![k.clone(), policy_cell(&k, &v)];
        if for_user {
            row.push(
                if own.contains(&k.as_str()) {
                    "user"
                } else {
                    "default"
                }
                .into(),
            );
        }
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings_parse_into_json() {
        let got = parse_settings(&args(&[
            "max_concurrent_sessions=3",
            "idle_timeout_s=unlimited",
            "max_session_lifetime_s=NULL",
            "max_total_resources=cpu=4,mem=8g",
            "allowed_node_groups=a, b",
            "vfolder_quota_bytes=10g",
            "max_vfolders=default",
            "max_pending_sessions={\"x\":1}",
        ]))
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("max_concurrent_sessions".into(), Some(json!(3))),
                ("idle_timeout_s".into(), Some(Value::Null)),
                ("max_session_lifetime_s".into(), Some(Value::Null)),
                (
                    "max_total_resources".into(),
                    Some(json!({"cpu": "4", "mem": "8g"}))
                ),
                ("allowed_node_groups".into(), Some(json!(["a", "b"]))),
                ("vfolder_quota_bytes".into(), Some(json!("10g"))),
                ("max_vfolders".into(), None),
                ("max_pending_sessions".into(), Some(json!({"x": 1}))),
            ]
        );
        assert_eq!(
            parse_settings(&args(&["allowed_node_groups="])).unwrap()[0].1,
            Some(json!([]))
        );
        assert_eq!(
            parse_settings(&args(&["idle_timeout_s=-1"])).unwrap()[0].1,
            Some(json!("-1"))
        );
        for bad in [
            &["noequals"][..],
            &["=3"],
            &["max_total_resources=cpu"],
            &[],
        ] {
            let e = parse_settings(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn overrides_come_from_the_overridden_keys() {
        let p = json!({"max_concurrent_sessions": 3, "idle_timeout_s": null, "max_vfolders": 5,
            "overridden": ["max_concurrent_sessions", "idle_timeout_s"]});
        let m = current_overrides(&p);
        assert_eq!(
            Value::Object(m),
            json!({"max_concurrent_sessions": 3, "idle_timeout_s": null})
        );
    }

    #[test]
    fn policy_tables_mark_the_users_own_values() {
        let p = json!({"max_concurrent_sessions": 3, "max_pending_sessions": null,
            "max_total_resources": {"cpu": "4", "mem": 8589934592u64, "gpu": 0, "gpu_shares": "0"},
            "max_session_lifetime_s": 3600, "idle_timeout_s": null, "max_vfolders": null,
            "vfolder_quota_bytes": 1073741824, "allowed_node_groups": ["a", "b"],
            "overridden": ["max_concurrent_sessions"]});
        let out = policy_table(&p, true).render();
        assert!(out.starts_with("SETTING "), "{out}");
        assert!(out.contains("max_concurrent_sessions  3"), "{out}");
        assert!(out.contains("4 CPU, 8 GiB"), "{out}");
        assert!(out.contains("3600 (1h)"), "{out}");
        assert!(out.contains("1073741824 (1 GiB)"), "{out}");
        assert!(out.contains("a,b"), "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("max_concurrent_sessions"))
            .unwrap();
        assert!(line.ends_with("user"), "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("idle_timeout_s"))
            .unwrap();
        assert!(
            line.contains("unlimited") && line.ends_with("default"),
            "{out}"
        );
        assert!(!policy_table(&p, false).render().contains("FROM"));
    }

    #[test]
    fn project_tables_list_members() {
        let list = json!([{"id": "p1", "name": "vision", "description": "Images.",
            "created_at": "2025-01-01T00:00:00Z",
            "members": [{"id": "u1", "username": "alice"}, {"id": "u2", "username": "bob"}]}]);
        let out = projects_table(&list).render();
        assert!(out.contains("vision  alice,bob  Images."), "{out}");
    }
}
