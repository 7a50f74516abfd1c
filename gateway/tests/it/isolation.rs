//! Sessions reach each other only through the proxy: a session dials another session's
//! container address (another user's, and its owner's own other session), a container that is
//! not berth's, and a service of the host through the bridge, and fails each time, while the
//! same port answers through the app proxy. On the local engine, on an added engine that
//! manages its own firewall (a `dockerd` in a network namespace of its own, with iptables), and
//! an engine without iptables is flagged in its node's state.

use crate::common::{
    docker, docker_ok, end_session, inspect, run_python, running_with_ports, wait_until, Client,
    ContainerGuard, NetnsEngine, TestApp, IMAGE,
};
use crate::nodes::SecondEngine;
use reqwest::header::{COOKIE, HOST};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

/// The sessions' network berth creates on every engine.
const NETWORK: &str = "berth-sessions";

/// A TCP server on port 8000 that answers every GET with "hello from A".
const SERVER: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"hello from A"
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"#;

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Whether a TCP connection from inside `container` (as the session's user) to `ip:port`
/// opens within 3 s. `host` is the engine (`-H`), empty for the local one.
fn dials(host: &str, container: &str, ip: &str, port: u16) -> bool {
    let program = format!(
        "import socket; socket.create_connection(({ip:?}, {port}), timeout=3).close(); print('connected')"
    );
    let mut args: Vec<&str> = Vec::new();
    if !host.is_empty() {
        args.extend(["-H", host]);
    }
    args.extend([
        "exec",
        "-u",
        "1000:1000",
        container,
        "python3",
        "-c",
        &program,
    ]);
    let (ok, out) = docker(&args);
    ok && out.contains("connected")
}

/// The container's address (on whichever network it is: the attack does not assume berth's).
fn address(host: &str, container: &str) -> String {
    let mut args: Vec<&str> = Vec::new();
    if !host.is_empty() {
        args.extend(["-H", host]);
    }
    args.extend([
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        container,
    ]);
    let out = docker_ok(&args);
    let ip = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(!ip.is_empty(), "{container} has no address");
    ip
}

/// The address of the bridge's gateway (the host side) of a network.
fn network_gateway(host: &str, network: &str) -> String {
    let mut args: Vec<&str> = Vec::new();
    if !host.is_empty() {
        args.extend(["-H", host]);
    }
    args.extend([
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        network,
    ]);
    docker_ok(&args).trim().to_string()
}

/// Opens the app through the proxy's one-use link and returns the body of `GET /`.
async fn through_proxy(app: &TestApp, c: &Client, id: &str, name: &str) -> (u16, String) {
    let (http, host, cookie) = crate::common::app_login(app, c, id, name).await;
    let r = http
        .get(format!("{}/", app.base))
        .header(HOST, &host)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// A container that is not berth's, on the engine's default bridge, serving on port 8001;
/// removed on drop.
fn bystander() -> ContainerGuard {
    let id = docker_ok(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--label",
        "berth.test=isolation-bystander",
        IMAGE,
        "python3",
        "-m",
        "http.server",
        "8001",
    ]);
    ContainerGuard(id.trim().to_string())
}

/// A container's address on the default bridge.
fn bridge_ip(container: &str) -> String {
    docker_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", container])
        .trim()
        .to_string()
}

#[tokio::test]
async fn sessions_cannot_dial_each_other_the_node_or_other_containers_but_the_proxy_reaches_them() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (a_id, a) = running_with_ports(&alice, "listener", &[8000]).await;
    let (a2_id, a2) = running_with_ports(&alice, "alices-other", &[]).await;
    let (b_id, b) = running_with_ports(&bob, "dialer", &[]).await;
    run_python(&a, SERVER);
    let bystander = bystander();

    // The port answers through the proxy (the way in berth gives)...
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = through_proxy(&app, &alice, &a_id, "port-8000").await;
        if status == 200 {
            assert_eq!(body, "hello from A");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A's server never answered through the proxy: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // ...and from inside A itself, so the server listens on the container's address...
    let a_ip = address("", &a);
    assert!(dials("", &a, &a_ip, 8000), "A reaches its own address");
    // ...but not from another user's session, nor from the owner's own other session.
    assert!(
        !dials("", &b, &a_ip, 8000),
        "bob's session must not reach alice's container at {a_ip}:8000"
    );
    assert!(
        !dials("", &a2, &a_ip, 8000),
        "alice's other session must not reach her container at {a_ip}:8000"
    );

    // A container that is not berth's, on the default bridge, is out of reach too.
    let by_ip = bridge_ip(&bystander.0);
    wait_until("the bystander to listen", Duration::from_secs(20), || {
        let id = bystander.0.clone();
        let ip = by_ip.clone();
        async move { dials("", &id, &ip, 8001) }
    })
    .await;
    assert!(
        !dials("", &b, &by_ip, 8001),
        "a session must not reach a container outside berth at {by_ip}:8001"
    );

    // A service of the host, listening on every address: the host reaches it through the
    // sessions' bridge address, a container of the default bridge through its own, and a
    // session not at all.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let gw = network_gateway("", NETWORK);
    assert!(
        std::net::TcpStream::connect_timeout(
            &format!("{gw}:{port}").parse().unwrap(),
            Duration::from_secs(3)
        )
        .is_ok(),
        "the host listener answers on {gw}:{port}"
    );
    // (The default bridge's IPAM has no gateway field: the container's settings do.)
    let default_gw = docker_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Gateway}}",
        &bystander.0,
    ])
    .trim()
    .to_string();
    assert!(
        dials("", &bystander.0, &default_gw, port),
        "a container outside berth reaches the host listener (so the block below is berth's)"
    );
    assert!(
        !dials("", &b, &gw, port),
        "a session must not reach the host's services through {gw}:{port}"
    );
    drop(listener);

    // The container runs on the sessions' network, never the default bridge.
    let nets = inspect(&a).unwrap()["NetworkSettings"]["Networks"].clone();
    let names: Vec<&String> = nets.as_object().unwrap().keys().collect();
    assert_eq!(names, [NETWORK], "{nets}");
    // No IPv6 inside, so nothing passes beside the IPv4 rules (link-local addresses).
    let (ok, out) = docker(&[
        "exec",
        &b,
        "cat",
        "/proc/sys/net/ipv6/conf/all/disable_ipv6",
        "/proc/net/if_inet6",
    ]);
    assert!(ok && out.trim() == "1", "{out}");
    let net: Value = serde_json::from_str(&docker_ok(&["network", "inspect", NETWORK])).unwrap();
    assert_eq!(
        net[0]["Options"]["com.docker.network.bridge.enable_icc"], "false",
        "{net}"
    );

    for (c, id) in [(&alice, &a_id), (&alice, &a2_id), (&bob, &b_id)] {
        end_session(c, id).await;
    }
}

#[tokio::test]
async fn an_added_engine_with_its_own_firewall_isolates_sessions_and_lets_them_out() {
    let engine = NetnsEngine::start(false, &[IMAGE]).await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let n = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "node4", "docker": engine.url()}),
        )
        .await
        .expect_json(201);
    assert_eq!(n["state"], "UP");
    assert_eq!(
        n["state_reason"], "The Docker engine answers.",
        "isolation holds there, nothing to warn about: {n}"
    );
    // Everything goes to node4.
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "draining"}))
        .await
        .expect_json(200);
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (a_id, a) = running_with_ports(&alice, "listener", &[8000]).await;
    let (b_id, b) = running_with_ports(&bob, "dialer", &[]).await;
    assert_eq!(alice.session(&a_id).await["node"], "node4");
    assert_eq!(bob.session(&b_id).await["node"], "node4");
    let h = engine.url();
    docker_ok(&[
        "-H",
        &h,
        "exec",
        "-d",
        "-u",
        "1000:1000",
        &a,
        "python3",
        "-c",
        SERVER,
    ]);
    let a_ip = address(&h, &a);
    wait_until("A's server to listen", Duration::from_secs(30), || {
        let (h, a, ip) = (h.clone(), a.clone(), a_ip.clone());
        async move { dials(&h, &a, &ip, 8000) }
    })
    .await;
    assert!(
        !dials(&h, &b, &a_ip, 8000),
        "bob's session must not reach alice's container at {a_ip}:8000 on node4"
    );

    // Outbound traffic leaves the node as Docker gives it: a listener beyond the node (the
    // host end of its link) answers a session.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(
        dials(&h, &b, &engine.host_ip, port),
        "a session on node4 reaches {}:{port} beyond its node",
        engine.host_ip
    );
    drop(listener);

    for (c, id) in [(&alice, &a_id), (&bob, &b_id)] {
        end_session(c, id).await;
    }
    admin.delete("/api/v1/nodes/node4").await;
}

#[tokio::test]
async fn an_engine_without_iptables_is_flagged_in_its_state() {
    // The second engine of the node tests runs with --iptables=false, on this host's network.
    let engine = SecondEngine::start().await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let n = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "node2", "docker": engine.url()}),
        )
        .await
        .expect_json(201);
    assert_eq!(n["state"], "UP", "{n}");
    let reason = n["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("Sessions on this node can reach each other")
            && reason.contains("iptables"),
        "{reason}"
    );
    admin.delete("/api/v1/nodes/node2").await;
}

#[tokio::test]
async fn instances_racing_to_create_the_network_agree_on_one_and_refuse_an_open_one() {
    use gateway::nodes::network::ensure_named;
    let name = format!("berth-it-race-{}", std::process::id());
    let docker = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    // Removed however the test ends.
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = sh(&format!(
                "docker network ls -q --filter name={0} | xargs -r docker network rm >/dev/null 2>&1",
                self.0
            ));
        }
    }
    let _cleanup = Cleanup(name.clone());
    // Eight instances connect to the engine at once.
    let tries = (0..8).map(|_| ensure_named(&docker, &name));
    let got: Vec<_> = futures_util::future::join_all(tries).await;
    let ids: Vec<String> = got
        .into_iter()
        .map(|r| r.expect("ensure succeeds").id)
        .collect();
    let (_, out) = sh(&format!(
        "docker network ls -q --no-trunc --filter name={name}"
    ));
    let left: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(left.len(), 1, "one network remains: {out}");
    // Each saw the one that remains, or one it then lost to it (and renews on first use).
    assert!(ids.iter().any(|i| i == left[0]), "{ids:?} {left:?}");
    let again = ensure_named(&docker, &name).await.unwrap();
    assert_eq!(again.id, left[0]);
    let inspect: Value = serde_json::from_str(&docker_ok(&["network", "inspect", &name])).unwrap();
    assert_eq!(
        inspect[0]["Options"]["com.docker.network.bridge.enable_icc"],
        "false"
    );

    // A network of that name that lets containers talk is refused, not used.
    docker_ok(&["network", "rm", &name]);
    docker_ok(&["network", "create", &name]);
    let e = ensure_named(&docker, &name).await.unwrap_err();
    assert!(e.contains("lets containers reach each other"), "{e}");
}
