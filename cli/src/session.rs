//! `berth session create|list|show|logs|rm`. A session is named on the command line by its
//! id, its name, or the start of its id (as the list shows it).

use super::client::{api_path, Client};
use super::table::{self, Table};
use super::{connect, Error, Result};
use api::auth::User;
use api::resources::{NumText, ResourcesRequest};
use api::session::{CreateSession, HistoryEntry, Session, SessionStatus};
use reqwest::Method;
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
/// `berth session …`.
pub enum SessionCmd {
    /// Launch a session
    Create(Box<CreateArgs>),
    /// List sessions (yours; everyone's for admins)
    #[command(visible_alias = "ls")]
    List {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one session with its status history
    Show {
        /// Session id, name, or the start of its id
        session: String,
        /// Print the server's JSON (the session, with its `history` added)
        #[arg(long)]
        json: bool,
    },
    /// Print a session's container logs
    Logs {
        /// Session id, name, or the start of its id
        session: String,
        /// Keep printing new output as it comes, until the session stops (or Ctrl-C)
        #[arg(short, long)]
        follow: bool,
    },
    /// Terminate a session and wait until it has ended
    #[command(visible_alias = "delete")]
    Rm {
        /// Session id, name, or the start of its id
        session: String,
        /// Return at once instead of waiting for the session to end
        #[arg(long)]
        no_wait: bool,
        /// Print the server's JSON of the session
        #[arg(long)]
        json: bool,
    },
}

/// `berth session create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Image to run, e.g. berth/base
    #[arg(long)]
    pub image: String,
    /// CPU cores: 1, 0.5, 250m
    #[arg(long)]
    pub cpu: String,
    /// Memory: 512m, 2g, 2GiB or bytes
    #[arg(long)]
    pub mem: String,
    /// Whole GPUs
    #[arg(long)]
    pub gpu: Option<String>,
    /// GPU shares in steps of 0.01, e.g. 0.3
    #[arg(long)]
    pub gpu_shares: Option<String>,
    /// Session name (generated when absent)
    #[arg(long)]
    pub name: Option<String>,
    /// Project to run the session in
    #[arg(long)]
    pub project: Option<String>,
    /// interactive (default) or batch
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Startup command, run by `sh -c` (a batch session ends when it exits)
    #[arg(long)]
    pub command: Option<String>,
    /// Environment variable, repeatable
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Start from the image's own /home/work instead of your persistent home folder
    /// (nothing the session writes there is kept)
    #[arg(long)]
    pub clean_home: bool,
    /// Wait until the session runs (or has ended)
    #[arg(long)]
    pub wait: bool,
    /// Print the server's JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_env(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("\"{s}\" is not NAME=VALUE")),
    }
}

/// Runs a `session` command.
pub async fn run(cmd: SessionCmd) -> Result<()> {
    let c = connect()?;
    match cmd {
        SessionCmd::Create(a) => create(&c, *a).await,
        SessionCmd::List { json } => list(&c, json).await,
        SessionCmd::Show { session, json } => show_one(&c, &session, json).await,
        SessionCmd::Logs { session, follow } => logs(&c, &session, follow).await,
        SessionCmd::Rm {
            session,
            no_wait,
            json,
        } => rm(&c, &session, no_wait, json).await,
    }
}

/// The request body of `POST /api/v1/sessions`, with only what was given.
pub fn create_body(a: &CreateArgs) -> CreateSession {
    let num = |v: &Option<String>| v.clone().map(NumText);
    CreateSession {
        name: a.name.clone(),
        image: a.image.clone(),
        kind: a.kind.clone(),
        project: a.project.clone(),
        resources: ResourcesRequest {
            cpu: Some(NumText(a.cpu.clone())),
            mem: Some(NumText(a.mem.clone())),
            gpu: num(&a.gpu),
            gpu_shares: num(&a.gpu_shares),
        },
        env: (!a.env.is_empty()).then(|| a.env.iter().cloned().collect()),
        command: a.command.clone(),
        home: a.clean_home.then(|| "clean".to_string()),
        ..CreateSession::default()
    }
}

fn sentence(v: &Session) -> String {
    let reason = v.status_reason.as_str();
    let mut out = format!("Session \"{}\" ({}) is {}", v.name, v.id, v.status);
    if !reason.is_empty() {
        out.push_str(": ");
        out.push_str(reason.trim_end_matches('.'));
    }
    out.push('.');
    out
}

async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    let created: Session = c.post(&api_path(&["sessions"]), &create_body(&a)).await?;
    if !a.wait {
        if a.json {
            table::print_json(&created);
        } else {
            println!("{}", sentence(&created));
        }
        return Ok(());
    }
    let path = api_path(&["sessions", &created.id]);
    let mut last = None;
    let done = loop {
        let v: Session = c.get(&path).await?;
        if last != Some(v.status) && !a.json {
            eprintln!("{}", sentence(&v));
            last = Some(v.status);
        }
        if v.status == SessionStatus::Running || v.status.is_final() {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if a.json {
        table::print_json(&done);
    }
    match done.status {
        SessionStatus::Running | SessionStatus::Terminated => Ok(()),
        _ => Err(Error::Other(sentence(&done))),
    }
}

async fn list_sessions(c: &Client) -> Result<Vec<Session>> {
    c.get(&api_path(&["sessions"])).await
}

/// The table `session list` prints.
pub fn sessions_table(list: &[Session]) -> Table {
    let mut t = Table::new(&[
        "NAME", "ID", "STATUS", "IMAGE", "CPU", "MEM", "AGE", "REASON",
    ]);
    for v in list {
        t.row(vec![
            v.name.clone(),
            v.id.chars().take(8).collect(),
            v.status.to_string(),
            table::truncate(&v.image, 30),
            v.resources.cpu.to_string(),
            v.resources.mem.human(),
            table::age(&v.created_at),
            table::truncate(&v.status_reason, 50),
        ]);
    }
    t
}

async fn list(c: &Client, json: bool) -> Result<()> {
    let list = list_sessions(c).await?;
    if json {
        table::print_json(&list);
    } else if list.is_empty() {
        eprintln!("No sessions.");
    } else {
        print!("{}", sessions_table(&list).render());
    }
    Ok(())
}

/// Picks the session `arg` names among `list`: an exact name (the live one owned by `me`
/// first, else the newest), else a unique id prefix.
pub fn pick<'a>(list: &'a [Session], arg: &str, me: Option<&str>) -> Result<&'a Session> {
    let named: Vec<&Session> = list.iter().filter(|v| v.name == arg).collect();
    if !named.is_empty() {
        let newest = |vs: Vec<&'a Session>| {
            vs.into_iter()
                .max_by_key(|v| table::time_key(&v.created_at))
        };
        let mine_live: Vec<&Session> = named
            .iter()
            .copied()
            .filter(|v| me.is_some_and(|m| v.owner == m) && v.status.is_live())
            .collect();
        if let Some(v) = newest(mine_live) {
            return Ok(v);
        }
        if let Some(v) = newest(named) {
            return Ok(v);
        }
    }
    let want = arg.to_ascii_lowercase();
    if want.len() >= 4 {
        let by_id: Vec<&Session> = list.iter().filter(|v| v.id.starts_with(&want)).collect();
        match by_id.len() {
            1 => return Ok(by_id[0]),
            0 => {}
            n => {
                return Err(Error::Other(format!(
                    "\"{arg}\" is the start of {n} session ids; give more of the id or the name."
                )))
            }
        }
    }
    Err(Error::Other(format!(
        "There is no session named \"{}\".",
        arg.escape_default()
    )))
}

/// The id of the session `arg` names.
pub(super) async fn resolve(c: &Client, arg: &str) -> Result<String> {
    if uuid::Uuid::parse_str(arg).is_ok() {
        return Ok(arg.to_ascii_lowercase());
    }
    let list = list_sessions(c).await?;
    let named = list.iter().filter(|v| v.name == arg).count();
    // Who I am matters only when several sessions share the name.
    let me = if named > 1 {
        let me: User = c.get(&api_path(&["me"])).await?;
        Some(me.id)
    } else {
        None
    };
    pick(&list, arg, me.as_deref()).map(|v| v.id.clone())
}

/// `session show --json`: the session with its `history` added.
#[derive(Serialize)]
struct WithHistory<'a> {
    #[serde(flatten)]
    session: &'a Session,
    history: &'a [HistoryEntry],
}

async fn show_one(c: &Client, arg: &str, json: bool) -> Result<()> {
    let id = resolve(c, arg).await?;
    let session: Session = c.get(&api_path(&["sessions", &id])).await?;
    let history: Vec<HistoryEntry> = c.get(&api_path(&["sessions", &id, "history"])).await?;
    if json {
        table::print_json(&WithHistory {
            session: &session,
            history: &history,
        });
        return Ok(());
    }
    print!("{}", details(&session, &history));
    Ok(())
}

/// `-` for an absent or empty value.
fn or_dash(v: Option<&str>) -> String {
    match v {
        Some(x) if !x.is_empty() => x.to_string(),
        _ => "-".into(),
    }
}

/// `session show` for people: the fields, then the history as a table.
pub fn details(v: &Session, history: &[HistoryEntry]) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("Name", v.name.clone()),
        ("ID", v.id.clone()),
        ("Status", v.status.to_string()),
        ("Reason", or_dash(Some(&v.status_reason))),
    ];
    if let Some(p) = v.queue_position {
        rows.push(("Queue position", p.to_string()));
    }
    rows.extend([
        ("Type", v.kind.as_str().to_string()),
        ("Image", v.image.clone()),
        ("Resources", v.resources.summary()),
        ("Home", v.home.as_str().to_string()),
        ("Owner", or_dash(Some(&v.owner_name))),
    ]);
    if let Some(p) = &v.project {
        rows.push(("Project", p.clone()));
    }
    rows.extend([
        ("Node", or_dash(v.node.as_deref())),
        ("Container", or_dash(v.container_id.as_deref())),
        ("Created", table::when(Some(&v.created_at))),
        ("Started", table::when(v.started_at.as_deref())),
        ("Terminated", table::when(v.terminated_at.as_deref())),
    ]);
    if let Some(code) = v.exit_code {
        rows.push(("Exit code", code.to_string()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (k, val) in rows {
        out.push_str(&format!("{:<width$}{val}\n", format!("{k}:")));
    }
    out.push_str("\nHistory:\n");
    let mut t = Table::new(&["AT", "STATUS", "REASON"]);
    for h in history {
        t.row(vec![
            h.at.clone(),
            h.status.to_string(),
            table::truncate(&h.reason, 100),
        ]);
    }
    out.push_str(&t.render());
    out
}

async fn logs(c: &Client, arg: &str, follow: bool) -> Result<()> {
    let id = resolve(c, arg).await?;
    if follow {
        return follow_logs(c, &id).await;
    }
    let answer = c
        .call(
            Method::GET,
            &api_path(&["sessions", &id, "logs"]),
            None::<&()>,
        )
        .await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&answer.body)
        .and_then(|_| out.flush())
        .map_err(|e| Error::Other(format!("cannot write the logs: {e}")))
}

/// Prints a session's output as the server streams it (`logs?follow=true`), until it ends.
async fn follow_logs(c: &Client, id: &str) -> Result<()> {
    use futures_util::StreamExt;
    let path = format!("{}?follow=true", api_path(&["sessions", id, "logs"]));
    let resp = c
        .request(Method::GET, &path)?
        .send()
        .await
        .map_err(|e| c.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(c.refused(resp).await);
    }
    let mut chunks = resp.bytes_stream();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| c.unreachable(&e))?;
        out.write_all(&chunk)
            .and_then(|_| out.flush())
            .map_err(|e| Error::Other(format!("cannot write the logs: {e}")))?;
    }
    Ok(())
}

async fn rm(c: &Client, arg: &str, no_wait: bool, json: bool) -> Result<()> {
    let id = resolve(c, arg).await?;
    let path = api_path(&["sessions", &id]);
    let mut v: Session = c.delete(&path).await?;
    if !no_wait {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !v.status.is_final() {
            if Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "{} It did not end within 2 minutes.",
                    sentence(&v)
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            v = c.get(&path).await?;
        }
    }
    if json {
        table::print_json(&v);
    } else {
        println!("{}", sentence(&v));
    }
    Ok(())
}

#[cfg(test)]
/// A session decoded from the fields a test cares about over a minimal one.
pub(crate) fn test_session(fields: serde_json::Value) -> Session {
    let mut v = serde_json::json!({"id": "", "name": "", "owner": "", "owner_name": "", "project": null,
        "type": "interactive", "status": "PENDING", "status_reason": "", "image": "",
        "resources": {"cpu": "1", "mem": 134217728}, "node": null, "queue_position": null,
        "container_id": null, "exit_code": null, "created_at": "",
        "started_at": null, "terminated_at": null});
    for (k, x) in fields.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: SessionCmd,
    }

    fn parse(args: &[&str]) -> std::result::Result<SessionCmd, clap::Error> {
        T::try_parse_from(std::iter::once("session").chain(args.iter().copied())).map(|t| t.cmd)
    }

    #[test]
    fn create_sends_only_what_was_given() {
        let SessionCmd::Create(a) = parse(&[
            "create",
            "--image",
            "berth/base",
            "--cpu",
            "0.5",
            "--mem",
            "512m",
            "--env",
            "A=1",
            "-e",
            "B=x=y",
            "--type",
            "batch",
            "--command",
            "echo hi",
        ])
        .unwrap() else {
            panic!("not create")
        };
        assert_eq!(
            serde_json::to_value(create_body(&a)).unwrap(),
            json!({
                "image": "berth/base",
                "resources": {"cpu": "0.5", "mem": "512m"},
                "type": "batch",
                "command": "echo hi",
                "env": {"A": "1", "B": "x=y"}
            })
        );
        let err = parse(&[
            "create", "--image", "i", "--cpu", "1", "--mem", "1g", "--env", "NOEQ",
        ])
        .err()
        .unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&["create", "--image", "i"]).is_err());
        let SessionCmd::Create(a) = parse(&[
            "create",
            "--image",
            "i",
            "--cpu",
            "1",
            "--mem",
            "1g",
            "--clean-home",
        ])
        .unwrap() else {
            panic!("not create")
        };
        assert_eq!(
            serde_json::to_value(create_body(&a)).unwrap()["home"],
            "clean"
        );
    }

    fn sess(id: &str, name: &str, owner: &str, status: &str, created: &str) -> Session {
        test_session(
            json!({"id": id, "name": name, "owner": owner, "status": status, "created_at": created}),
        )
    }

    fn id<'a>(v: &'a Session, _field: &str) -> &'a str {
        &v.id
    }

    #[test]
    fn names_pick_my_live_session_else_the_newest() {
        let list = vec![
            sess(
                "aaaa1111-0000",
                "nb",
                "me",
                "TERMINATED",
                "2025-01-01T00:00:03Z",
            ),
            sess(
                "bbbb2222-0000",
                "nb",
                "me",
                "RUNNING",
                "2025-01-01T00:00:01Z",
            ),
            sess(
                "cccc3333-0000",
                "nb",
                "other",
                "RUNNING",
                "2025-01-01T00:00:02Z",
            ),
            sess(
                "cccc4444-0000",
                "solo",
                "other",
                "ERROR",
                "2025-01-01T00:00:00Z",
            ),
        ];
        assert_eq!(
            id(pick(&list, "nb", Some("me")).unwrap(), "id"),
            "bbbb2222-0000"
        );
        assert_eq!(
            id(pick(&list, "nb", Some("x")).unwrap(), "id"),
            "aaaa1111-0000"
        );
        assert_eq!(
            id(pick(&list, "solo", None).unwrap(), "id"),
            "cccc4444-0000"
        );
        assert_eq!(
            id(pick(&list, "BBBB2", None).unwrap(), "id"),
            "bbbb2222-0000"
        );
        assert!(pick(&list, "cccc", None)
            .unwrap_err()
            .to_string()
            .contains("2 session ids"));
        assert!(pick(&list, "abc", None).is_err());
        assert_eq!(
            pick(&list, "nope", None).unwrap_err().to_string(),
            "There is no session named \"nope\"."
        );
    }

    #[test]
    fn show_json_is_the_session_with_its_history() {
        let session = sess("x", "nb", "me", "RUNNING", "2025-01-01T00:00:00Z");
        let history = [HistoryEntry {
            status: SessionStatus::Pending,
            reason: "Queued.".into(),
            at: "2025-01-01T00:00:00Z".into(),
        }];
        let v = serde_json::to_value(WithHistory {
            session: &session,
            history: &history,
        })
        .unwrap();
        assert_eq!(v["history"][0]["status"], "PENDING");
        assert_eq!(v["id"], "x");
        assert_eq!(v["type"], "interactive");
    }

    #[test]
    fn the_list_table_is_readable() {
        let list = vec![test_session(json!({
            "id": "0123456789abcdef", "name": "nb", "status": "PENDING", "image": "berth/base",
            "resources": {"cpu": "0.1", "mem": 134217728, "gpu": 0, "gpu_shares": "0"},
            "created_at": "2000-01-01T00:00:00Z",
            "status_reason": "Waiting for a node with enough free memory to become available soon enough."
        }))];
        let out = sessions_table(&list).render();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("NAME  ID        STATUS   IMAGE"),
            "{out}"
        );
        assert!(
            lines[1].contains("nb    01234567  PENDING  berth/base  0.1  128 MiB"),
            "{out}"
        );
        assert!(lines[1].ends_with('…'), "{out}");
    }

    #[test]
    fn details_show_fields_and_history() {
        let v = test_session(
            json!({"id": "x", "name": "nb", "status": "RUNNING", "status_reason": "",
            "image": "berth/base", "resources": {"cpu": "1", "mem": 1073741824},
            "created_at": "2000-01-01T00:00:00Z", "exit_code": null}),
        );
        let h: Vec<HistoryEntry> = serde_json::from_value(
            json!([{"status": "PENDING", "reason": "Queued.", "at": "2000-01-01T00:00:00Z"}]),
        )
        .unwrap();
        let out = details(&v, &h);
        assert!(out.contains("Name:       nb\n"), "{out}");
        assert!(out.contains("Resources:  1 CPU, 1 GiB\n"), "{out}");
        assert!(out.contains("Reason:     -\n"), "{out}");
        assert!(!out.contains("Exit code"), "{out}");
        assert!(
            out.contains("2000-01-01T00:00:00Z  PENDING  Queued."),
            "{out}"
        );
    }
}
