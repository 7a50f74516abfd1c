//! `berth node list|show|add|drain|undrain|rm`: the Docker engines sessions run on (admins).
//! A node is named by its name or its id. Names, groups, endpoints and TLS files are checked
//! here with the server's own rules (`api::nodes`) before anything is sent.

use super::client::{api_path, Client};
use super::table::{self, Table};
use super::{connect, Error, Result};
use api::nodes::{
    parse_endpoint, validate_node_name, CreateNode, Endpoint, Node, NodeState, NodeTls, UpdateNode,
};
use reqwest::Method;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Subcommand)]
/// `berth node …`.
pub enum NodeCmd {
    /// List nodes: state, group, what sessions hold of each one's capacity
    #[command(visible_alias = "ls")]
    List {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one node
    Show {
        /// Node name or id
        node: String,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Add a Docker engine as a node; the server connects to it before keeping it
    Add(AddArgs),
    /// Drain a node: its running sessions go on, no new ones are placed on it
    Drain {
        /// Node name or id
        node: String,
        /// Print the server's JSON of the node
        #[arg(long)]
        json: bool,
    },
    /// Undrain a node: new sessions may be placed on it again
    Undrain {
        /// Node name or id
        node: String,
        /// Print the server's JSON of the node
        #[arg(long)]
        json: bool,
    },
    /// Remove a node that runs no sessions (drain it first and let them end)
    #[command(visible_alias = "remove")]
    Rm {
        /// Node name or id
        node: String,
    },
}

/// `berth node add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Node name: lowercase letters, digits and '-', starting with a letter
    pub name: String,
    /// The engine's endpoint: unix:///var/run/docker.sock or tcp://HOST:2376 (with TLS)
    #[arg(long, value_name = "URL")]
    pub docker: String,
    /// Node group, for policies that limit users to some groups
    #[arg(long)]
    pub group: Option<String>,
    /// Where the node sees berth's storage directory (e.g. the NFS mount of it), so sessions
    /// with folders may run there
    #[arg(long, value_name = "PATH")]
    pub storage: Option<String>,
    /// CA certificate (PEM file) the engine's certificate is checked against
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM file) berth presents to the engine
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM file)
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The public URL of the `berth wsproxy` that runs beside this node: its sessions'
    /// terminals, apps and tunnels go there. Its key is shown once.
    #[arg(long, value_name = "URL")]
    pub proxy_url: Option<String>,
    /// Print the server's JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs a `node` command.
pub async fn run(cmd: NodeCmd) -> Result<()> {
    // Bad input is refused before a server or a key is needed.
    match &cmd {
        NodeCmd::Show { node, .. }
        | NodeCmd::Drain { node, .. }
        | NodeCmd::Undrain { node, .. }
        | NodeCmd::Rm { node } => check_node_arg(node)?,
        NodeCmd::Add(a) => {
            check_add(a)?;
        }
        NodeCmd::List { .. } => {}
    }
    let c = connect()?;
    match cmd {
        NodeCmd::List { json } => list(&c, json).await,
        NodeCmd::Show { node, json } => show_one(&c, &node, json).await,
        NodeCmd::Add(a) => add(&c, a).await,
        NodeCmd::Drain { node, json } => set_state(&c, &node, "DRAINING", json).await,
        NodeCmd::Undrain { node, json } => set_state(&c, &node, "UP", json).await,
        NodeCmd::Rm { node } => rm(&c, &node).await,
    }
}

/// A node argument is an id (a UUID) or something that can be a node's name.
pub fn check_node_arg(arg: &str) -> Result<()> {
    if uuid::Uuid::parse_str(arg).is_ok() {
        return Ok(());
    }
    validate_node_name("node", arg).map_err(|m| {
        Error::Usage(format!(
            "\"{}\" cannot name a node: {m} `berth node list` shows the nodes.",
            arg.escape_default()
        ))
    })
}

/// The checks of `node add` that need no files: name, group, endpoint, TLS flags together.
pub fn check_add(a: &AddArgs) -> Result<()> {
    validate_node_name("node", &a.name).map_err(Error::Usage)?;
    if let Some(u) = &a.proxy_url {
        api::nodes::validate_proxy_url(u).map_err(|m| Error::Usage(format!("--proxy-url: {m}")))?;
    }
    if let Some(g) = &a.group {
        validate_node_name("group", g).map_err(Error::Usage)?;
    }
    if let Some(p) = &a.storage {
        api::nodes::validate_storage_path(p)
            .map_err(|m| Error::Usage(format!("--storage: {m}")))?;
    }
    let given = [&a.tls_ca, &a.tls_cert, &a.tls_key]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if given != 0 && given != 3 {
        return Err(Error::Usage(
            "Give all three of --tls-ca, --tls-cert and --tls-key, or none of them.".into(),
        ));
    }
    // The endpoint's own form first; then whether it has the TLS a TCP engine needs.
    match parse_endpoint(&a.docker, true).map_err(Error::Usage)? {
        Endpoint::Tcp(_) if given == 0 => Err(Error::Usage(
            "A TCP engine must be reached with TLS: give --tls-ca, --tls-cert and --tls-key \
             (PEM files)."
                .into(),
        )),
        Endpoint::Unix(_) if given != 0 => Err(Error::Usage(
            "A unix socket endpoint takes no TLS files; leave out --tls-ca, --tls-cert and \
             --tls-key."
                .into(),
        )),
        _ => Ok(()),
    }
}

/// The most a PEM field may hold (the server's limit, `api::nodes::CreateNode::validate`).
const PEM_MAX: u64 = 64 * 1024;

/// A PEM file's text: at most one byte more than the server accepts is read, so that a file
/// too large is refused by the same check as on the server.
fn read_pem(flag: &str, path: &Path) -> Result<String> {
    use std::io::Read;
    let cannot =
        |e: std::io::Error| Error::Other(format!("cannot read {} (--{flag}): {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PEM_MAX + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    String::from_utf8(bytes).map_err(|_| {
        Error::Usage(format!(
            "{} (--{flag}) is not PEM text: it is not UTF-8.",
            path.display()
        ))
    })
}

/// The request body of `POST /api/v1/nodes`, its files read and checked.
pub fn create_request(a: &AddArgs) -> Result<CreateNode> {
    check_add(a)?;
    let tls = match (&a.tls_ca, &a.tls_cert, &a.tls_key) {
        (Some(ca), Some(cert), Some(key)) => Some(NodeTls {
            ca: read_pem("tls-ca", ca)?,
            cert: read_pem("tls-cert", cert)?,
            key: read_pem("tls-key", key)?,
        }),
        _ => None,
    };
    let req = CreateNode {
        name: a.name.clone(),
        docker: a.docker.trim().to_string(),
        tls,
        group: a.group.clone(),
        proxy_url: a.proxy_url.clone(),
        storage: a.storage.clone(),
    };
    req.validate().map_err(|errs| {
        let file = |field: &str| match field {
            "tls.ca" => a.tls_ca.as_deref(),
            "tls.cert" => a.tls_cert.as_deref(),
            "tls.key" => a.tls_key.as_deref(),
            _ => None,
        };
        Error::Usage(
            errs.iter()
                .map(|e| match file(&e.field) {
                    Some(p) => format!(
                        "{} (--{}): {}",
                        p.display(),
                        e.field.replace('.', "-"),
                        e.message
                    ),
                    None => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    Ok(req)
}

/// `-` for an absent or empty value.
fn or_dash(v: Option<&str>) -> String {
    match v {
        Some(x) if !x.is_empty() => x.to_string(),
        _ => "-".into(),
    }
}

/// Why a node is not simply `UP`, in a few words; empty when it is.
pub fn reason(v: &Node) -> String {
    match v.state {
        NodeState::Down => v.state_reason.clone(),
        NodeState::Draining => match v.sessions {
            0 => "Drained: no new sessions; none running.".to_string(),
            n => format!("Drained: no new sessions; {n} still running."),
        },
        NodeState::Up => String::new(),
    }
}

/// The table `node list` prints.
pub fn nodes_table(list: &[Node]) -> Table {
    let mut t = Table::new(&[
        "NAME", "STATE", "GROUP", "CPU", "MEMORY", "SESSIONS", "DOCKER", "REASON",
    ]);
    for v in list {
        t.row(vec![
            v.name.clone(),
            v.state.as_str().to_string(),
            or_dash(v.group.as_deref()),
            format!("{}/{}", v.allocated.cpu, v.capacity.cpu),
            format!("{}/{}", v.allocated.mem.human(), v.capacity.mem.human()),
            v.sessions.to_string(),
            v.docker.clone(),
            table::truncate(&reason(v), 80),
        ]);
    }
    t
}

/// `node show` for people.
pub fn details(v: &Node) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("Name", v.name.clone()),
        ("ID", v.id.clone()),
        ("State", v.state.as_str().to_string()),
        ("Reason", or_dash(Some(&v.state_reason))),
        ("Group", or_dash(v.group.as_deref())),
        ("Docker", v.docker.clone()),
        ("Proxy", or_dash(v.proxy_url.as_deref())),
        (
            "Folders",
            match (&v.storage, v.folders) {
                (Some(p), _) => format!("yes: sees the folder storage at {p}"),
                (None, true) => "yes: on berth's host".into(),
                (None, false) => "no: sessions with folders are not placed here".into(),
            },
        ),
        ("Capacity", v.capacity.summary()),
        ("Allocated", v.allocated.summary()),
        ("Sessions", v.sessions.to_string()),
    ];
    if v.local {
        rows.push((
            "Built-in",
            "yes: the local engine (cannot be removed)".into(),
        ));
    }
    rows.extend([
        ("Created", table::when(Some(&v.created_at))),
        ("Checked", table::when(v.checked_at.as_deref())),
    ]);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (k, val) in rows {
        out.push_str(&format!("{:<width$}{val}\n", format!("{k}:")));
    }
    out
}

/// What `drain`/`undrain` print: the node's state now, in a sentence; `wanted` is the
/// state asked for (it shows once a `DOWN` engine answers again).
pub fn state_sentence(v: &Node, wanted: &str) -> String {
    let name = &v.name;
    match v.state {
        NodeState::Up => format!("Node {name} is UP: new sessions may be placed on it."),
        NodeState::Draining => {
            let tail = match v.sessions {
                0 => "none run there now".to_string(),
                1 => "its 1 session goes on".to_string(),
                n => format!("its {n} sessions go on"),
            };
            format!("Node {name} is DRAINING: no new sessions are placed on it; {tail}.")
        }
        NodeState::Down => format!(
            "Node {name} is DOWN: {} It will be {wanted} when its engine answers again.",
            v.state_reason.trim()
        ),
    }
}

async fn list(c: &Client, json: bool) -> Result<()> {
    let list: Vec<Node> = c.get(&api_path(&["nodes"])).await?;
    if json {
        table::print_json(&list);
    } else if list.is_empty() {
        eprintln!("No nodes.");
    } else {
        print!("{}", nodes_table(&list).render());
    }
    Ok(())
}

async fn show_one(c: &Client, node: &str, json: bool) -> Result<()> {
    let v: Node = c.get(&api_path(&["nodes", node])).await?;
    if json {
        table::print_json(&v);
    } else {
        print!("{}", details(&v));
    }
    Ok(())
}

async fn add(c: &Client, a: AddArgs) -> Result<()> {
    let req = create_request(&a)?;
    let v: Node = c.post(&api_path(&["nodes"]), &req).await?;
    if a.json {
        table::print_json(&v);
        return Ok(());
    }
    let group = match &v.group {
        Some(g) => format!(", group {g}"),
        None => String::new(),
    };
    println!(
        "Added node {} ({}{group}): {} for sessions; it is {}.",
        v.name,
        v.docker,
        v.capacity.summary(),
        v.state.as_str()
    );
    if let (Some(url), Some(key)) = (&v.proxy_url, &v.proxy_key) {
        println!(
            "Its proxy is at {url}. The proxy's key, shown this once:\n\n    {key}\n\n\
             Put it in a file (mode 0600) beside the node and run there:\n    \
             berth wsproxy --node {} --docker unix:///var/run/docker.sock --key-file FILE \
             --public-url {url}",
            v.name
        );
    }
    Ok(())
}

async fn set_state(c: &Client, node: &str, state: &str, json: bool) -> Result<()> {
    let change = UpdateNode {
        state: state.to_string(),
    };
    let v: Node = c.patch(&api_path(&["nodes", node]), &change).await?;
    if json {
        table::print_json(&v);
    } else {
        println!("{}", state_sentence(&v, state));
    }
    Ok(())
}

async fn rm(c: &Client, node: &str) -> Result<()> {
    c.call(Method::DELETE, &api_path(&["nodes", node]), None::<&()>)
        .await?;
    println!("Removed node {node}.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add_args(name: &str, docker: &str) -> AddArgs {
        AddArgs {
            name: name.into(),
            docker: docker.into(),
            group: None,
            storage: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            proxy_url: None,
            json: false,
        }
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert!(check_add(&add_args("n2", "unix:///var/run/docker.sock")).is_ok());
        for a in [
            add_args("BadName", "unix:///var/run/docker.sock"),
            add_args("n2", "http://x"),
            add_args("n2", "tcp://10.0.0.2:2376"),
            AddArgs {
                group: Some("Bad Group".into()),
                ..add_args("n2", "unix:///x.sock")
            },
            AddArgs {
                tls_ca: Some("ca.pem".into()),
                ..add_args("n2", "tcp://10.0.0.2:2376")
            },
            AddArgs {
                proxy_url: Some("10.0.0.2:8081".into()),
                ..add_args("n2", "unix:///x.sock")
            },
        ] {
            let e = check_add(&a).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a:?}: {e}");
        }
        let e = check_add(&add_args("n2", "tcp://10.0.0.2:2376")).unwrap_err();
        assert!(e.to_string().contains("--tls-ca"), "{e}");
        assert!(check_node_arg("local").is_ok());
        assert!(check_node_arg("6f1c2a4e-2b7e-4c1a-9a53-0a1b2c3d4e5f").is_ok());
        assert_eq!(check_node_arg("Local").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn tls_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(f), pem).unwrap();
        }
        std::fs::write(dir.path().join("junk.txt"), "not a pem").unwrap();
        let mut a = AddArgs {
            tls_ca: Some(dir.path().join("ca.pem")),
            tls_cert: Some(dir.path().join("cert.pem")),
            tls_key: Some(dir.path().join("key.pem")),
            group: Some("gpu".into()),
            ..add_args("n2", "tcp://10.0.0.2:2376")
        };
        let req = create_request(&a).unwrap();
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["tls"]["ca"], pem);
        assert_eq!(body["tls"]["key"], pem);
        assert_eq!(body["group"], "gpu");
        a.tls_key = Some(dir.path().join("junk.txt"));
        let e = create_request(&a).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("junk.txt (--tls-key): Paste the PEM text"),
            "{e}"
        );
        let big = format!("-----BEGIN KEY-----\n{}", "A".repeat(PEM_MAX as usize));
        std::fs::write(dir.path().join("big.pem"), big).unwrap();
        a.tls_key = Some(dir.path().join("big.pem"));
        let e = create_request(&a).unwrap_err();
        assert!(e.to_string().contains("at most 64 KiB"), "{e}");
        a.tls_key = Some(dir.path().join("missing.pem"));
        let e = create_request(&a).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        // Without TLS, no `tls` key at all.
        let body = serde_json::to_value(create_request(&add_args("n2", "unix:///x.sock")).unwrap())
            .unwrap();
        assert_eq!(body, json!({"name": "n2", "docker": "unix:///x.sock"}));
    }

    #[test]
    fn node_tables_show_allocation_of_capacity() {
        let list: Vec<Node> = serde_json::from_value(json!([
            {"id": "1", "name": "local", "docker": "unix:///var/run/docker.sock",
                "group": null, "state": "UP", "state_reason": "The Docker engine answers.",
                "capacity": {"cpu": "8", "mem": 8589934592u64, "gpu": 0, "gpu_shares": "0"},
                "allocated": {"cpu": "0.5", "mem": 536870912, "gpu": 0, "gpu_shares": "0"},
                "sessions": 2, "local": true, "created_at": "2025-01-01T00:00:00Z",
                "checked_at": null},
            {"id": "2", "name": "n2", "docker": "unix:///n2.sock", "group": "gpu",
                "state": "DOWN", "state_reason": "The Docker engine at unix:///n2.sock did not answer.",
                "capacity": {"cpu": "4", "mem": 4294967296u64, "gpu": 0, "gpu_shares": "0"},
                "allocated": {"cpu": "0", "mem": 0, "gpu": 0, "gpu_shares": "0"},
                "sessions": 0, "local": false, "created_at": "2025-01-01T00:00:00Z",
                "checked_at": null},
        ]))
        .unwrap();
        let out = nodes_table(&list).render();
        let lines: Vec<&str> = out.lines().collect();
        for col in [
            "NAME", "STATE", "GROUP", "CPU", "MEMORY", "SESSIONS", "DOCKER", "REASON",
        ] {
            assert!(lines[0].contains(col), "{out}");
        }
        assert!(
            lines[1].starts_with("local  UP ")
                && lines[1].contains(" 0.5/8 ")
                && lines[1].contains(" 512 MiB/8 GiB ")
                && lines[1].ends_with("unix:///var/run/docker.sock"),
            "{out}"
        );
        assert!(
            lines[2].contains(" gpu ")
                && lines[2].contains(" 0 B/4 GiB ")
                && lines[2].ends_with("did not answer."),
            "{out}"
        );
        let mut drained = list[0].clone();
        drained.state = NodeState::Draining;
        let mut idle = drained.clone();
        idle.sessions = 0;
        assert_eq!(reason(&idle), "Drained: no new sessions; none running.");
        assert_eq!(
            state_sentence(&idle, "DRAINING"),
            "Node local is DRAINING: no new sessions are placed on it; none run there now."
        );
        assert_eq!(
            reason(&drained),
            "Drained: no new sessions; 2 still running."
        );
        assert_eq!(
            state_sentence(&drained, "DRAINING"),
            "Node local is DRAINING: no new sessions are placed on it; its 2 sessions go on."
        );
        assert_eq!(
            state_sentence(&list[1], "UP"),
            "Node n2 is DOWN: The Docker engine at unix:///n2.sock did not answer. It will be UP \
             when its engine answers again."
        );
        let shown = details(&list[0]);
        assert!(shown.contains("Capacity:  8 CPU, 8 GiB"), "{shown}");
        assert!(shown.contains("Built-in:"), "{shown}");
    }

    #[test]
    fn reported_resources_read_in_words_even_when_zero() {
        let a = |v: serde_json::Value| {
            serde_json::from_value::<api::Resources>(v)
                .unwrap()
                .summary()
        };
        assert_eq!(
            a(json!({"cpu": "0.1", "mem": 134217728, "gpu": 0, "gpu_shares": "0"})),
            "0.1 CPU, 128 MiB"
        );
        assert_eq!(
            a(json!({"cpu": "2", "mem": 1610612736u64, "gpu": 1, "gpu_shares": "0"})),
            "2 CPU, 1.5 GiB, 1 GPU"
        );
        assert_eq!(
            a(json!({"cpu": "0", "mem": 0, "gpu": 0, "gpu_shares": "0.25"})),
            "0 CPU, 0 B, 0.25 GPU shares"
        );
    }
}
