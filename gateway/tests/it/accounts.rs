//! Accounts: API keys on REST and websockets, revocation, the hash at rest, the role matrix,
//! disabling, password changes, login throttling, projects, policies, and the lifetime and
//! idle endings they enforce.

use crate::common::{
    assert_field_error, assert_problem, small_session, wait_status, Client, TestApp, USER_PASSWORD,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn bearer_get(c: &Client, key: &str, path: &str) -> crate::common::Reply {
    c.send(c.http.get(c.url(path)).bearer_auth(key)).await
}

async fn create_key(c: &Client, name: &str) -> Value {
    c.post("/api/v1/keys", &json!({"name": name}))
        .await
        .expect_json(201)
}

/// Reads websocket frames until `needle` shows up in the binary output.
async fn expect_output<S>(ws: &mut S, needle: &str)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                seen.extend_from_slice(&b);
                if String::from_utf8_lossy(&seen).contains(needle) {
                    return;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("terminal ended before {needle:?}: {other:?}"),
        }
    }
    panic!(
        "never saw {needle:?} in {:?}",
        String::from_utf8_lossy(&seen)
    );
}

#[tokio::test]
async fn api_keys_work_on_rest_and_websockets_and_revoke_at_once() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let created = create_key(&alice, "laptop").await;
    let key = created["key"]
        .as_str()
        .expect("the secret is returned once")
        .to_string();
    assert!(key.starts_with("berth_"), "{key}");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    // Listed by prefix, never with the secret.
    let list = alice.get("/api/v1/keys").await;
    let listed = list.expect_json(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        !list.text().contains(&key),
        "the list must not contain the secret"
    );
    assert!(listed[0].get("key").is_none());

    // A fresh client without cookies: the key is the only credential.
    let anon = app.anon();
    let me = bearer_get(&anon, &key, "/api/v1/me").await.expect_json(200);
    assert_eq!(me["username"], "alice");
    let listed = alice.get("/api/v1/keys").await.expect_json(200);
    assert!(
        listed[0]["last_used_at"].is_string(),
        "use is noted: {listed}"
    );

    // State-changing calls with a key need no Origin check and work from anywhere.
    let r = anon
        .send(
            anon.http
                .post(anon.url("/api/v1/sessions"))
                .bearer_auth(&key)
                .header("Origin", "http://elsewhere.example")
                .json(&small_session("by-key")),
        )
        .await;
    let s = r.expect_json(201);
    let id = s["id"].as_str().unwrap().to_string();
    wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;

    // The terminal: handle by key, websocket with the key too.
    let t = anon
        .send(
            anon.http
                .post(anon.url(&format!("/api/v1/sessions/{id}/terminal")))
                .bearer_auth(&key),
        )
        .await
        .expect_json(200);
    let mut req = t["url"].as_str().unwrap().into_client_request().unwrap();
    req.headers_mut()
        .insert(AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket with a key");
    ws.send(Message::Binary(b"echo key-$((40+2))\n".to_vec().into()))
        .await
        .unwrap();
    expect_output(&mut ws, "key-42").await;
    let _ = ws.close(None).await;

    // The secret is not at rest anywhere in the data dir (database, WAL, config).
    let mut found = Vec::new();
    for entry in std::fs::read_dir(app.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file()
            && std::fs::read(&path)
                .unwrap()
                .windows(key.len())
                .any(|w| w == key.as_bytes())
        {
            found.push(path);
        }
    }
    assert!(found.is_empty(), "the key is stored in {found:?}");

    // Revocation is immediate; malformed, unknown and other-scheme credentials are 401.
    let kid = created["id"].as_str().unwrap();
    let r = alice.delete(&format!("/api/v1/keys/{kid}")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_problem(
        &bearer_get(&anon, &key, "/api/v1/me").await,
        401,
        "unauthenticated",
    );
    assert_problem(
        &bearer_get(&anon, "berth_nonsense", "/api/v1/me").await,
        401,
        "unauthenticated",
    );
    let other = format!("berth_{}", "0".repeat(40));
    assert_problem(
        &bearer_get(&anon, &other, "/api/v1/me").await,
        401,
        "unauthenticated",
    );
    let r = anon
        .send(
            anon.http
                .get(anon.url("/api/v1/me"))
                .header(AUTHORIZATION, "Basic YTpi"),
        )
        .await;
    assert_problem(&r, 401, "unauthenticated");
    // Another user's key id answers like a missing one.
    let admin = app.admin().await;
    let bob_key = create_key(&admin, "admin-key").await;
    let r = alice
        .delete(&format!("/api/v1/keys/{}", bob_key["id"].as_str().unwrap()))
        .await;
    assert_problem(&r, 404, "not-found");
    // Bad key names.
    assert_field_error(
        &alice.post("/api/v1/keys", &json!({"name": ""})).await,
        "name",
    );
    assert_field_error(
        &alice
            .post("/api/v1/keys", &json!({"name": "x", "scope": "all"}))
            .await,
        "scope",
    );
    crate::common::end_session(&alice, &id).await;
}

#[tokio::test]
async fn every_admin_endpoint_refuses_a_plain_user() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice_json = app.create_user("alice", USER_PASSWORD, "user").await;
    app.create_user("bob", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let project = admin
        .post(
            "/api/v1/projects",
            &json!({"name": "ml", "description": "the ML team"}),
        )
        .await
        .expect_json(201);
    let pid = project["id"].as_str().unwrap();
    let aid = alice_json["id"].as_str().unwrap();
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v1/users".into(), None),
        (
            "POST",
            "/api/v1/users".into(),
            Some(json!({"username": "carol", "password": USER_PASSWORD})),
        ),
        ("GET", "/api/v1/users/bob".into(), None),
        (
            "PATCH",
            "/api/v1/users/bob".into(),
            Some(json!({"disabled": true})),
        ),
        (
            "POST",
            "/api/v1/projects".into(),
            Some(json!({"name": "mine"})),
        ),
        (
            "POST",
            format!("/api/v1/projects/{pid}/members"),
            Some(json!({"user": "alice"})),
        ),
        (
            "DELETE",
            format!("/api/v1/projects/{pid}/members/bob"),
            None,
        ),
        ("GET", "/api/v1/users/bob/policy".into(), None),
        (
            "PUT",
            "/api/v1/users/bob/policy".into(),
            Some(json!({"idle_timeout_s": 1})),
        ),
        (
            "PUT",
            format!("/api/v1/users/{aid}/policy"),
            Some(json!({"idle_timeout_s": null})),
        ),
        ("GET", "/api/v1/policies/default".into(), None),
        ("PUT", "/api/v1/policies/default".into(), Some(json!({}))),
    ];
    for (method, path, body) in &calls {
        let mut req = alice.http.request(method.parse().unwrap(), alice.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = alice.send(req).await;
        let p = assert_problem(&r, 403, "forbidden");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{method} {path}");
        // The admin passes the role check (whatever the call then says).
        let mut req = admin.http.request(method.parse().unwrap(), admin.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = admin.send(req).await;
        assert!(
            r.status != 403 && r.status < 500,
            "admin {method} {path}: {} {}",
            r.status,
            r.text()
        );
    }
    // Nothing the user tried happened.
    let users = admin.get("/api/v1/users").await.expect_json(200);
    assert!(
        !users.to_string().contains("carol")
            || users
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["username"] == "carol")
    );
    // A user reads their own policy, not by being an admin.
    alice
        .get("/api/v1/users/alice/policy")
        .await
        .expect_json(200);
    alice
        .get(&format!("/api/v1/users/{aid}/policy"))
        .await
        .expect_json(200);
}

#[tokio::test]
async fn admins_manage_users_within_their_rank_and_disabling_is_immediate() {
    let app = TestApp::spawn().await;
    let root = app.admin().await;
    app.create_user("ada", USER_PASSWORD, "admin").await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let ada = app.login("ada", USER_PASSWORD).await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let key = create_key(&alice, "k").await["key"]
        .as_str()
        .unwrap()
        .to_string();

    // An admin cannot promote to superadmin nor touch a superadmin.
    assert_problem(
        &ada.patch("/api/v1/users/alice", &json!({"role": "superadmin"}))
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &ada.patch("/api/v1/users/admin", &json!({"disabled": true}))
            .await,
        403,
        "forbidden",
    );
    // Bad input: unknown role, weak password, unknown field, nothing to change.
    for (body, field) in [
        (json!({"role": "king"}), "role"),
        (json!({"password": "short"}), "password"),
        (json!({"nickname": "x"}), "nickname"),
    ] {
        assert_field_error(&ada.patch("/api/v1/users/alice", &body).await, field);
    }
    assert_problem(
        &ada.patch("/api/v1/users/alice", &json!({})).await,
        400,
        "validation",
    );
    assert_problem(
        &ada.patch("/api/v1/users/nobody", &json!({"disabled": true}))
            .await,
        404,
        "not-found",
    );
    // Nobody disables themselves.
    assert_problem(
        &ada.patch("/api/v1/users/ada", &json!({"disabled": true}))
            .await,
        409,
        "conflict",
    );

    // Disabling stops the cookie and the key at once; enabling needs a new login and key.
    let r = ada
        .patch("/api/v1/users/alice", &json!({"disabled": true}))
        .await;
    assert_eq!(r.expect_json(200)["disabled"], true);
    assert_problem(&alice.get("/api/v1/me").await, 401, "unauthenticated");
    assert_problem(
        &bearer_get(&app.anon(), &key, "/api/v1/me").await,
        401,
        "unauthenticated",
    );
    let r = app.try_login(&app.anon(), "alice", USER_PASSWORD).await;
    assert_problem(&r, 401, "unauthenticated");
    root.patch("/api/v1/users/alice", &json!({"disabled": false}))
        .await
        .expect_json(200);
    // Disabling revoked the key for good: enabling the account does not bring it back.
    assert_problem(
        &bearer_get(&app.anon(), &key, "/api/v1/me").await,
        401,
        "unauthenticated",
    );

    // A user changes their own password; the old one stops working.
    let alice = app.login("alice", USER_PASSWORD).await;
    let r = alice
        .post(
            "/api/v1/me/password",
            &json!({"current_password": "wrong-password", "new_password": "a-new-password-1"}),
        )
        .await;
    assert_field_error(&r, "current_password");
    let r = alice
        .post(
            "/api/v1/me/password",
            &json!({"current_password": USER_PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_field_error(&r, "new_password");
    let r = alice
        .post(
            "/api/v1/me/password",
            &json!({"current_password": USER_PASSWORD, "new_password": "a-new-password-1"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    alice.get("/api/v1/me").await.expect_json(200);
    assert_problem(
        &app.try_login(&app.anon(), "alice", USER_PASSWORD).await,
        401,
        "unauthenticated",
    );
    app.login("alice", "a-new-password-1").await;
}

#[tokio::test]
async fn repeated_failed_logins_are_slowed_then_refused() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let c = app.anon();
    let mut slowest = Duration::ZERO;
    let mut locked = false;
    for _ in 0..12 {
        let t = Instant::now();
        let r = app.try_login(&c, "alice", "wrong-password!").await;
        slowest = slowest.max(t.elapsed());
        if r.status == 429 {
            let p = assert_problem(&r, 429, "too-many-requests");
            assert!(p["detail"].as_str().unwrap().contains("try again"), "{p}");
            locked = true;
            break;
        }
        assert_problem(&r, 401, "unauthenticated");
    }
    assert!(locked, "never refused with 429");
    assert!(
        slowest >= Duration::from_millis(200),
        "failures were never slowed: {slowest:?}"
    );
    // The right password is refused too while locked; another user is not.
    assert_eq!(app.try_login(&c, "alice", USER_PASSWORD).await.status, 429);
    app.login("admin", crate::common::ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn projects_group_users_and_sessions_name_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    app.create_user("bob", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let p = admin
        .post("/api/v1/projects", &json!({"name": "vision"}))
        .await
        .expect_json(201);
    assert_problem(
        &admin
            .post("/api/v1/projects", &json!({"name": "vision"}))
            .await,
        409,
        "conflict",
    );
    assert_field_error(
        &admin
            .post("/api/v1/projects", &json!({"name": "Bad Name"}))
            .await,
        "name",
    );
    assert_field_error(
        &admin
            .post(
                "/api/v1/projects/vision/members",
                &json!({"user": "nobody"}),
            )
            .await,
        "user",
    );
    let p2 = admin
        .post("/api/v1/projects/vision/members", &json!({"user": "alice"}))
        .await
        .expect_json(200);
    assert_eq!(p2["members"][0]["username"], "alice");

    // Alice sees her project; Bob sees none and cannot use it.
    let mine = alice.get("/api/v1/projects").await.expect_json(200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(
        bob.get("/api/v1/projects")
            .await
            .expect_json(200)
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_problem(
        &bob.get(&format!("/api/v1/projects/{}", p["id"].as_str().unwrap()))
            .await,
        404,
        "not-found",
    );
    let mut body = small_session("in-project");
    body["project"] = json!("vision");
    assert_field_error(&bob.post("/api/v1/sessions", &body).await, "project");
    let s = alice.create_session(body).await;
    assert_eq!(s["project"], "vision");
    crate::common::end_session(&alice, s["id"].as_str().unwrap()).await;

    let p3 = admin
        .delete("/api/v1/projects/vision/members/alice")
        .await
        .expect_json(200);
    assert!(p3["members"].as_array().unwrap().is_empty());
    assert_problem(
        &admin.delete("/api/v1/projects/vision/members/alice").await,
        404,
        "not-found",
    );
}

#[tokio::test]
async fn policies_layer_defaults_and_overrides_and_refuse_bad_values() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let put = |path: &'static str, body: Value| {
        let admin = &admin;
        async move { admin.put(path, &body).await }
    };
    let d = put(
        "/api/v1/policies/default",
        json!({"max_concurrent_sessions": 5, "idle_timeout_s": 3600}),
    )
    .await
    .expect_json(200);
    assert_eq!(d["max_concurrent_sessions"], 5);
    // Keys left out keep berth's built-in values, which are not unlimited.
    assert_eq!(d["max_vfolders"], 100);
    assert!(d["max_session_lifetime_s"].is_null());
    let p = put(
        "/api/v1/users/alice/policy",
        json!({"idle_timeout_s": null, "max_total_resources": {"cpu": "4", "mem": "8g"}}),
    )
    .await
    .expect_json(200);
    assert_eq!(p["max_concurrent_sessions"], 5, "inherited: {p}");
    assert!(
        p["idle_timeout_s"].is_null(),
        "overridden to unlimited: {p}"
    );
    assert_eq!(p["max_total_resources"]["cpu"], "4");
    assert_eq!(p["max_total_resources"]["mem"], 8u64 << 30);
    let mut over: Vec<String> = serde_json::from_value(p["overridden"].clone()).unwrap();
    over.sort();
    assert_eq!(over, vec!["idle_timeout_s", "max_total_resources"]);
    for (body, field) in [
        (json!({"idle_timeout_s": -5}), "idle_timeout_s"),
        (json!({"idle_timeout_s": "soon"}), "idle_timeout_s"),
        (
            json!({"max_concurrent_sessions": 1.5}),
            "max_concurrent_sessions",
        ),
        (
            json!({"max_total_resources": {"cpu": "0", "mem": "1g"}}),
            "max_total_resources",
        ),
        (json!({"colour": "blue"}), "colour"),
    ] {
        assert_field_error(&put("/api/v1/users/alice/policy", body).await, field);
    }
    assert_problem(
        &put("/api/v1/users/alice/policy", json!([1, 2])).await,
        400,
        "validation",
    );
    // Nothing changed by the refused calls.
    let again = admin
        .get("/api/v1/users/alice/policy")
        .await
        .expect_json(200);
    assert_eq!(again, p);
}

#[tokio::test]
async fn sessions_end_at_their_lifetime_and_when_idle() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    app.create_user("bob", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    admin
        .put(
            "/api/v1/users/alice/policy",
            &json!({"max_session_lifetime_s": 3}),
        )
        .await
        .expect_json(200);
    admin
        .put("/api/v1/users/bob/policy", &json!({"idle_timeout_s": 5}))
        .await
        .expect_json(200);

    let a = alice.create_session(small_session("short-lived")).await;
    let b = bob.create_session(small_session("idle-one")).await;
    let aid = a["id"].as_str().unwrap();
    let bid = b["id"].as_str().unwrap();

    // Bob keeps typing for a while: activity holds the idle timeout off.
    wait_status(&bob, bid, "RUNNING", Duration::from_secs(60)).await;
    let url = bob.terminal_url(bid).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    for i in 0..8 {
        ws.send(Message::Binary(
            format!("echo tick-{i}\n").into_bytes().into(),
        ))
        .await
        .unwrap();
        expect_output(&mut ws, &format!("tick-{i}")).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        bob.session(bid).await["status"],
        "RUNNING",
        "active sessions are not idle"
    );

    let s = wait_status(&alice, aid, "TERMINATED", Duration::from_secs(30)).await;
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .contains("maximum lifetime"),
        "{s}"
    );
    let _ = ws.close(None).await;
    let s = wait_status(&bob, bid, "TERMINATED", Duration::from_secs(30)).await;
    assert!(s["status_reason"].as_str().unwrap().contains("idle"), "{s}");
    let h = bob.history(bid).await;
    assert!(h.iter().any(|e| e["status"] == "TERMINATING" && e["reason"].as_str().unwrap().contains("idle")), "{h:?}");
}
