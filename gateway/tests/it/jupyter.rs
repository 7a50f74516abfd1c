//! JupyterLab through the app proxy: no token prompt, the REST API and a kernel websocket
//! round trip (`print(6*7)` → `42`), all on the app's own origin.

use crate::common::{wait_status, TestApp, USER_PASSWORD};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{COOKIE, HOST};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn jupyterlab_runs_a_kernel_through_the_proxy() {
    let app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let images = alice.get("/api/v1/images").await.expect_json(200);
    let jupyter = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "berth/jupyter")
        .expect("berth/jupyter is built");
    assert_eq!(jupyter["apps"][0]["name"], "jupyter");
    let s = alice
        .create_session(json!({"name": "lab", "image": "berth/jupyter", "resources": {"cpu": "0.5", "mem": "512m"}}))
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_status(&alice, &id, "RUNNING", Duration::from_secs(90)).await;

    let url = alice
        .post(&format!("/api/v1/sessions/{id}/apps/jupyter"), &json!({}))
        .await
        .expect_json(200)["url"]
        .as_str()
        .unwrap()
        .to_string();
    let u = reqwest::Url::parse(&url).unwrap();
    let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String, cookie: Option<String>| {
        let mut req = http.get(format!("{}{path}", app.base)).header(HOST, &host);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send()
    };
    let r = get(format!("{}?{}", u.path(), u.query().unwrap()), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cookie = crate::common::set_cookie_pair(&r);

    // The starting page until JupyterLab listens, then its API, without any token from us.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = get("/api/status".into(), Some(cookie.clone()))
            .await
            .unwrap();
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            assert!(v.get("started").is_some(), "{v}");
            break;
        }
        assert_eq!(
            r.status(),
            503,
            "only the starting page before JupyterLab answers"
        );
        assert!(Instant::now() < deadline, "JupyterLab never answered");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The lab page itself, with no login form.
    let lab = get("/lab".into(), Some(cookie.clone())).await.unwrap();
    assert_eq!(lab.status(), 200);
    let html = lab.text().await.unwrap();
    assert!(
        !html.to_lowercase().contains("password or token"),
        "no token prompt"
    );

    let out = kernel_says(&app.base, &host, &cookie, "print(6*7)").await;
    assert_eq!(out.trim(), "42");

    // Through a raw TCP tunnel (what `berth app … jupyter` uses) the owner adds the token
    // themselves: the API hands it to the owner only.
    app.create_user("bob", USER_PASSWORD, "user").await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let r = bob
        .get(&format!("/api/v1/sessions/{id}/apps/jupyter/token"))
        .await;
    crate::common::assert_problem(&r, 404, "not-found");
    let token = alice
        .get(&format!("/api/v1/sessions/{id}/apps/jupyter/token"))
        .await
        .expect_json(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let tunnel_url = format!(
        "{}/api/v1/sessions/{id}/tunnel/jupyter",
        app.base.replacen("http", "ws", 1)
    );
    let mut req = tunnel_url.into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", alice.cookie_header().parse().unwrap());
    let (mut t, _) = tokio_tungstenite::connect_async(req).await.expect("tunnel");
    let get = format!("GET /api/status?token={token} HTTP/1.1\r\nHost: 127.0.0.1:9999\r\nConnection: close\r\n\r\n");
    t.send(Message::binary(get.into_bytes())).await.unwrap();
    let mut answer = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(20), t.next()).await {
        if let Message::Binary(b) = m {
            answer.extend_from_slice(&b);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let head = String::from_utf8_lossy(&answer).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    crate::common::end_session(&alice, &id).await;
}

/// Starts a python3 kernel through an app proxy at `base` (dialled with `Host: host` and the
/// app cookie), runs `code` over the kernel's websocket and returns what it printed.
pub async fn kernel_says(base: &str, host: &str, cookie: &str, code: &str) -> String {
    let http = reqwest::Client::new();
    let kernel: Value = http
        .post(format!("{base}/api/kernels"))
        .header(HOST, host)
        .header(COOKIE, cookie)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = kernel["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no kernel: {kernel}"));

    let ws_url = format!(
        "{}/api/kernels/{kid}/channels",
        base.replacen("http", "ws", 1)
    );
    let mut req = ws_url.into_client_request().unwrap();
    req.headers_mut().insert("host", host.parse().unwrap());
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("kernel websocket through the proxy");
    let msg = json!({
        "header": {"msg_id": "berth-1", "username": "test", "session": "berth-test", "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": false, "store_history": false, "user_expressions": {}, "allow_stdin": false, "stop_on_error": true}
    });
    ws.send(Message::text(msg.to_string())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        assert!(Instant::now() < deadline, "no output from the kernel");
        let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(60), ws.next()).await else {
            panic!("kernel websocket ended")
        };
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["msg_type"] == "stream" && v["parent_header"]["msg_id"] == "berth-1" {
            break v["content"]["text"].as_str().unwrap().to_string();
        }
    };
    out
}
