//! Sessions on Docker: the lifecycle with its history, the container's limits and identity,
//! refused requests that leave nothing behind, isolation between users, and containers that
//! end on their own.

use crate::common::{
    assert_field_error, assert_problem, docker, docker_ok, end_session, inspect, is_rfc3339_utc,
    small_session, wait_status, wait_until, Client, TestApp, IMAGE,
};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

const START: Duration = Duration::from_secs(60);

fn statuses(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect()
}

#[track_caller]
fn assert_history_entries_explained(history: &[Value]) {
    for h in history {
        assert!(
            h["reason"].as_str().is_some_and(|r| !r.trim().is_empty()),
            "history entry without a reason: {h}"
        );
        assert!(
            h["at"].as_str().is_some_and(is_rfc3339_utc),
            "history entry time is not RFC 3339 UTC: {h}"
        );
    }
}

#[tokio::test]
async fn session_runs_in_a_limited_container_and_terminates() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let me = alice.get("/api/v1/me").await.expect_json(200);

    let created = alice.create_session(small_session("life")).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{created}");
    assert_eq!(created["status"], "PENDING", "{created}");
    assert!(
        created["queue_position"].as_u64().is_some_and(|p| p >= 1),
        "a PENDING session has a queue position: {created}"
    );
    assert_eq!(created["name"], "life");
    assert_eq!(created["image"], IMAGE);
    assert_eq!(created["resources"]["cpu"], "0.1");
    assert_eq!(created["resources"]["mem"], 134_217_728u64);
    assert!(created["created_at"].as_str().is_some_and(is_rfc3339_utc));

    let running = wait_status(&alice, &id, "RUNNING", START).await;
    assert!(running["queue_position"].is_null(), "{running}");
    assert!(running["node"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(running["started_at"].as_str().is_some_and(is_rfc3339_utc));
    let history = alice.history(&id).await;
    assert_eq!(
        statuses(&history),
        ["PENDING", "SCHEDULED", "PREPARING", "RUNNING"],
        "{history:?}"
    );
    assert_history_entries_explained(&history);

    // The container: limits, hardening, identity and labels.
    let cid = running["container_id"]
        .as_str()
        .expect("container id")
        .to_string();
    let c = inspect(&cid).expect("the session's container exists");
    let hc = &c["HostConfig"];
    assert_eq!(hc["NanoCpus"], 100_000_000u64, "{hc}");
    assert_eq!(hc["Memory"], 134_217_728u64, "{hc}");
    assert_eq!(
        hc["MemorySwap"], hc["Memory"],
        "no swap beyond the limit: {hc}"
    );
    assert!(
        hc["SecurityOpt"]
            .as_array()
            .is_some_and(|o| o.iter().any(|s| s
                .as_str()
                .is_some_and(|s| s.starts_with("no-new-privileges")))),
        "{hc}"
    );
    assert_eq!(hc["Init"], true, "{hc}");
    let user = c["Config"]["User"].as_str().unwrap_or("");
    assert!(
        user == "1000:1000" || user == "work" || user == "1000",
        "user {user:?}"
    );
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["berth.instance"], app.instance.as_str());
    assert_eq!(labels["berth.session"], id.as_str());
    assert_eq!(labels["berth.owner"], me["id"]);
    assert_eq!(c["State"]["Running"], true);

    // Inside: uid 1000, home and working dir /home/work, ~/.local/bin on PATH.
    assert_eq!(docker_ok(&["exec", &cid, "id", "-u"]).trim(), "1000");
    let out = docker_ok(&["exec", &cid, "sh", "-c", "pwd; echo $HOME; echo $PATH"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/home/work", "{out}");
    assert_eq!(lines[1], "/home/work", "{out}");
    assert!(
        lines[2].split(':').any(|p| p == "/home/work/.local/bin"),
        "PATH: {out}"
    );

    // Terminate: TERMINATING at once, then TERMINATED with the container gone.
    let r = alice.delete(&format!("/api/v1/sessions/{id}")).await;
    let ending = r.expect_json(200);
    assert!(
        matches!(
            ending["status"].as_str(),
            Some("TERMINATING" | "TERMINATED")
        ),
        "{ending}"
    );
    let done = wait_status(&alice, &id, "TERMINATED", START).await;
    assert!(done["terminated_at"].as_str().is_some_and(is_rfc3339_utc));
    let history = alice.history(&id).await;
    assert_eq!(
        statuses(&history),
        [
            "PENDING",
            "SCHEDULED",
            "PREPARING",
            "RUNNING",
            "TERMINATING",
            "TERMINATED"
        ],
        "{history:?}"
    );
    assert_history_entries_explained(&history);
    assert!(inspect(&cid).is_none(), "the container must be removed");
    assert!(app.instance_containers().is_empty());

    // Deleting again is harmless and keeps the final state.
    let again = alice.delete(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(again.expect_json(200)["status"], "TERMINATED");
}

/// One refused create: the reply must be the given problem.
async fn refused(c: &Client, body: Value) -> crate::common::Reply {
    c.post("/api/v1/sessions", &body).await
}

fn with_resources(cpu: Value, mem: Value) -> Value {
    json!({"image": IMAGE, "resources": {"cpu": cpu, "mem": mem}})
}

#[tokio::test]
async fn bad_session_requests_are_refused_and_leave_nothing() {
    let app = TestApp::spawn().await;
    let c = app.user("alice").await;

    let r = refused(
        &c,
        json!({"image": "no/such-image", "resources": {"cpu": "0.1", "mem": "128m"}}),
    )
    .await;
    assert_field_error(&r, "image");
    let r = refused(
        &c,
        json!({"image": "bad image!", "resources": {"cpu": "0.1", "mem": "128m"}}),
    )
    .await;
    assert_field_error(&r, "image");

    for cpu in [
        json!("0"),
        json!("-1"),
        json!("abc"),
        json!(0.0001),
        json!("0.0001"),
        json!("100000"),
        json!(""),
        json!(-2),
    ] {
        let r = refused(&c, with_resources(cpu.clone(), json!("128m"))).await;
        let p = assert_field_error(&r, "resources.cpu");
        assert!(!p.to_string().contains("serde"), "cpu {cpu}: {p}");
    }
    for mem in [
        json!("0"),
        json!("12q"),
        json!(0),
        json!("-5m"),
        json!("1.5"),
        json!("100t"),
    ] {
        let r = refused(&c, with_resources(json!("0.1"), mem.clone())).await;
        assert_field_error(&r, "resources.mem");
    }
    // Missing resources altogether.
    let r = refused(&c, json!({"image": IMAGE})).await;
    assert_field_error(&r, "resources");

    // Well-formed but no node could ever hold it: refused at once, no session.
    let r = refused(&c, with_resources(json!("64"), json!("128m"))).await;
    assert_problem(&r, 400, "unschedulable");
    let r = refused(&c, with_resources(json!("0.1"), json!("10t"))).await;
    assert_problem(&r, 400, "unschedulable");

    let mut body = small_session("x");
    body["name"] = json!("Bad_Name");
    assert_field_error(&refused(&c, body.clone()).await, "name");
    body["name"] = json!("a".repeat(65));
    assert_field_error(&refused(&c, body.clone()).await, "name");
    body["name"] = json!("1abc");
    assert_field_error(&refused(&c, body.clone()).await, "name");

    let r = c
        .post_raw(
            "/api/v1/sessions",
            "application/json",
            b"{\"image\": ".to_vec(),
        )
        .await;
    assert_problem(&r, 400, "validation");
    let r = c
        .post_raw("/api/v1/sessions", "application/json", b"[1, 2".to_vec())
        .await;
    assert_problem(&r, 400, "validation");

    let r = refused(
        &c,
        json!({"image": 5, "resources": {"cpu": "0.1", "mem": "128m"}}),
    )
    .await;
    assert_field_error(&r, "image");
    let mut body = small_session("x");
    body["colour"] = json!("blue");
    assert_field_error(&refused(&c, body).await, "colour");
    let r = refused(
        &c,
        json!({"image": IMAGE, "resources": {"cpu": "0.1", "mem": "128m", "disk": "1g"}}),
    )
    .await;
    assert_field_error(&r, "resources.disk");

    // A body over 1 MiB.
    let mut body = small_session("x");
    body["command"] = json!("x".repeat((1 << 20) + 16));
    let bytes = serde_json::to_vec(&body).unwrap();
    let r = c
        .post_raw("/api/v1/sessions", "application/json", bytes)
        .await;
    assert_problem(&r, 413, "too-large");

    let bytes = serde_json::to_vec(&small_session("x")).unwrap();
    let r = c
        .post_raw("/api/v1/sessions", "text/plain", bytes.clone())
        .await;
    assert_problem(&r, 415, "unsupported-media-type");
    let r = c
        .send(c.http.post(c.url("/api/v1/sessions")).body(bytes))
        .await;
    assert_problem(&r, 415, "unsupported-media-type");

    let mut body = small_session("x");
    let env: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("V{i}"), json!("1"))).collect();
    body["env"] = Value::Object(env);
    assert_field_error(&refused(&c, body).await, "env");
    let mut body = small_session("x");
    body["env"] = json!({"1X": "y"});
    assert_field_error(&refused(&c, body).await, "env.1X");
    let mut body = small_session("x");
    body["env"] = json!({"BIG": "v".repeat(33 * 1024)});
    assert_field_error(&refused(&c, body).await, "env");

    let mut body = small_session("x");
    body["command"] = json!("e".repeat(4097));
    assert_field_error(&refused(&c, body).await, "command");
    let mut body = small_session("x");
    body["type"] = json!("weird");
    assert_field_error(&refused(&c, body).await, "type");
    let mut body = small_session("x");
    body["type"] = json!("batch");
    assert_field_error(&refused(&c, body).await, "command");

    // Nothing was created by any of them.
    assert!(
        c.sessions().await.is_empty(),
        "a refused request left a session"
    );
    assert!(
        app.instance_containers().is_empty(),
        "a refused request left a container"
    );

    // A duplicate live name is a conflict; only the first session exists.
    let first = c.create_session(small_session("dup")).await;
    let r = refused(&c, small_session("dup")).await;
    assert_problem(&r, 409, "conflict");
    let list = c.sessions().await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], first["id"]);
    let first_id = first["id"].as_str().unwrap();
    for cid in app.instance_containers() {
        let labels = &inspect(&cid).expect("container")["Config"]["Labels"];
        assert_eq!(
            labels["berth.session"], first_id,
            "a container of a refused session"
        );
    }
    // Once it has ended, the name is free again (terminate while it may still be starting).
    end_session(&c, first_id).await;
    let again = c.create_session(small_session("dup")).await;
    end_session(&c, again["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn users_cannot_see_or_touch_each_others_sessions() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let admin = app.admin().await;

    let s = alice.create_session(small_session("mine")).await;
    let id = s["id"].as_str().unwrap().to_string();
    let bob_own = bob.create_session(small_session("bobs")).await;

    let random = uuid::Uuid::new_v4().to_string();
    let paths = |sid: &str| {
        vec![
            ("GET", format!("/api/v1/sessions/{sid}")),
            ("DELETE", format!("/api/v1/sessions/{sid}")),
            ("GET", format!("/api/v1/sessions/{sid}/history")),
            ("GET", format!("/api/v1/sessions/{sid}/logs")),
            ("POST", format!("/api/v1/sessions/{sid}/terminal")),
        ]
    };
    async fn call(c: &Client, method: &str, path: &str) -> crate::common::Reply {
        match method {
            "GET" => c.get(path).await,
            "DELETE" => c.delete(path).await,
            _ => c.post(path, &json!({})).await,
        }
    }
    for ((m, theirs), (_, missing)) in paths(&id).into_iter().zip(paths(&random)) {
        let a = call(&bob, m, &theirs).await;
        let b = call(&bob, m, &missing).await;
        assert_problem(&a, 404, "not-found");
        assert_problem(&b, 404, "not-found");
        assert_eq!(
            a.body, b.body,
            "{m} {theirs}: another user's session must look missing"
        );
        let bad = call(&bob, m, &theirs.replace(&id, "not-a-uuid")).await;
        assert_problem(&bad, 404, "not-found");
        assert_eq!(bad.body, b.body, "{m}: a malformed id must look missing");
    }

    // Bob's DELETE did nothing; Bob's list has only his own session.
    let mine = alice.session(&id).await;
    assert!(
        !matches!(
            mine["status"].as_str(),
            Some("TERMINATING" | "TERMINATED" | "CANCELLED")
        ),
        "{mine}"
    );
    let bobs: Vec<Value> = bob.sessions().await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["id"], bob_own["id"]);
    let alices = alice.sessions().await;
    assert_eq!(alices.len(), 1);
    assert_eq!(alices[0]["id"], id.as_str());

    // The admin sees both, but a terminal is only ever the owner's.
    let all = admin.sessions().await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(admin.session(&id).await["id"], id.as_str());
    wait_status(&alice, &id, "RUNNING", START).await;
    let r = admin
        .post(&format!("/api/v1/sessions/{id}/terminal"), &json!({}))
        .await;
    assert_problem(&r, 404, "not-found");
    // The owner can.
    assert!(alice.terminal_url(&id).await.starts_with("ws://"));
    end_session(&bob, bob_own["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn batch_session_ends_with_its_exit_code_and_logs() {
    let app = TestApp::spawn().await;
    let c = app.user("alice").await;
    let s = c
        .create_session(json!({
            "name": "job", "type": "batch", "image": IMAGE,
            "command": "echo done; exit 3",
            "resources": {"cpu": "0.1", "mem": "128m"},
        }))
        .await;
    assert_eq!(s["type"], "batch");
    let id = s["id"].as_str().unwrap();
    let done = wait_status(&c, id, "TERMINATED", START).await;
    assert_eq!(done["exit_code"], 3, "{done}");
    assert!(
        done["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains('3')),
        "{done}"
    );
    let logs = c.get(&format!("/api/v1/sessions/{id}/logs")).await;
    assert_eq!(logs.status, 200);
    assert!(logs.text().contains("done"), "logs: {:?}", logs.text());
    assert_eq!(statuses(&c.history(id).await).last(), Some(&"TERMINATED"));
    wait_until("the batch container to be removed", START, || async {
        app.instance_containers().is_empty()
    })
    .await;
}

#[tokio::test]
async fn killed_container_puts_the_session_in_error() {
    let app = TestApp::spawn().await;
    let c = app.user("alice").await;
    let s = c.create_session(small_session("victim")).await;
    let id = s["id"].as_str().unwrap();
    let running = wait_status(&c, id, "RUNNING", START).await;
    let cid = running["container_id"].as_str().unwrap();
    let (ok, _) = docker(&["kill", cid]);
    assert!(ok, "docker kill");
    let err = wait_status(&c, id, "ERROR", START).await;
    let reason = err["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("exit"),
        "reason should mention the exit: {reason}"
    );
    assert!(err["terminated_at"].as_str().is_some_and(is_rfc3339_utc));
    wait_until("the dead container to be removed", START, || async {
        app.instance_containers().is_empty()
    })
    .await;
    // The name is free again for a new session.
    let again = c.create_session(small_session("victim")).await;
    assert_eq!(again["status"], "PENDING");
    end_session(&c, again["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn terminating_a_session_while_it_starts_ends_terminated() {
    let app = TestApp::spawn().await;
    let c = app.user("alice").await;
    let mut events = crate::events::SseStream::open(&c).await;
    // The DELETE lands while the container is being created and started; whichever step
    // it interrupts, the session must end TERMINATED, not in ERROR with Docker's complaint.
    for i in 0..8 {
        let s = c.create_session(small_session(&format!("quick-{i}"))).await;
        let id = s["id"].as_str().unwrap();
        events.until(id, "PREPARING", START).await;
        c.delete(&format!("/api/v1/sessions/{id}"))
            .await
            .expect_json(200);
        wait_status(&c, id, "TERMINATED", START).await;
        let h = c.history(id).await;
        assert_eq!(
            statuses(&h)[h.len() - 2..],
            ["TERMINATING", "TERMINATED"],
            "{h:?}"
        );
    }
    wait_until("every container to be removed", START, || async {
        app.instance_containers().is_empty()
    })
    .await;
}

/// `logs?follow=true` streams a running session's output as it comes (the recent lines
/// first) and ends when the session ends; another user's session answers like a missing one,
/// and a follow value that is not a boolean is a validation problem.
#[tokio::test]
async fn logs_follow_a_running_session_live_and_end_with_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut body = small_session("ticker");
    body["type"] = json!("batch");
    body["command"] = json!("for i in $(seq 1 1000); do echo tick-$i; sleep 0.3; done");
    let s = alice.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;

    let r = alice
        .http
        .get(alice.url(&format!("/api/v1/sessions/{id}/logs?follow=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let mut chunks = r.bytes_stream();
    let mut seen = String::new();
    // New lines keep arriving on the one response.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("tick-12\n") {
        let chunk = tokio::time::timeout_at(deadline, chunks.next())
            .await
            .unwrap_or_else(|_| panic!("lines stopped coming: {seen:?}"))
            .expect("the stream ended early")
            .expect("a chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first = seen.find("tick-1\n").expect("the earlier lines come first");
    assert!(first < seen.find("tick-12\n").unwrap());

    assert_problem(
        &bob.get(&format!("/api/v1/sessions/{id}/logs?follow=true"))
            .await,
        404,
        "not-found",
    );
    // Eight follows at once per user; a ninth is told to close one.
    let follow_url = alice.url(&format!("/api/v1/sessions/{id}/logs?follow=true"));
    let mut held = Vec::new();
    for _ in 0..7 {
        let r = alice.http.get(&follow_url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        held.push(r);
    }
    let ninth = alice
        .get(&format!("/api/v1/sessions/{id}/logs?follow=true"))
        .await;
    let p = assert_problem(&ninth, 429, "too-many-requests");
    assert!(p["detail"].as_str().unwrap().contains("close one"), "{p}");
    drop(held);
    let bad = alice
        .get(&format!("/api/v1/sessions/{id}/logs?follow=maybe"))
        .await;
    let p = crate::common::assert_field_error(&bad, "query");
    assert!(p["detail"].as_str().unwrap().contains("follow"), "{p}");

    // Ending the session ends the stream.
    let r = alice.delete(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(c) = chunks.next().await {
            if c.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the follow stream outlived the session");
}
