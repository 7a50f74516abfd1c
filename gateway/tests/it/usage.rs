//! `GET /api/v1/usage`: accounted seconds × resources match what sessions really held, from
//! RUNNING until they ended (or now), before and after a kill -9 of the gateway; a session
//! across midnight is split exactly; groupings add up to the same; a user sees only their own
//! sessions; bad input is a sentence naming the field.

use crate::common::{
    assert_field_error, assert_problem, end_session, small_session, wait_status, Client, TestApp,
    IMAGE,
};
use api::usage::{Amounts, UsageReport, UsageTotal, CSV_HEADER};
use serde_json::{json, Value};
use std::time::Duration;

const START: Duration = Duration::from_secs(120);

/// Unix seconds of an RFC 3339 time, rounded down.
fn unix(t: &str) -> i64 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .unix_timestamp()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An exact decimal string as an integer count of `10^-scale` units.
fn fixed(s: &str, scale: u32) -> u128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(
        frac.len() <= scale as usize,
        "{s} has more than {scale} decimals"
    );
    let frac = format!("{frac:0<width$}", width = scale as usize);
    int.parse::<u128>().unwrap() * 10u128.pow(scale) + frac.parse::<u128>().unwrap_or(0)
}

/// When a session became RUNNING and when it ended, from its history.
async fn lifetime(c: &Client, id: &str) -> (String, Option<String>) {
    let h = c.history(id).await;
    let at = |status: &str| {
        h.iter()
            .find(|e| e["status"] == status)
            .and_then(|e| e["at"].as_str())
            .map(str::to_string)
    };
    (
        at("RUNNING").expect("a RUNNING entry"),
        at("TERMINATED").or(at("ERROR")),
    )
}

async fn report(c: &Client, query: &str) -> UsageReport {
    c.get(&format!("/api/v1/usage{query}")).await.expect(200)
}

fn total<'a>(r: &'a UsageReport, name: &str) -> &'a UsageTotal {
    r.totals
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no total for {name}: {r:?}"))
}

/// The sum of every group's millicore-seconds, and checks that each group's rows add up to
/// its total exactly.
fn all_core_milli(r: &UsageReport) -> u128 {
    for t in &r.totals {
        let rows: u128 = r
            .rows
            .iter()
            .filter(|row| row.group == t.group)
            .map(|row| fixed(&row.core_seconds, 3))
            .sum();
        assert_eq!(
            rows,
            fixed(&t.core_seconds, 3),
            "rows of {:?}: {r:?}",
            t.name
        );
        let gib: u128 = r
            .rows
            .iter()
            .filter(|row| row.group == t.group)
            .map(|row| fixed(&row.gib_seconds, 30))
            .sum();
        assert_eq!(gib, fixed(&t.gib_seconds, 30), "GiB rows of {:?}", t.name);
    }
    r.totals.iter().map(|t| fixed(&t.core_seconds, 3)).sum()
}

/// The exact figures of `secs` seconds of `cpu_milli` and `mem` bytes.
fn expected(cpu_milli: u64, mem: u64, secs: i64) -> [String; 4] {
    Amounts::held(cpu_milli, mem, 0, 0, secs as u64).figures()
}

#[tokio::test]
async fn usage_follows_lifetimes_and_survives_a_kill() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.create_user("carol", crate::common::USER_PASSWORD, "user")
        .await;
    admin
        .post("/api/v1/projects", &json!({"name": "vision"}))
        .await
        .expect_json(201);
    admin
        .post("/api/v1/projects/vision/members", &json!({"user": "alice"}))
        .await
        .expect_json(200);

    // Alice: half a core and 256 MiB for about three seconds.
    let a = alice
        .create_session(json!({"name": "a1", "image": IMAGE, "project": "vision",
            "resources": {"cpu": "0.5", "mem": "256m"}}))
        .await;
    let a_id = a["id"].as_str().unwrap().to_string();
    wait_status(&alice, &a_id, "RUNNING", START).await;
    let wall = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    end_session(&alice, &a_id).await;
    let wall = wall.elapsed().as_secs_f64();
    let (run, end) = lifetime(&alice, &a_id).await;
    let a_secs = unix(&end.expect("ended")) - unix(&run);
    // Whole seconds of the recorded lifetime: within a second of what the test saw (plus the
    // time the status polls took to notice).
    assert!(
        (a_secs as f64 - wall).abs() <= 1.5,
        "accounted {a_secs} s, the test saw {wall:.2} s"
    );
    let a_fig = expected(500, 256 << 20, a_secs);

    // Bob: still running, counted up to now.
    let b = bob.create_session(small_session("b1")).await;
    let b_id = b["id"].as_str().unwrap().to_string();
    wait_status(&bob, &b_id, "RUNNING", START).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b_run = unix(&lifetime(&bob, &b_id).await.0);

    let check = async |admin: &Client| -> u128 {
        let before = now();
        let r = report(admin, "").await;
        let after = now();
        all_core_milli(&r);
        let t = total(&r, "alice");
        assert_eq!(
            [
                &t.core_seconds,
                &t.gib_seconds,
                &t.gpu_seconds,
                &t.gpu_share_seconds
            ],
            [&a_fig[0], &a_fig[1], &a_fig[2], &a_fig[3]],
            "alice's {a_secs} s of 0.5 cores and 256 MiB: {r:?}"
        );
        assert_eq!(t.sessions, 1);
        let b = fixed(&total(&r, "bob").core_seconds, 3);
        assert!(
            (100 * (before - b_run) as u128..=100 * (after - b_run) as u128).contains(&b),
            "bob's running session: {b} millicore-seconds after {} to {} s",
            before - b_run,
            after - b_run
        );
        assert!(r.totals.iter().all(|t| t.name.as_deref() != Some("carol")));
        b
    };
    let b_before = check(&admin).await;

    // kill -9 and a new gateway: nothing accounted is lost, the running session goes on.
    app.restart().await;
    let admin = app.admin().await;
    let bob = app.login("bob", crate::common::USER_PASSWORD).await;
    let alice = app.login("alice", crate::common::USER_PASSWORD).await;
    let carol = app.login("carol", crate::common::USER_PASSWORD).await;
    wait_status(&bob, &b_id, "RUNNING", START).await;
    let b_after = check(&admin).await;
    assert!(b_after >= b_before, "{b_after} < {b_before}");

    end_session(&bob, &b_id).await;
    let (run, end) = lifetime(&bob, &b_id).await;
    let b_secs = unix(&end.unwrap()) - unix(&run);
    let b_fig = expected(100, 128 << 20, b_secs);
    let r = report(&admin, "?group_by=USER").await;
    assert_eq!(total(&r, "bob").core_seconds, b_fig[0], "{r:?}");
    assert_eq!(total(&r, "bob").gib_seconds, b_fig[1], "{r:?}");
    let everything = all_core_milli(&r);
    assert_eq!(everything, fixed(&a_fig[0], 3) + fixed(&b_fig[0], 3));

    // Every grouping adds up to the same.
    let by_project = report(&admin, "?group_by=project").await;
    assert_eq!(all_core_milli(&by_project), everything);
    assert_eq!(total(&by_project, "vision").core_seconds, a_fig[0]);
    let none = by_project
        .totals
        .iter()
        .find(|t| t.group.is_none())
        .unwrap();
    assert_eq!(
        (none.name.as_deref(), &none.core_seconds),
        (None, &b_fig[0])
    );
    let by_node = report(&admin, "?group_by=node").await;
    assert_eq!(all_core_milli(&by_node), everything);
    assert_eq!(total(&by_node, "local").sessions, 2);

    // CSV: the same rows.
    let csv = admin.get("/api/v1/usage?format=csv&group_by=node").await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert_eq!(csv.content_type(), "text/csv; charset=utf-8");
    let text = csv.text();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), by_node.rows.len() + 1, "{text}");
    assert!(lines[1].contains(",local,local,"), "{text}");

    // A user sees only their own sessions, however they group them.
    for q in ["", "?group_by=user", "?group_by=node", "?group_by=project"] {
        let r = report(&alice, q).await;
        assert_eq!(all_core_milli(&r), fixed(&a_fig[0], 3), "alice {q}: {r:?}");
        assert_eq!(r.totals.len(), 1, "alice {q}: {r:?}");
    }
    let r = report(&alice, "?group_by=user").await;
    assert_eq!(r.totals[0].name.as_deref(), Some("alice"));
    let r = report(&carol, "").await;
    assert!(r.rows.is_empty() && r.totals.is_empty(), "{r:?}");
}

/// Runs a statement on the instance's database (SQLite in its data dir, or its PostgreSQL).
async fn sql(app: &TestApp, stmt: &str) {
    use sqlx::Connection;
    match app.database_url() {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
            let _ = c.close().await;
        }
        None => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(app.data_dir().join("berth.db"))
                .busy_timeout(Duration::from_secs(10));
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
            let _ = c.close().await;
        }
    }
}

/// A session that ran and ended in the past, with its history, as berth records one: no test
/// can wait for midnight, so the rows of one that ran across it are written here.
async fn past_session(
    app: &TestApp,
    id: &str,
    owner: &str,
    resources: (u64, u64, u32, u32),
    running: &str,
    ended: &str,
) {
    let (cpu, mem, gpu, shares) = resources;
    sql(app, &format!(
        "INSERT INTO sessions(id, seq, owner_id, name, kind, image, cpu_milli, mem_bytes, gpu, gpu_shares,
                              status, status_reason, node, created_at, started_at, terminated_at)
         VALUES ('{id}', (SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions), '{owner}', '{id}', 'INTERACTIVE', 'berth/base',
                 {cpu}, {mem}, {gpu}, {shares}, 'TERMINATED', 'Ended by its owner.', 'local', '{running}', '{running}', '{ended}')"
    ))
    .await;
    for (status, at) in [
        ("PENDING", running),
        ("SCHEDULED", running),
        ("PREPARING", running),
        ("RUNNING", running),
        ("TERMINATING", ended),
        ("TERMINATED", ended),
    ] {
        sql(app, &format!(
            "INSERT INTO session_history(session_id, status, reason, at) VALUES ('{id}', '{status}', '', '{at}')"
        ))
        .await;
    }
}

#[tokio::test]
async fn a_session_across_midnight_is_split_exactly_and_bad_input_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id_of = |u: Value| u["id"].as_str().unwrap().to_string();
    let users: Value = admin.get("/api/v1/users").await.expect_json(200);
    let find = |name: &str| {
        id_of(
            users
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["username"] == name)
                .unwrap()
                .clone(),
        )
    };
    let (alice_id, bob_id) = (find("alice"), find("bob"));
    // Alice: 2 cores, 1 GiB, one GPU and a quarter of another, from 23:59:30.25 to
    // 00:00:45.9: whole seconds 23:59:30 to 00:00:45, so 30 s on the 9th and 45 s on the 10th.
    past_session(
        &app,
        "u-mid",
        &alice_id,
        (2000, 1 << 30, 1, 25),
        "2025-03-09T23:59:30.25Z",
        "2025-03-10T00:00:45.9Z",
    )
    .await;
    // Bob: 0.1 cores and 100 000 000 bytes from noon on the 9th to 06:00 on the 11th.
    past_session(
        &app,
        "u-long",
        &bob_id,
        (100, 100_000_000, 0, 0),
        "2025-03-09T12:00:00Z",
        "2025-03-11T06:00:00Z",
    )
    .await;

    let r = report(&admin, "?from=2025-03-09&to=2025-03-11").await;
    let rows: Vec<(&str, &str, u32, &str, &str, &str, &str)> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.day.as_str(),
                r.name.as_deref().unwrap(),
                r.sessions,
                r.core_seconds.as_str(),
                r.gib_seconds.as_str(),
                r.gpu_seconds.as_str(),
                r.gpu_share_seconds.as_str(),
            )
        })
        .collect();
    // 100 000 000 bytes × 43 200 s / 2^30 = 4023.313522338867… GiB-seconds, exactly.
    let bob_gib = |secs: u64| Amounts::held(0, 100_000_000, 0, 0, secs).figures()[1].clone();
    assert_eq!(
        rows,
        [
            ("2025-03-09", "alice", 1, "60", "30", "30", "7.5"),
            (
                "2025-03-09",
                "bob",
                1,
                "4320",
                bob_gib(43_200).as_str(),
                "0",
                "0"
            ),
            ("2025-03-10", "alice", 1, "90", "45", "45", "11.25"),
            (
                "2025-03-10",
                "bob",
                1,
                "8640",
                bob_gib(86_400).as_str(),
                "0",
                "0"
            ),
            (
                "2025-03-11",
                "bob",
                1,
                "2160",
                bob_gib(21_600).as_str(),
                "0",
                "0"
            ),
        ]
    );
    assert_eq!(bob_gib(43_200), "4023.3135223388671875");
    // The parts add up to the whole: 75 s of alice's, 42 h of bob's.
    let a = total(&r, "alice");
    assert_eq!(
        (
            a.sessions,
            a.core_seconds.as_str(),
            a.gib_seconds.as_str(),
            a.gpu_seconds.as_str(),
            a.gpu_share_seconds.as_str()
        ),
        (1, "150", "75", "75", "18.75")
    );
    let b = total(&r, "bob");
    assert_eq!(b.core_seconds, "15120");
    assert_eq!(b.gib_seconds, bob_gib(151_200));
    all_core_milli(&r);

    // One day alone: only what fell on it.
    let r = report(&admin, "?from=2025-03-10&to=2025-03-10&group_by=node").await;
    assert_eq!(r.rows.len(), 1, "{r:?}");
    assert_eq!(
        (r.rows[0].name.as_deref(), r.rows[0].sessions),
        (Some("local"), 2)
    );
    assert_eq!(r.rows[0].core_seconds, "8730");
    assert_eq!(
        (r.from.as_str(), r.to.as_str()),
        ("2025-03-10", "2025-03-10")
    );
    // Before and after: nothing.
    let r = report(&admin, "?from=2025-03-12&to=2025-04-12").await;
    assert!(r.rows.is_empty(), "{r:?}");

    // The CLI: the same CSV as the server's, the JSON, a table of hours, the server's sentence.
    let key: api::auth::CreatedKey = admin
        .post("/api/v1/keys", &json!({"name": "cli"}))
        .await
        .expect(201);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["admin", "usage"])
            .args(args)
            .env("BERTH_URL", &app.base)
            .env("BERTH_KEY", &key.key)
            .env("HOME", app.data_dir())
            .env_remove("BERTH_DATA_DIR")
            .env_remove("BERTH_DATABASE_URL")
            .output()
            .expect("run berth");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let range = ["--from", "2025-03-09", "--to", "2025-03-11"];
    let (ok, csv, err) = cli(&[&range[..], &["--csv"]].concat());
    assert!(ok, "{err}");
    let served = admin
        .get("/api/v1/usage?from=2025-03-09&to=2025-03-11&format=csv")
        .await;
    assert_eq!(csv, served.text());
    assert_eq!(csv.lines().count(), 6, "{csv}");
    let (ok, out, err) = cli(&[&range[..], &["--json", "--group-by", "node"]].concat());
    assert!(ok, "{err}");
    let r: UsageReport = crate::common::decode_strict(out.as_bytes());
    assert_eq!(r.totals[0].core_seconds, "15270");
    let (ok, out, err) = cli(&range);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("DAY         USER   SESSIONS  CORE-H"),
        "{out}"
    );
    assert!(out.contains("total       bob    1         4.20"), "{out}");
    let (ok, _, err) = cli(&["--group-by", "team"]);
    assert!(
        !ok && err.contains("berth: \"group_by\" must be user, project or node."),
        "{err}"
    );

    // A user gets only their own, whatever they ask.
    for q in ["", "&group_by=user", "&group_by=node", "&group_by=project"] {
        let r = report(&alice, &format!("?from=2025-03-01&to=2025-03-31{q}")).await;
        assert_eq!(r.totals.len(), 1, "{q}: {r:?}");
        assert_eq!(r.totals[0].core_seconds, "150", "{q}: {r:?}");
        assert_eq!(r.rows.len(), 2, "{q}: {r:?}");
    }
    let r = report(&bob, "?from=2025-03-01&to=2025-03-31").await;
    assert_eq!(r.totals.len(), 1);
    assert_eq!(r.totals[0].name.as_deref(), Some("bob"));

    // Bad input: a 400 naming the field, with a sentence.
    for (q, field) in [
        ("?from=2025-02-30", "from"),
        ("?from=yesterday", "from"),
        ("?to=2025-13-01", "to"),
        ("?to=2025-1-1", "to"),
        ("?from=2025-03-10&to=2025-03-09", "to"),
        ("?from=2024-01-01&to=2025-01-02", "from"),
        ("?from=1900-01-01&to=1900-01-02", "from"),
        ("?group_by=team", "group_by"),
        ("?group_by=", "none"),
        ("?format=xml", "format"),
        ("?groupby=user", "query"),
    ] {
        let reply = alice.get(&format!("/api/v1/usage{q}")).await;
        if field == "none" {
            // An empty parameter is the default.
            let _: UsageReport = reply.expect(200);
            continue;
        }
        assert_field_error(&reply, field);
    }
    let reply = admin
        .get("/api/v1/usage?from=2025-03-10&to=2025-03-09")
        .await;
    let p = assert_field_error(&reply, "to");
    assert!(p["detail"].as_str().unwrap().contains("before"), "{p}");
    assert_problem(
        &app.anon().get("/api/v1/usage").await,
        401,
        "unauthenticated",
    );
}
