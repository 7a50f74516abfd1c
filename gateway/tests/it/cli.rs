//! The `berth` CLI against a real server: login writes a private config with a key, sessions
//! are created, listed, shown, logged and removed by name, admin and node commands work for an
//! admin and give a plain user the server's 403 sentence, policies round-trip, and every failure is
//! the server's sentence on stderr with a non-zero exit code.

use crate::common::{end_session, Client, TestApp, ADMIN_PASSWORD, IMAGE, USER_PASSWORD};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One person's CLI: its own HOME, and nothing of the outer environment's berth settings.
struct Cli {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// A finished CLI run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a failure whose stderr says `berth: SENTENCE`.
    #[track_caller]
    fn fails_saying(self, sentence: &str) -> Run {
        assert_ne!(self.code, 0, "expected a failure; stdout:\n{}", self.stdout);
        assert!(
            self.stderr.contains(&format!("berth: {sentence}")),
            "stderr should say {sentence:?}:\n{}",
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Cli {
    fn new() -> Cli {
        Cli {
            home: tempfile::Builder::new()
                .prefix("berth-cli-home-")
                .tempdir()
                .expect("temp home"),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, k: &str, v: &str) -> Cli {
        self.env.push((k.into(), v.into()));
        self
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join(".config/berth/config.toml")
    }

    /// Runs `berth ARGS` with `stdin` as its standard input (not a terminal).
    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("BERTH_URL")
            .env_remove("BERTH_KEY")
            .env_remove("BERTH_DATA_DIR")
            .env_remove("BERTH_DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start berth");
        {
            let mut input = child.stdin.take().expect("stdin");
            let _ = input.write_all(stdin.as_bytes());
        }
        Run::from(child.wait_with_output().expect("berth ran"))
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.run(args, "").ok()
    }

    /// `berth login URL --username USER` with the password on stdin.
    fn login(&self, app: &TestApp, user: &str, pw: &str) -> Run {
        self.run(
            &["login", &app.base, "--username", user],
            &format!("{pw}\n"),
        )
    }
}

/// The `detail` the server answers a raw request with, to compare with the CLI's stderr.
async fn detail_of(client: &Client, req: reqwest::RequestBuilder) -> String {
    let r = client.send(req).await;
    assert!(r.status >= 400, "expected a refusal: {}", r.text());
    let p: Value = serde_json::from_slice(&r.body).expect("problem json");
    p["detail"].as_str().expect("detail").to_string()
}

#[tokio::test]
async fn login_writes_a_private_config_holding_a_working_key() {
    let app = TestApp::spawn().await;
    let cli = Cli::new();
    // Username and password both from standard input.
    let out = cli.run(&["login", &app.base], &format!("admin\n{ADMIN_PASSWORD}\n"));
    let out = out.ok();
    assert!(out.stdout.contains("Logged in"), "{}", out.stdout);

    let path = cli.config_path();
    let meta = std::fs::metadata(&path).expect("config.toml written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "config mode");
    let dir_meta = std::fs::metadata(path.parent().unwrap()).unwrap();
    assert_eq!(
        dir_meta.permissions().mode() & 0o777,
        0o700,
        "config dir mode"
    );
    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cfg["url"].as_str(), Some(app.base.as_str()));
    let key = cfg["key"].as_str().expect("key in config").to_string();

    // The key works as a Bearer key, and is listed under the cli@HOST name.
    let anon = app.anon();
    let r = anon
        .send(anon.http.get(anon.url("/api/v1/me")).bearer_auth(&key))
        .await;
    assert_eq!(r.expect_json(200)["username"], "admin");
    let keys = app.admin().await.get("/api/v1/keys").await.expect_json(200);
    let names: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names.len(), 1, "{keys}");
    assert!(names[0].starts_with("cli@"), "{keys}");
    // No secret in the listing.
    assert!(!keys.to_string().contains(&key), "{keys}");

    // Logging in again replaces the key instead of piling them up.
    cli.login(&app, "admin", ADMIN_PASSWORD).ok();
    let keys = app.admin().await.get("/api/v1/keys").await.expect_json(200);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let r = anon
        .send(anon.http.get(anon.url("/api/v1/me")).bearer_auth(&key))
        .await;
    assert_eq!(r.status, 401, "the replaced key is revoked");
    cli.ok(&["session", "list"]);

    // XDG_CONFIG_HOME is honoured.
    let xdg = cli.home.path().join("xdg");
    let cli2 = Cli::new().with_env("XDG_CONFIG_HOME", xdg.to_str().unwrap());
    cli2.login(&app, "admin", ADMIN_PASSWORD).ok();
    assert!(xdg.join("berth/config.toml").is_file());
    assert!(!cli2.config_path().exists());
}

#[tokio::test]
async fn a_wrong_password_or_a_garbage_key_fails_with_the_servers_sentence() {
    let app = TestApp::spawn().await;
    let anon = app.anon();
    let wrong = detail_of(
        &anon,
        anon.http
            .post(anon.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "not-the-password"})),
    )
    .await;
    let cli = Cli::new();
    cli.login(&app, "admin", "not-the-password-either")
        .fails_saying(&wrong);
    assert!(
        !cli.config_path().exists(),
        "no config after a failed login"
    );

    // Without a config: a sentence that says what to do, not a crash.
    let out = cli.run(&["session", "list"], "");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("berth login"), "{}", out.stderr);

    let garbage = detail_of(
        &anon,
        anon.http
            .get(anon.url("/api/v1/sessions"))
            .bearer_auth("garbage"),
    )
    .await;
    let cli = Cli::new()
        .with_env("BERTH_URL", &app.base)
        .with_env("BERTH_KEY", "garbage");
    let out = cli.run(&["session", "list"], "").fails_saying(&garbage);
    assert_eq!(out.code, 1);

    // Usage errors exit 2.
    let out = cli.run(&["session", "create", "--image", IMAGE], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = cli.run(&["admin", "policy", "set", "alice", "nonsense"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// Polls `session show NAME --json` until the status is `want`.
fn wait_cli_status(cli: &Cli, name: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = cli.ok(&["session", "show", name, "--json"]).json();
        if v["status"] == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "session {name} did not reach {want}: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test]
async fn sessions_by_name_from_the_command_line() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let cli = Cli::new();
    cli.login(&app, "alice", USER_PASSWORD).ok();

    // A bad request: the server's sentence, exit 1, nothing created.
    cli.run(
        &[
            "session", "create", "--image", IMAGE, "--cpu", "0", "--mem", "128m",
        ],
        "",
    )
    .fails_saying("CPU must be more than zero.");
    assert!(alice.sessions().await.is_empty());

    let out = cli.ok(&[
        "session",
        "create",
        "--image",
        IMAGE,
        "--cpu",
        "0.1",
        "--mem",
        "128m",
        "--name",
        "cli-one",
        "--env",
        "GREETING=hi",
        "--wait",
    ]);
    assert!(out.stderr.contains("RUNNING"), "{}", out.stderr);
    let created = cli
        .ok(&[
            "session",
            "create",
            "--image",
            IMAGE,
            "--cpu",
            "0.1",
            "--mem",
            "128m",
            "--name",
            "cli-batch",
            "--type",
            "batch",
            "--command",
            "echo hello-from-the-cli",
            "--json",
        ])
        .json();
    assert_eq!(created["name"], "cli-batch");
    assert_eq!(created["type"], "batch");
    let batch_id = created["id"].as_str().unwrap().to_string();

    // The table for people.
    let table = cli.ok(&["session", "list"]).stdout;
    let header = table.lines().next().unwrap_or("");
    for col in [
        "NAME", "ID", "STATUS", "IMAGE", "CPU", "MEM", "AGE", "REASON",
    ] {
        assert!(header.contains(col), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("cli-one "))
        .unwrap_or_else(|| panic!("no cli-one row:\n{table}"));
    assert!(
        row.contains("RUNNING") && row.contains("0.1") && row.contains("128 MiB"),
        "{table}"
    );
    // The JSON for scripts is the server's list.
    let list = cli.ok(&["session", "list", "--json"]).json();
    let one = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "cli-one")
        .expect("cli-one in the JSON")
        .clone();
    assert_eq!(one["resources"]["mem"], 134_217_728u64);
    let one_id = one["id"].as_str().unwrap().to_string();

    // show: by name, by id prefix; with the history.
    let shown = cli.ok(&["session", "show", "cli-one"]).stdout;
    assert!(
        shown.contains(&one_id) && shown.contains("History:"),
        "{shown}"
    );
    assert!(
        shown.contains("PENDING") && shown.contains("RUNNING"),
        "{shown}"
    );
    let by_prefix = cli.ok(&["session", "show", &one_id[..8], "--json"]).json();
    assert_eq!(by_prefix["id"], one_id.as_str());
    let statuses: Vec<&str> = by_prefix["history"]
        .as_array()
        .expect("history in show --json")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(statuses, ["PENDING", "SCHEDULED", "PREPARING", "RUNNING"]);

    // logs of the batch session once it has ended.
    wait_cli_status(&cli, "cli-batch", "TERMINATED");
    let logs = cli.ok(&["session", "logs", "cli-batch"]).stdout;
    assert!(logs.contains("hello-from-the-cli"), "{logs:?}");

    // logs -f right after create: waits for the start, prints lines as they come, and
    // returns when the session's command ends.
    cli.ok(&[
        "session",
        "create",
        "--image",
        IMAGE,
        "--cpu",
        "0.1",
        "--mem",
        "128m",
        "--name",
        "cli-follow",
        "--type",
        "batch",
        "--command",
        "for i in 1 2 3; do echo follow-$i; sleep 1; done",
    ]);
    let followed = cli.ok(&["session", "logs", "-f", "cli-follow"]).stdout;
    assert_eq!(
        followed.lines().collect::<Vec<_>>(),
        ["follow-1", "follow-2", "follow-3"]
    );

    // rm by name waits for the end.
    let out = cli.ok(&["session", "rm", "cli-one"]);
    assert!(out.stdout.contains("TERMINATED"), "{}", out.stdout);
    assert_eq!(alice.session(&one_id).await["status"], "TERMINATED");
    let out = cli.run(&["session", "show", "no-such-session"], "");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("berth: There is no session named \"no-such-session\"."),
        "{}",
        out.stderr
    );
    // Another user's session is not found by name either.
    app.create_user("bob", USER_PASSWORD, "user").await;
    let bob = Cli::new();
    bob.login(&app, "bob", USER_PASSWORD).ok();
    bob.run(&["session", "logs", "cli-batch"], "")
        .fails_saying("There is no session named \"cli-batch\".");
    let status = alice.session(&batch_id).await["status"].clone();
    assert_eq!(status, "TERMINATED");
    // Nothing left running.
    for s in alice.sessions().await {
        if !matches!(
            s["status"].as_str(),
            Some("TERMINATED" | "CANCELLED" | "ERROR")
        ) {
            end_session(&alice, s["id"].as_str().unwrap()).await;
        }
    }
}

#[tokio::test]
async fn admin_commands_work_for_admins_and_refuse_plain_users() {
    let app = TestApp::spawn().await;
    let admin = Cli::new();
    admin.login(&app, "admin", ADMIN_PASSWORD).ok();

    // Users.
    let out = admin.run(
        &["admin", "user", "add", "bob", "--role", "user"],
        "bob-password-1234\n",
    );
    assert!(out.ok().stdout.contains("Created user bob"));
    admin
        .run(&["admin", "user", "add", "bob"], "bob-password-1234\n")
        .fails_saying("");
    let weak = admin.run(&["admin", "user", "add", "weak"], "short\n");
    assert_eq!(weak.code, 1);
    assert!(
        weak.stderr.contains("at least 10 characters"),
        "{}",
        weak.stderr
    );
    let table = admin.ok(&["admin", "user", "list"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("user") && l.contains("active")),
        "{table}"
    );
    let users = admin.ok(&["admin", "user", "list", "--json"]).json();
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "bob"));

    admin
        .run(&["admin", "user", "passwd", "bob"], "bob-new-password-99\n")
        .ok();
    let r = app
        .try_login(&app.anon(), "bob", "bob-new-password-99")
        .await;
    assert_eq!(r.status, 200, "new password works: {}", r.text());
    admin.ok(&["admin", "user", "disable", "bob"]);
    let table = admin.ok(&["admin", "user", "list"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("disabled")),
        "{table}"
    );
    let r = app
        .try_login(&app.anon(), "bob", "bob-new-password-99")
        .await;
    assert_ne!(r.status, 200, "a disabled user cannot log in");
    admin.ok(&["admin", "user", "enable", "bob"]);

    // Projects.
    admin.ok(&[
        "admin",
        "project",
        "add",
        "vision",
        "--description",
        "Image models.",
    ]);
    admin.ok(&["admin", "project", "member", "add", "vision", "bob"]);
    let table = admin.ok(&["admin", "project", "list"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("vision ") && l.contains("bob") && l.contains("Image models.")),
        "{table}"
    );
    let projects = admin.ok(&["admin", "project", "list", "--json"]).json();
    assert_eq!(projects[0]["members"][0]["username"], "bob", "{projects}");
    admin.ok(&["admin", "project", "member", "rm", "vision", "bob"]);
    let projects = admin.ok(&["admin", "project", "list", "--json"]).json();
    assert_eq!(projects[0]["members"], json!([]), "{projects}");
    let out = admin.run(&["admin", "project", "member", "add", "nope", "bob"], "");
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("berth: "), "{}", out.stderr);

    // A plain user gets the server's 403 sentence for every admin command.
    let user = app.login("bob", "bob-new-password-99").await;
    let forbidden = detail_of(&user, user.http.get(user.url("/api/v1/users"))).await;
    let bob = Cli::new();
    bob.login(&app, "bob", "bob-new-password-99").ok();
    for args in [
        &["admin", "user", "list"][..],
        &["admin", "user", "disable", "admin"],
        &["admin", "project", "add", "mine"],
        &["admin", "project", "member", "add", "vision", "bob"],
        &["admin", "policy", "show", "--default"],
        &["admin", "policy", "set", "bob", "max_vfolders=100"],
    ] {
        let out = bob.run(args, "");
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim_end(),
            format!("berth: {forbidden}"),
            "{args:?}"
        );
    }
    let out = bob.run(&["admin", "user", "add", "eve"], "eve-password-1234\n");
    assert_eq!(out.code, 1, "{}", out.stderr);
    // Nothing changed.
    let users = admin.ok(&["admin", "user", "list", "--json"]).json();
    assert!(!users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "eve"));
    // A user may read their own policy, and list the projects they belong to.
    bob.ok(&["admin", "policy", "show", "bob"]);
    assert_eq!(
        bob.ok(&["admin", "project", "list", "--json"]).json(),
        json!([])
    );
    admin.ok(&["admin", "project", "member", "add", "vision", "bob"]);
    let mine = bob.ok(&["admin", "project", "list", "--json"]).json();
    assert_eq!(mine[0]["name"], "vision", "{mine}");
}

/// The row of `node list` for node `name`.
fn node_row(table: &str, name: &str) -> String {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} row:\n{table}"))
        .to_string()
}

#[tokio::test]
async fn nodes_from_the_command_line() {
    let app = TestApp::spawn().await;
    let admin = Cli::new();
    admin.login(&app, "admin", ADMIN_PASSWORD).ok();

    // The built-in node, UP, in a table with its columns; the JSON is the server's list.
    let table = admin.ok(&["node", "list"]).stdout;
    let header = table.lines().next().unwrap_or("");
    for col in [
        "NAME", "STATE", "GROUP", "CPU", "MEMORY", "SESSIONS", "DOCKER", "REASON",
    ] {
        assert!(header.contains(col), "{table}");
    }
    let row = node_row(&table, "local");
    assert!(
        row.contains(" UP ") && row.contains("unix://") && row.contains('/'),
        "{table}"
    );
    let list = admin.ok(&["node", "list", "--json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], "local", "{list}");
    assert_eq!(list[0]["state"], "UP", "{list}");
    let shown = admin.ok(&["node", "show", "local"]).stdout;
    assert!(
        shown.contains("State:") && shown.contains("Built-in:"),
        "{shown}"
    );

    // An engine that does not answer: the server's sentence naming it, nothing added.
    let out = admin.run(
        &["node", "add", "n2", "--docker", "unix:///nonexistent.sock"],
        "",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("berth: ") && out.stderr.contains("/nonexistent.sock"),
        "{}",
        out.stderr
    );
    // Bad input exits 2 before anything is sent.
    let out = admin.run(
        &[
            "node",
            "add",
            "BadName",
            "--docker",
            "unix:///var/run/docker.sock",
        ],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("berth: A node name uses lowercase letters, digits and '-'"),
        "{}",
        out.stderr
    );
    let out = admin.run(
        &["node", "add", "n3", "--docker", "tcp://10.0.0.2:2376"],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--tls-ca"), "{}", out.stderr);
    let list = admin.ok(&["node", "list", "--json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // Drain and undrain.
    let out = admin.ok(&["node", "drain", "local"]);
    assert!(
        out.stdout.starts_with("Node local is DRAINING"),
        "{}",
        out.stdout
    );
    let row = node_row(&admin.ok(&["node", "list"]).stdout, "local");
    assert!(row.contains(" DRAINING "), "{row}");
    assert!(row.contains("no new sessions"), "{row}");
    let out = admin.ok(&["node", "undrain", "local"]);
    assert!(out.stdout.starts_with("Node local is UP"), "{}", out.stdout);
    let row = node_row(&admin.ok(&["node", "list"]).stdout, "local");
    assert!(row.contains(" UP "), "{row}");

    // The built-in node cannot be removed; an unknown one is not found.
    let out = admin.run(&["node", "rm", "local"], "").fails_saying(
        "Node local is the built-in local engine and cannot be removed; drain it instead.",
    );
    assert_eq!(out.code, 1);
    admin
        .run(&["node", "rm", "nope"], "")
        .fails_saying("There is no node by that name or id.");
    assert_eq!(
        admin.ok(&["node", "list", "--json"]).json()[0]["name"],
        "local"
    );

    // A plain user gets the server's 403 sentence.
    app.create_user("bob", USER_PASSWORD, "user").await;
    let user = app.login("bob", USER_PASSWORD).await;
    let forbidden = detail_of(&user, user.http.get(user.url("/api/v1/nodes"))).await;
    let bob = Cli::new();
    bob.login(&app, "bob", USER_PASSWORD).ok();
    for args in [&["node", "list"][..], &["node", "drain", "local"]] {
        let out = bob.run(args, "");
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim_end(),
            format!("berth: {forbidden}"),
            "{args:?}"
        );
    }
    assert_eq!(
        admin.ok(&["node", "list", "--json"]).json()[0]["state"],
        "UP"
    );
}

#[tokio::test]
async fn policy_set_merges_and_show_round_trips() {
    let app = TestApp::spawn().await;
    app.create_user("carol", USER_PASSWORD, "user").await;
    let admin = Cli::new();
    admin.login(&app, "admin", ADMIN_PASSWORD).ok();

    admin.ok(&[
        "admin",
        "policy",
        "set",
        "carol",
        "max_concurrent_sessions=3",
        "idle_timeout_s=600",
        "max_total_resources=cpu=4,mem=8g",
        "allowed_node_groups=a,b",
    ]);
    let p = admin
        .ok(&["admin", "policy", "show", "carol", "--json"])
        .json();
    assert_eq!(p["max_concurrent_sessions"], 3, "{p}");
    assert_eq!(p["idle_timeout_s"], 600, "{p}");
    assert_eq!(p["max_total_resources"]["cpu"], "4", "{p}");
    assert_eq!(p["max_total_resources"]["mem"], 8u64 << 30, "{p}");
    assert_eq!(p["allowed_node_groups"], json!(["a", "b"]), "{p}");

    // A second set keeps the first one's values.
    admin.ok(&[
        "admin",
        "policy",
        "set",
        "carol",
        "idle_timeout_s=unlimited",
    ]);
    let p = admin
        .ok(&["admin", "policy", "show", "carol", "--json"])
        .json();
    assert_eq!(p["max_concurrent_sessions"], 3, "{p}");
    assert_eq!(p["idle_timeout_s"], Value::Null, "{p}");
    assert_eq!(p["max_total_resources"]["cpu"], "4", "{p}");
    let mut own: Vec<&str> = p["overridden"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    own.sort();
    assert_eq!(
        own,
        [
            "allowed_node_groups",
            "idle_timeout_s",
            "max_concurrent_sessions",
            "max_total_resources"
        ]
    );
    // `default` drops a user's own value.
    admin.ok(&[
        "admin",
        "policy",
        "set",
        "carol",
        "allowed_node_groups=default",
    ]);

    // Defaults: set, shown, inherited where carol has no value of her own.
    admin.ok(&["admin", "policy", "set", "--default", "max_vfolders=7"]);
    let d = admin
        .ok(&["admin", "policy", "show", "--default", "--json"])
        .json();
    assert_eq!(d["max_vfolders"], 7, "{d}");
    let table = admin.ok(&["admin", "policy", "show", "carol"]).stdout;
    let line = |key: &str| {
        table
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{table}"))
            .to_string()
    };
    assert!(
        line("max_vfolders").contains('7') && line("max_vfolders").ends_with("default"),
        "{table}"
    );
    assert!(line("max_concurrent_sessions").ends_with("user"), "{table}");
    assert!(line("idle_timeout_s").contains("unlimited"), "{table}");
    assert!(line("allowed_node_groups").contains("unlimited"), "{table}");
    assert!(line("allowed_node_groups").ends_with("default"), "{table}");

    // Bad values: the server's sentence, nothing changed.
    let out = admin.run(
        &["admin", "policy", "set", "carol", "idle_timeout_s=-1"],
        "",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("idle_timeout_s"), "{}", out.stderr);
    admin
        .run(&["admin", "policy", "set", "carol", "colour=blue"], "")
        .fails_saying("Field \"colour\" is not a policy setting; remove it.");
    let p = admin
        .ok(&["admin", "policy", "show", "carol", "--json"])
        .json();
    assert_eq!(p["max_concurrent_sessions"], 3, "{p}");
    assert_eq!(p["idle_timeout_s"], Value::Null, "{p}");
}

#[tokio::test]
async fn local_user_add_writes_the_data_dir() {
    let app = TestApp::spawn().await;
    let mut cli = Cli::new();
    if let Some(url) = app.database_url() {
        cli = cli.with_env("BERTH_DATABASE_URL", &url);
    }
    let dir = app.data_dir();
    let out = cli.run(
        &[
            "admin",
            "user",
            "add",
            "dave",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        "dave-password-1234\n",
    );
    assert!(out.ok().stdout.contains("Created user dave"));
    let r = app
        .try_login(&app.anon(), "dave", "dave-password-1234")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `p` as an argument.
fn arg(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Names of the entries of a `vfolder ls --json` listing, in order.
fn entry_names(list: &Value) -> Vec<String> {
    list["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {list}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn vfolders_from_the_command_line() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    app.create_user("bob", USER_PASSWORD, "user").await;
    let alice = Cli::new();
    alice.login(&app, "alice", USER_PASSWORD).ok();
    let bob = Cli::new();
    bob.login(&app, "bob", USER_PASSWORD).ok();
    let work = tempfile::tempdir().expect("temp dir");

    // Create.
    let out = alice.ok(&["vfolder", "create", "data"]);
    assert!(
        out.stdout.starts_with("Created folder data ("),
        "{}",
        out.stdout
    );
    let scratch = alice.ok(&["vfolder", "create", "scratch", "--json"]).json();
    assert_eq!(scratch["name"], "scratch");
    assert_eq!(scratch["permission"], "OWNER");

    // Upload a 3 MiB file in 1 MiB requests, a directory tree, and a file into a directory.
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 123u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    let big_path = work.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let out = alice.ok(&[
        "vfolder",
        "upload",
        "data",
        arg(&big_path),
        "--chunk-size",
        "1m",
    ]);
    assert!(
        out.stdout.contains("to data/big.bin (3 MiB)"),
        "{}",
        out.stdout
    );
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::create_dir_all(tree.join("empty")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "beta\n").unwrap();
    let out = alice.ok(&["vfolder", "upload", "data", arg(&tree)]);
    assert!(
        out.stdout.contains("Uploaded 2 files") && out.stdout.contains("to data/tree."),
        "{}",
        out.stdout
    );
    let small = work.path().join("small.txt");
    std::fs::write(&small, "small\n").unwrap();
    // An existing directory as REMOTE_PATH: the file goes into it, like cp.
    alice.ok(&["vfolder", "upload", "data", arg(&small), "tree"]);
    alice.ok(&["vfolder", "upload", "data/tree/sub/", arg(&small)]);
    alice.ok(&["vfolder", "upload", "data", arg(&small), "renamed.txt"]);

    // ls: a table, directories first; JSON by FOLDER/PATH or FOLDER PATH.
    let table = alice.ok(&["vfolder", "ls", "data"]).stdout;
    let lines: Vec<&str> = table.lines().collect();
    for col in ["NAME", "KIND", "SIZE", "MODIFIED"] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(
        lines[1].starts_with("tree ") && lines[1].contains("dir"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("big.bin ") && l.contains("file") && l.contains("3 MiB")),
        "{table}"
    );
    let listing = alice.ok(&["vfolder", "ls", "data/tree", "--json"]).json();
    assert_eq!(listing["path"], "tree");
    assert_eq!(
        entry_names(&listing),
        ["empty", "sub", "a.txt", "small.txt"]
    );
    let listing = alice
        .ok(&["vfolder", "ls", "data", "tree/sub", "--json"])
        .json();
    assert_eq!(entry_names(&listing), ["b.txt", "small.txt"]);

    // list: NAME, TYPE, OWNER, PERMISSION, USAGE, ID.
    let table = alice.ok(&["vfolder", "list"]).stdout;
    let header = table.lines().next().unwrap_or("");
    for col in ["NAME", "TYPE", "OWNER", "PERMISSION", "USAGE", "ID"] {
        assert!(header.contains(col), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("data "))
        .unwrap_or_else(|| panic!("no data row:\n{table}"));
    assert!(
        row.contains(" user ") && row.contains(" alice ") && row.contains(" OWNER "),
        "{table}"
    );
    assert!(row.contains("3 MiB / "), "{table}");
    let list = alice.ok(&["vfolder", "list", "--json"]).json();
    // data, scratch, and the home berth made when the folders were first listed.
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("home ") && l.contains(" home ")),
        "{table}"
    );

    // Download a file: the same bytes, no .part left; never over a file without --force.
    let got = work.path().join("got.bin");
    let out = alice.ok(&["vfolder", "download", "data/big.bin", "-o", arg(&got)]);
    assert!(out.stdout.contains("Saved data/big.bin"), "{}", out.stdout);
    assert!(
        std::fs::read(&got).unwrap() == big,
        "downloaded bytes differ"
    );
    assert!(!work.path().join("got.bin.part").exists());
    alice
        .run(
            &["vfolder", "download", "data/big.bin", "-o", arg(&got)],
            "",
        )
        .fails_saying(&format!(
            "{} already exists; pass --force to replace it",
            got.display()
        ));
    alice.ok(&[
        "vfolder",
        "download",
        "data/tree/a.txt",
        "-o",
        arg(&got),
        "--force",
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), b"alpha\n");
    // Into a directory, under the file's own name; to standard output with -o -.
    let dl = work.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    alice.ok(&["vfolder", "download", "data/tree/sub/b.txt", "-o", arg(&dl)]);
    assert_eq!(std::fs::read(dl.join("b.txt")).unwrap(), b"beta\n");
    let out = alice.ok(&["vfolder", "download", "data/renamed.txt", "-o", "-"]);
    assert_eq!(out.stdout, "small\n");
    // The folder and a directory as zips.
    alice.ok(&["vfolder", "download", "data", "-o", arg(&dl)]);
    let zip = std::fs::read(dl.join("data.zip")).expect("data.zip");
    assert!(zip.starts_with(b"PK\x03\x04"), "not a zip");
    assert!(zip.len() > big.len(), "the zip holds the big file");
    alice.ok(&["vfolder", "download", "data/tree", "-o", arg(&dl)]);
    assert!(std::fs::read(dl.join("tree.zip"))
        .unwrap()
        .starts_with(b"PK\x03\x04"));

    // Share with bob: invite, his inbox, accept by the folder's name.
    let out = alice.ok(&["vfolder", "invite", "data", "bob", "--perm", "rw"]);
    assert!(
        out.stdout.contains("Invited bob to folder data"),
        "{}",
        out.stdout
    );
    let inbox = bob.ok(&["vfolder", "invitations"]).stdout;
    assert!(
        inbox
            .lines()
            .any(|l| l.contains(" data ") && l.contains(" alice ") && l.contains(" RW ")),
        "{inbox}"
    );
    let out = bob.ok(&["vfolder", "accept", "data"]);
    assert!(
        out.stdout
            .contains("Folder data from alice is now shared with you (read and write)."),
        "{}",
        out.stdout
    );
    let table = bob.ok(&["vfolder", "list"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("data ") && l.contains(" alice ") && l.contains(" RW ")),
        "{table}"
    );
    let members = alice.ok(&["vfolder", "members", "data"]).stdout;
    assert!(
        members
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("RW")),
        "{members}"
    );
    bob.ok(&["vfolder", "upload", "data", arg(&small), "from-bob.txt"]);
    let got_b = work.path().join("from-bob.txt");
    bob.ok(&["vfolder", "download", "data/tree/a.txt", "-o", arg(&got_b)]);
    assert_eq!(std::fs::read(&got_b).unwrap(), b"alpha\n");
    // rw may not delete.
    let out = bob.run(&["vfolder", "rm", "data", "big.bin"], "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("berth: You may not"),
        "{}",
        out.stderr
    );

    // Clone the shared folder and wait; then without waiting.
    let out = bob.ok(&["vfolder", "clone", "data", "data-copy"]);
    assert!(
        out.stdout.starts_with("Cloned folder data into data-copy"),
        "{}",
        out.stdout
    );
    let copy = work.path().join("copy.bin");
    bob.ok(&["vfolder", "download", "data-copy/big.bin", "-o", arg(&copy)]);
    assert!(std::fs::read(&copy).unwrap() == big, "the clone differs");
    let job = bob
        .ok(&[
            "vfolder",
            "clone",
            "data",
            "data-copy2",
            "--no-wait",
            "--json",
        ])
        .json();
    assert_eq!(job["kind"], "clone", "{job}");

    // Leave: bob no longer sees it; his clone stays his.
    let out = bob.ok(&["vfolder", "leave", "data"]);
    assert!(
        out.stdout.contains("You left folder data"),
        "{}",
        out.stdout
    );
    bob.run(&["vfolder", "ls", "data"], "")
        .fails_saying("There is no folder named \"data\";");
    bob.ok(&["vfolder", "ls", "data-copy"]);

    // Files: mkdir, mv, rm.
    alice.ok(&["vfolder", "mkdir", "data/new/deeper"]);
    alice.ok(&["vfolder", "mv", "data", "tree/a.txt", "new/a.txt"]);
    let out = alice.ok(&["vfolder", "rm", "data", "tree/sub", "from-bob.txt"]);
    assert!(out.stdout.contains("Deleted 2 entries"), "{}", out.stdout);
    let names = entry_names(&alice.ok(&["vfolder", "ls", "data/new", "--json"]).json());
    assert_eq!(names, ["deeper", "a.txt"]);

    // The trash: delete, list, restore, delete, purge.
    alice.ok(&["vfolder", "delete", "scratch"]);
    let trash = alice.ok(&["vfolder", "list", "--trash"]).stdout;
    assert!(trash.lines().any(|l| l.starts_with("scratch ")), "{trash}");
    alice.ok(&["vfolder", "restore", "scratch"]);
    alice.ok(&["vfolder", "rm-folder", "scratch"]);
    alice.ok(&["vfolder", "purge", "scratch"]);
    let out = alice.ok(&["vfolder", "list", "--trash"]);
    assert!(
        out.stderr.contains("Your trash is empty."),
        "{}",
        out.stderr
    );

    // Bad input: a sentence and a non-zero exit; usage errors exit 2 before anything is sent.
    let out = alice
        .run(&["vfolder", "upload", "nope", arg(&small)], "")
        .fails_saying(
        "There is no folder named \"nope\"; `berth vfolder list` shows the folders you can use.",
    );
    assert_eq!(out.code, 1);
    let out = alice
        .run(&["vfolder", "upload", "data/../x", arg(&small)], "")
        .fails_saying("\"../x\" leaves the folder; \"..\" is not allowed in a path.");
    assert_eq!(out.code, 2);
    let out = alice.run(&["vfolder", "ls", "data", "/etc"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = alice.run(&["vfolder", "create", "no spaces"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("letters, digits"), "{}", out.stderr);
    let out = alice.run(&["vfolder", "invite", "data", "bob", "--perm", "owner"], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = alice.run(
        &[
            "vfolder",
            "upload",
            "data",
            arg(&work.path().join("missing")),
        ],
        "",
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("berth: cannot read"),
        "{}",
        out.stderr
    );
    // Uploads never overwrite: the server's sentence.
    alice
        .run(&["vfolder", "upload", "data", arg(&big_path)], "")
        .fails_saying("A file already exists at \"big.bin\"; uploads never overwrite.");
    let out = alice.run(&["vfolder", "download", "data/missing.txt", "-o", "-"], "");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("There is nothing at"), "{}", out.stderr);
}
