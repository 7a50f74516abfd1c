//! Gateway replicas on one PostgreSQL database (run in `scripts/test.sh`'s PostgreSQL pass;
//! on SQLite, which serves one process per data dir, they only check that a second process
//! is refused): a session created through one replica is seen live in the other's event
//! stream with the same event ids, and `Last-Event-ID` resumes through either; a session
//! created through a follower starts promptly; the leader killed with SIGKILL in the middle
//! of launches hands over within 10 s, and every launch still reaches RUNNING once, with one
//! container and no orphan.

use crate::common::{small_session, wait_status, Client, TestApp, USER_PASSWORD};
use crate::crash::containers;
use crate::events::SseStream;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How soon a follower must lead after the leader died.
const FAILOVER: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(60);

/// Session events of `id` read from `stream` until it is `status`: `(event id, status)`.
async fn statuses(stream: &mut SseStream, id: &str, status: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + SETTLE;
    loop {
        let ev = stream
            .next(deadline.saturating_duration_since(Instant::now()))
            .await;
        if ev.event != "session" {
            continue;
        }
        let v: Value = serde_json::from_str(&ev.data).expect("session JSON");
        if v["id"] != id {
            continue;
        }
        let s = v["status"].as_str().unwrap_or_default().to_string();
        out.push((ev.id.clone().expect("event id"), s.clone()));
        if s == status {
            return out;
        }
    }
}

#[tokio::test]
async fn a_second_process_on_one_sqlite_data_dir_is_refused() {
    let app = TestApp::spawn().await;
    if app.database_url().is_some() {
        return; // On PostgreSQL a second process is a replica: see the tests below.
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(app.data_dir())
        .env_remove("BERTH_DATABASE_URL")
        .env_remove("BERTH_TEST_DATABASE_URL")
        .env("BERTH_CONSOLE_DIR", app.data_dir().join("no-console"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run berth");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second berth serve on one SQLite data dir kept running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().expect("its output");
    assert!(!out.status.success(), "a second berth serve started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another berth serve already uses the data directory"),
        "stderr: {err}"
    );
    // The first one still answers.
    assert_eq!(app.anon().get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_session_created_through_one_replica_is_seen_live_through_the_other() {
    let app = TestApp::spawn().await;
    let Some(b) = app.start_replica().await else {
        eprintln!("SQLite: no replicas (BERTH_TEST_DATABASE_URL unset)");
        return;
    };
    app.create_user("alice", USER_PASSWORD, "user").await;
    let on_a = app.login("alice", USER_PASSWORD).await;
    let on_b = app.login_at(&b.base, "alice", USER_PASSWORD).await;
    let mut stream_a = SseStream::open(&on_a).await;
    let mut stream_b = SseStream::open(&on_b).await;

    // Created through A (the leader): B's stream follows it to RUNNING.
    let s = on_a.create_session(small_session("via-a")).await;
    let id = s["id"].as_str().unwrap().to_string();
    let seen_b = statuses(&mut stream_b, &id, "RUNNING").await;
    let seen_a = statuses(&mut stream_a, &id, "RUNNING").await;
    assert_eq!(
        seen_a, seen_b,
        "both replicas show the same events under the same ids"
    );
    assert!(seen_b.len() >= 2, "PENDING … RUNNING: {seen_b:?}");

    // Created through B (a follower): the leader hears of it and starts it promptly.
    let started = Instant::now();
    let s2 = on_b.create_session(small_session("via-b")).await;
    let id2 = s2["id"].as_str().unwrap().to_string();
    let seen = statuses(&mut stream_a, &id2, "RUNNING").await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a session created through a follower took {:?} to run: {seen:?}",
        started.elapsed()
    );

    // Resuming through the other replica: after B's first event of `id`, A replays the rest.
    let (first, _) = &seen_b[0];
    let mut resumed = SseStream::open_after(&on_a, Some(first)).await;
    let replay = statuses(&mut resumed, &id, "RUNNING").await;
    assert_eq!(
        replay,
        seen_b[1..].to_vec(),
        "Last-Event-ID {first} through A"
    );

    // Terminated through B, seen on A.
    let r = on_b.delete(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    statuses(&mut stream_a, &id, "TERMINATED").await;
    let r = on_a.delete(&format!("/api/v1/sessions/{id2}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    statuses(&mut stream_b, &id2, "TERMINATED").await;
    wait_until_no_containers(&app).await;

    // Access taken away through A ends what alice holds open on B.
    let r = app
        .admin()
        .await
        .patch(
            "/api/v1/users/alice",
            &serde_json::json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        stream_b.ends_within(Duration::from_secs(5)).await,
        "alice's event stream on B outlived her account's disabling on A"
    );
    assert!(stream_a.ends_within(Duration::from_secs(5)).await);
}

/// A revocation a replica never heard of on the bus (its notification lost, as when its
/// listening connection is cut at that moment) still ends what the user holds open there:
/// every replica applies the `revocations` rows past the last one it saw, within
/// `bus::CATCH_UP_EVERY` (5 s) at the latest.
#[tokio::test]
async fn a_revocation_missed_on_the_bus_still_ends_what_the_user_holds() {
    use sqlx::Connection;
    let app = TestApp::spawn().await;
    let Some(b) = app.start_replica().await else {
        eprintln!("SQLite: no replicas (BERTH_TEST_DATABASE_URL unset)");
        return;
    };
    let alice = app.create_user("alice", USER_PASSWORD, "user").await;
    let alice_id = alice["id"].as_str().expect("user id").to_string();
    app.create_user("bob", USER_PASSWORD, "user").await;
    let on_b = app.login_at(&b.base, "alice", USER_PASSWORD).await;
    let bob_on_b = app.login_at(&b.base, "bob", USER_PASSWORD).await;
    let mut alice_stream = SseStream::open(&on_b).await;
    let mut bob_stream = SseStream::open(&bob_on_b).await;

    // What another replica commits when it disables alice, without the notification.
    let url = app.database_url().expect("PostgreSQL");
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1")
        .bind(&alice_id)
        .execute(&mut db)
        .await
        .expect("disable");
    sqlx::query(
        "INSERT INTO revocations (user_id, origin, at) VALUES ($1, 'a-replica-whose-notification-was-lost', '2026-01-01T00:00:00Z')",
    )
    .bind(&alice_id)
    .execute(&mut db)
    .await
    .expect("the revocation's row");
    assert!(
        alice_stream.ends_within(Duration::from_secs(15)).await,
        "alice's event stream on B outlived a revocation B missed on the bus"
    );
    assert!(
        !bob_stream.ends_within(Duration::from_secs(1)).await,
        "bob's stream is not hers"
    );
    assert_eq!(on_b.get("/api/v1/me").await.status, 401);
}

async fn wait_until_no_containers(app: &TestApp) {
    let deadline = Instant::now() + SETTLE;
    while !containers(app).is_empty() {
        assert!(
            Instant::now() < deadline,
            "containers left: {:?}",
            containers(app)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lines of the shared log saying that the process `pid` became the leader.
fn lead_lines(app: &TestApp, pid: u32) -> usize {
    strip_ansi(&app.log())
        .lines()
        .filter(|l| {
            l.contains("this replica is the leader now")
                && l.split_whitespace()
                    .any(|w| w.starts_with("replica=") && w.ends_with(&format!(":{pid}")))
        })
        .count()
}

/// The log without its terminal colours.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn killing_the_leader_during_launches_hands_over_and_loses_none() {
    let mut app = TestApp::spawn().await;
    let Some(mut b) = app.start_replica().await else {
        eprintln!("SQLite: no replicas (BERTH_TEST_DATABASE_URL unset)");
        return;
    };
    app.create_user("alice", USER_PASSWORD, "user").await;
    // A started first and leads.
    assert_eq!(lead_lines(&app, app.pid()), 1, "A leads: {}", app.log());
    let mut a_leads = true;
    let mut launched: Vec<String> = Vec::new();
    for round in 0..4u64 {
        let (leader_base, follower_base) = if a_leads {
            (app.base.clone(), b.base.clone())
        } else {
            (b.base.clone(), app.base.clone())
        };
        let via_leader = app.login_at(&leader_base, "alice", USER_PASSWORD).await;
        let via_follower = app.login_at(&follower_base, "alice", USER_PASSWORD).await;
        // Two launches through the follower, one through the leader, then the leader dies
        // 0–450 ms later: in the middle of its scheduling and container starts.
        for (n, c) in [&via_follower, &via_leader, &via_follower]
            .iter()
            .enumerate()
        {
            let s = c
                .create_session(small_session(&format!("r{round}-s{n}")))
                .await;
            launched.push(s["id"].as_str().unwrap().to_string());
        }
        tokio::time::sleep(Duration::from_millis(150 * round.min(3))).await;
        let killed = Instant::now();
        let survivor_pid = if a_leads {
            app.kill();
            b.pid()
        } else {
            b.kill();
            app.pid()
        };
        // The survivor leads within FAILOVER.
        let before = lead_lines(&app, survivor_pid);
        while lead_lines(&app, survivor_pid) == before {
            assert!(
                killed.elapsed() < FAILOVER,
                "round {round}: no new leader {FAILOVER:?} after the kill; log:\n{}",
                app.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "round {round}: the survivor led {:?} after the kill",
            killed.elapsed()
        );
        // Every launch so far reaches RUNNING through the survivor.
        let survivor = app.login_at(&follower_base, "alice", USER_PASSWORD).await;
        for id in &launched {
            wait_status(&survivor, id, "RUNNING", SETTLE).await;
        }
        // The dead one comes back as a follower.
        if a_leads {
            app.restart().await;
        } else {
            b.restart().await;
        }
        a_leads = !a_leads;
    }

    // What the new leaders found, for whoever reads a failure (or a pass).
    let log = strip_ansi(&app.log());
    for what in [
        "taking up what the previous leader left",
        "preparing again",
        "found running",
    ] {
        eprintln!("gateway log: {what}: {}", log.matches(what).count());
    }
    let alice = app.login("alice", USER_PASSWORD).await;
    check_one_container_each(&app, &alice, &launched).await;
    for id in &launched {
        let r = alice.delete(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_until_no_containers(&app).await;
}

/// Every launch RUNNING once (never ERROR, never started twice), each with exactly the one
/// running container it records, and no container of the instance besides.
pub(crate) async fn check_one_container_each(app: &TestApp, client: &Client, launched: &[String]) {
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    for id in launched {
        let s = wait_status(client, id, "RUNNING", SETTLE).await;
        recorded.insert(id.clone(), s["container_id"].as_str().unwrap().to_string());
        let history = client.history(id).await;
        assert!(
            history.iter().all(|h| h["status"] != "ERROR"),
            "session {id} passed through ERROR: {history:?}"
        );
        let runs = history.iter().filter(|h| h["status"] == "RUNNING").count();
        assert_eq!(runs, 1, "session {id} started {runs} times: {history:?}");
    }
    let mut by_session: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (cid, session, state) in containers(app) {
        by_session.entry(session).or_default().push((cid, state));
    }
    for (session, cs) in &by_session {
        let Some(cid) = recorded.get(session) else {
            panic!("orphan container(s) {cs:?} of session {session}");
        };
        assert_eq!(cs.len(), 1, "session {session} has containers {cs:?}");
        assert_eq!(&cs[0].0, cid, "session {session} records another container");
        assert_eq!(cs[0].1, "running", "session {session}'s container");
    }
    assert_eq!(
        by_session.len(),
        recorded.len(),
        "every RUNNING session has its container"
    );
}

/// nginx (Debian's, `scripts/lib.sh`'s `ensure_nginx`) in front of replicas: round robin over a
/// keep-alive upstream, as an operator would put it. Stopped on drop.
pub(crate) struct Nginx {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Nginx {
    pub(crate) fn start(upstreams: &[std::net::SocketAddr]) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let servers: String = upstreams
            .iter()
            .map(|a| format!("server {a} max_fails=0;\n"))
            .collect();
        let d = dir.path().display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream berth {{ {servers} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / {{
      proxy_pass http://berth;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).expect("nginx.conf");
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx is not installed (scripts/lib.sh: ensure_nginx)");
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        // Listening within 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen: {}", {
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            });
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            _dir: dir,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restarts PostgreSQL under the replicas: `BERTH_TEST_PG_RESTART` (a shell command that
/// restarts the server, as `scripts/test.sh` passes it when this test runs alone), else every
/// connection to the test's database is terminated, which is what a restart looks like to
/// berth apart from the seconds it is refused.
async fn restart_postgresql(app: &TestApp) -> &'static str {
    if let Ok(cmd) = std::env::var("BERTH_TEST_PG_RESTART") {
        let ok = tokio::process::Command::new("sh")
            .args(["-c", &cmd])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .expect("run BERTH_TEST_PG_RESTART")
            .success();
        assert!(ok, "BERTH_TEST_PG_RESTART failed: {cmd}");
        return "restarted";
    }
    use sqlx::Connection;
    let url = app.database_url().expect("on PostgreSQL");
    let name = url.rsplit('/').next().unwrap().to_string();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_one(&mut conn)
    .await
    .expect("terminate the replicas' connections");
    assert!(n >= 2, "only {n} connections to terminate");
    "cut off (every connection terminated)"
}

#[tokio::test]
async fn postgresql_restarted_under_load_behind_nginx_loses_and_doubles_nothing() {
    let app = TestApp::spawn().await;
    let Some(b) = app.start_replica().await else {
        eprintln!("SQLite: no replicas (BERTH_TEST_DATABASE_URL unset)");
        return;
    };
    app.create_user("alice", USER_PASSWORD, "user").await;
    let nginx = Nginx::start(&[app.addr, b.addr]);
    let alice = app.login_at(&nginx.base, "alice", USER_PASSWORD).await;
    // Any replica answers any call: a session created through nginx is seen live through B.
    let on_b = app.login_at(&b.base, "alice", USER_PASSWORD).await;
    let mut stream_b = SseStream::open(&on_b).await;
    let first = alice.create_session(small_session("first")).await;
    let first = first["id"].as_str().unwrap().to_string();
    statuses(&mut stream_b, &first, "RUNNING").await;

    // Load: reads as fast as they go, and a launch every 400 ms, through nginx.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (c, stop) = (alice.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = c.http.get(c.url("/api/v1/sessions")).send().await;
                    match r {
                        Ok(r) if r.status() == 200 => ok += 1,
                        _ => {
                            failed += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let launcher = {
        let c = alice.clone();
        tokio::spawn(async move {
            // (name, answered 201 with this id) of every launch tried.
            let mut tried: Vec<(String, Option<String>)> = Vec::new();
            for i in 0..9 {
                let name = format!("load-{i}");
                let r = c.post("/api/v1/sessions", &small_session(&name)).await;
                let id = (r.status == 201).then(|| {
                    serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                });
                if id.is_none() {
                    eprintln!("launch {name} answered {}: {}", r.status, r.text());
                    // Refused while the database was away: a 503 to try again, not a 500.
                    crate::common::assert_problem(&r, 503, "unavailable");
                }
                tried.push((name, id));
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            tried
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let how = restart_postgresql(&app).await;
    eprintln!("PostgreSQL {how} under load");
    let tried = launcher.await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        let (ok, failed) = r.await.unwrap();
        eprintln!("reader: {ok} answers, {failed} failed");
        assert!(ok > 0);
    }

    // Nothing lost: every launch answered 201 runs, once, with one container. Nothing doubled:
    // no name twice, and a launch that was refused during the restart made at most one session.
    let mut launched: Vec<String> = vec![first.clone()];
    launched.extend(tried.iter().filter_map(|(_, id)| id.clone()));
    let listed = alice.sessions().await;
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for s in &listed {
        *names
            .entry(s["name"].as_str().unwrap().to_string())
            .or_default() += 1;
        let id = s["id"].as_str().unwrap().to_string();
        if !launched.contains(&id) {
            // Refused on the wire, yet recorded: it must still be a normal launch.
            launched.push(id);
        }
    }
    assert!(names.values().all(|&n| n == 1), "a name twice: {names:?}");
    for (name, id) in &tried {
        if let Some(id) = id {
            assert!(
                listed.iter().any(|s| s["id"] == id.as_str()),
                "launch {name} ({id}) is lost"
            );
        }
    }
    assert!(
        tried.iter().filter(|(_, id)| id.is_some()).count() >= 5,
        "most launches went through: {tried:?}"
    );
    check_one_container_each(&app, &alice, &launched).await;
    // The replicas agree again: B's stream sees a launch through nginx, after the restart.
    let last = alice.create_session(small_session("after")).await;
    let last = last["id"].as_str().unwrap().to_string();
    statuses(&mut stream_b, &last, "RUNNING").await;
    launched.push(last);
    for id in &launched {
        let r = alice.delete(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_until_no_containers(&app).await;
}

#[tokio::test]
async fn failed_logins_through_both_replicas_count_together() {
    let app = TestApp::spawn().await;
    let Some(b) = app.start_replica().await else {
        eprintln!("SQLite: no replicas (BERTH_TEST_DATABASE_URL unset)");
        return;
    };
    app.create_user("alice", USER_PASSWORD, "user").await;
    let mut on_a = app.anon();
    let mut on_b = app.anon();
    on_b.base = b.base.clone();
    on_a.base = app.base.clone();
    // Eight failures, alternating: counted per process, neither replica would have locked.
    for i in 0..8 {
        let c = if i % 2 == 0 { &on_a } else { &on_b };
        let r = app.try_login(c, "alice", "wrong-password!").await;
        crate::common::assert_problem(&r, 401, "unauthenticated");
    }
    for c in [&on_a, &on_b] {
        let r = app.try_login(c, "alice", USER_PASSWORD).await;
        crate::common::assert_problem(&r, 429, "too-many-requests");
    }
}

#[tokio::test]
async fn the_leader_killed_during_a_launch_behind_nginx_hands_it_to_the_survivor() {
    let mut app = TestApp::spawn().await;
    let Some(b) = app.start_replica().await else {
        eprintln!("SQLite: no replicas (BERTH_TEST_DATABASE_URL unset)");
        return;
    };
    app.create_user("alice", USER_PASSWORD, "user").await;
    let nginx = Nginx::start(&[app.addr, b.addr]);
    let alice = app.login_at(&nginx.base, "alice", USER_PASSWORD).await;
    let mut launched = Vec::new();
    for n in 0..2 {
        let s = alice.create_session(small_session(&format!("s{n}"))).await;
        launched.push(s["id"].as_str().unwrap().to_string());
    }
    // A (the leader) dies in the middle of those launches; nginx sends everything to B now.
    app.kill();
    let s = alice.create_session(small_session("after")).await;
    launched.push(s["id"].as_str().unwrap().to_string());
    check_one_container_each(&app, &alice, &launched).await;
    for id in &launched {
        let r = alice.delete(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_until_no_containers(&app).await;
    drop(b);
}
