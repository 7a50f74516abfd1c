//! `berth session create|list|show|logs|rm`. A session is named on the command line by its
//! id, its name, or the start of its id (as the list shows it).

use super::client::{api_path, Client};
use super::table::{self, s, show, Table};
use super::{connect, Error, Result};
use serde_json::{Map, Value};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
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

pub async fn run(cmd: SessionCmd) -> Result<()> {
    let c = connect()?;
    match cmd {
        SessionCmd::Create(a) => create(&c, *a).await,
        SessionCmd::List { json } => list(&c, json).await,
        SessionCmd::Show { session, json } => show_one(&c, &session, json).await,
        SessionCmd::Logs { session } => logs(&c, &session).await,
        SessionCmd::Rm {
            session,
            no_wait,
            json,
        } => rm(&c, &session, no_wait, json).await,
    }
}

/// The request body of `POST /api/v1/sessions`, with only what was given.
pub fn create_body(a: &CreateArgs) -> Value {
    let mut resources = Map::new();
    resources.insert("cpu".into(), a.cpu.clone().into());
    resources.insert("mem".into(), a.mem.clone().into());
    if let Some(g) = &a.gpu {
        resources.insert("gpu".into(), g.clone().into());
    }
    if let Some(g) = &a.gpu_shares {
        resources.insert("gpu_shares".into(), g.clone().into());
    }
    let mut body = Map::new();
    body.insert("image".into(), a.image.clone().into());
    body.insert("resources".into(), Value::Object(resources));
    for (k, v) in [
        ("name", &a.name),
        ("project", &a.project),
        ("type", &a.kind),
        ("command", &a.command),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), v.clone().into());
        }
    }
    if !a.env.is_empty() {
        let env: Map<String, Value> = a
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        body.insert("env".into(), Value::Object(env));
    }
    Value::Object(body)
}

fn is_final(status: &str) -> bool {
    matches!(status, "TERMINATED" | "CANCELLED" | "ERROR")
}

fn sentence(v: &Value) -> String {
    let reason = s(v, "status_reason");
    let mut out = format!(
        "Session \"{}\" ({}) is {}",
        s(v, "name"),
        s(v, "id"),
        s(v, "status")
    );
    if !reason.is_empty() {
        out.push_str(": ");
        out.push_str(reason.trim_end_matches('.'));
    }
    out.push('.');
    out
}

async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    let answer = c.post(&api_path(&["sessions"]), &create_body(&a)).await?;
    let created = answer.value()?;
    if !a.wait {
        if a.json {
            println!("{}", answer.pretty()?);
        } else {
            println!("{}", sentence(&created));
        }
        return Ok(());
    }
    let id = s(&created, "id").to_string();
    let path = api_path(&["sessions", &id]);
    let mut last = String::new();
    let done = loop {
        let now = c.get(&path).await?;
        let v = now.value()?;
        let status = s(&v, "status").to_string();
        if status != last && !a.json {
            eprintln!("{}", sentence(&v));
            last = status.clone();
        }
        if status == "RUNNING" || is_final(&status) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let v = done.value()?;
    if a.json {
        println!("{}", done.pretty()?);
    }
    match s(&v, "status") {
        "RUNNING" | "TERMINATED" => Ok(()),
        _ => Err(Error::Other(sentence(&v))),
    }
}

async fn list_sessions(c: &Client) -> Result<(super::client::Answer, Vec<Value>)> {
    let answer = c.get(&api_path(&["sessions"])).await?;
    let list = match answer.value()? {
        Value::Array(v) => v,
        other => {
            return Err(Error::Other(format!(
                "the session list is not a list: {}",
                table::truncate(&other.to_string(), 200)
            )))
        }
    };
    Ok((answer, list))
}

/// The table `session list` prints.
pub fn sessions_table(list: &[Value]) -> Table {
    let mut t = Table::new(&[
        "NAME", "ID", "STATUS", "IMAGE", "CPU", "MEM", "AGE", "REASON",
    ]);
    for v in list {
        let r = &v["resources"];
        t.row(vec![
            s(v, "name").to_string(),
            s(v, "id").chars().take(8).collect(),
            s(v, "status").to_string(),
            table::truncate(s(v, "image"), 30),
            show(r, "cpu"),
            table::bytes(&r["mem"]),
            table::age(s(v, "created_at")),
            table::truncate(s(v, "status_reason"), 50),
        ]);
    }
    t
}

async fn list(c: &Client, json: bool) -> Result<()> {
    let (answer, list) = list_sessions(c).await?;
    if json {
        println!("{}", answer.pretty()?);
    } else if list.is_empty() {
        eprintln!("No sessions.");
    } else {
        print!("{}", sessions_table(&list).render());
    }
    Ok(())
}

/// Picks the session `arg` names among `list`: an exact name (the live one owned by `me`
/// first, else the newest), else a unique id prefix.
pub fn pick<'a>(list: &'a [Value], arg: &str, me: Option<&str>) -> Result<&'a Value> {
    let named: Vec<&Value> = list.iter().filter(|v| s(v, "name") == arg).collect();
    if !named.is_empty() {
        let newest = |vs: Vec<&'a Value>| {
            vs.into_iter()
                .max_by_key(|v| table::time_key(s(v, "created_at")))
        };
        let mine_live: Vec<&Value> = named
            .iter()
            .copied()
            .filter(|v| me.is_some_and(|m| s(v, "owner") == m) && !is_final(s(v, "status")))
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
        let by_id: Vec<&Value> = list
            .iter()
            .filter(|v| s(v, "id").starts_with(&want))
            .collect();
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
    let (_, list) = list_sessions(c).await?;
    let named = list.iter().filter(|v| s(v, "name") == arg).count();
    // Who I am matters only when several sessions share the name.
    let me = if named > 1 {
        let v = c.get(&api_path(&["me"])).await?.value()?;
        Some(s(&v, "id").to_string())
    } else {
        None
    };
    pick(&list, arg, me.as_deref()).map(|v| s(v, "id").to_string())
}

/// The session JSON with `"history": …` added, both as the server wrote them.
fn with_history(session_raw: &str, history_raw: &str) -> String {
    let t = session_raw.trim_end();
    match t.strip_suffix('}') {
        Some(head) if head.trim_end().ends_with('{') => {
            format!("{head}\"history\":{history_raw}}}")
        }
        Some(head) => format!("{head},\"history\":{history_raw}}}"),
        None => t.to_string(),
    }
}

async fn show_one(c: &Client, arg: &str, json: bool) -> Result<()> {
    let id = resolve(c, arg).await?;
    let session = c.get(&api_path(&["sessions", &id])).await?;
    let history = c.get(&api_path(&["sessions", &id, "history"])).await?;
    let v = session.value()?;
    let h = history.value()?;
    if json {
        let raw = with_history(&session.text(), &history.text());
        println!("{}", table::pretty_json(&raw));
        return Ok(());
    }
    print!("{}", details(&v, &h));
    Ok(())
}

/// `session show` for people: the fields, then the history as a table.
pub fn details(v: &Value, history: &Value) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("Name", s(v, "name").to_string()),
        ("ID", s(v, "id").to_string()),
        ("Status", s(v, "status").to_string()),
        ("Reason", show(v, "status_reason")),
    ];
    if let Some(p) = v.get("queue_position").and_then(Value::as_u64) {
        rows.push(("Queue position", p.to_string()));
    }
    rows.extend([
        ("Type", show(v, "type")),
        ("Image", s(v, "image").to_string()),
        ("Resources", table::resources(&v["resources"])),
        ("Owner", show(v, "owner_name")),
    ]);
    if let Some(p) = v.get("project").filter(|p| !p.is_null()) {
        rows.push((
            "Project",
            p.as_str().map(str::to_string).unwrap_or(p.to_string()),
        ));
    }
    rows.extend([
        ("Node", show(v, "node")),
        ("Container", show(v, "container_id")),
        ("Created", table::when(v, "created_at")),
        ("Started", table::when(v, "started_at")),
        ("Terminated", table::when(v, "terminated_at")),
    ]);
    if let Some(code) = v.get("exit_code").filter(|c| !c.is_null()) {
        rows.push(("Exit code", code.to_string()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (k, val) in rows {
        out.push_str(&format!("{:<width$}{val}\n", format!("{k}:")));
    }
    if let Some(entries) = history.as_array() {
        out.push_str("\nHistory:\n");
        let mut t = Table::new(&["AT", "STATUS", "REASON"]);
        for h in entries {
            t.row(vec![
                s(h, "at").to_string(),
                s(h, "status").to_string(),
                table::truncate(s(h, "reason"), 100),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

async fn logs(c: &Client, arg: &str) -> Result<()> {
    let id = resolve(c, arg).await?;
    let answer = c.get(&api_path(&["sessions", &id, "logs"])).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(&answer.body)
        .and_then(|_| out.flush())
        .map_err(|e| Error::Other(format!("cannot write the logs: {e}")))
}

async fn rm(c: &Client, arg: &str, no_wait: bool, json: bool) -> Result<()> {
    let id = resolve(c, arg).await?;
    let path = api_path(&["sessions", &id]);
    let mut answer = c.delete(&path).await?;
    if !no_wait {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v = answer.value()?;
            if is_final(s(&v, "status")) {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "{} It did not end within 2 minutes.",
                    sentence(&v)
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            answer = c.get(&path).await?;
        }
    }
    if json {
        println!("{}", answer.pretty()?);
    } else {
        println!("{}", sentence(&answer.value()?));
    }
    Ok(())
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
            create_body(&a),
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
    }

    fn sess(id: &str, name: &str, owner: &str, status: &str, created: &str) -> Value {
        json!({"id": id, "name": name, "owner": owner, "status": status, "created_at": created})
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
            s(pick(&list, "nb", Some("me")).unwrap(), "id"),
            "bbbb2222-0000"
        );
        assert_eq!(
            s(pick(&list, "nb", Some("x")).unwrap(), "id"),
            "aaaa1111-0000"
        );
        assert_eq!(s(pick(&list, "solo", None).unwrap(), "id"), "cccc4444-0000");
        assert_eq!(
            s(pick(&list, "BBBB2", None).unwrap(), "id"),
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
    fn history_is_added_to_the_raw_session() {
        let raw = with_history(r#"{"id":"x","n":1}"#, r#"[{"status":"PENDING"}]"#);
        let v: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["history"][0]["status"], "PENDING");
        assert_eq!(v["n"], 1);
        let v: Value = serde_json::from_str(&with_history("{ }", "[]")).unwrap();
        assert_eq!(v, json!({"history": []}));
    }

    #[test]
    fn the_list_table_is_readable() {
        let list = vec![json!({
            "id": "0123456789abcdef", "name": "nb", "status": "PENDING", "image": "berth/base",
            "resources": {"cpu": "0.1", "mem": 134217728, "gpu": 0, "gpu_shares": "0"},
            "created_at": "2000-01-01T00:00:00Z",
            "status_reason": "Waiting for a node with enough free memory to become available soon enough."
        })];
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
        let v = json!({"id": "x", "name": "nb", "status": "RUNNING", "status_reason": "",
            "image": "berth/base", "resources": {"cpu": "1", "mem": 1073741824},
            "created_at": "2000-01-01T00:00:00Z", "exit_code": null});
        let h = json!([{"status": "PENDING", "reason": "Queued.", "at": "2000-01-01T00:00:00Z"}]);
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
