//! Several nodes: a second real Docker engine on this machine (its own data root, exec root,
//! socket, bridge and cgroup parent — see ENVIRONMENT.md), added through the API; placement
//! across the two; an engine that stops answering mid-session (the node goes DOWN with the
//! reason, its session ends in ERROR, nothing is placed there) and comes back.

use crate::common::{
    assert_field_error, assert_problem, end_session, make_certs, small_session, wait_status,
    wait_until, Client, TestApp,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A second `dockerd` with the session image loaded; stopped and removed on drop.
pub struct SecondEngine {
    dir: PathBuf,
    child: Option<Child>,
    /// `HOST:PORT` of its TCP listener with mutual TLS, when started with it.
    tls_addr: Option<String>,
}

fn run(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

impl SecondEngine {
    pub async fn start() -> SecondEngine {
        Self::start_with("bn2", 250, false).await
    }

    /// Another engine (its own bridge) that also listens on TCP with mutual TLS.
    pub async fn start_tls() -> SecondEngine {
        Self::start_with("bn3", 251, true).await
    }

    /// Like [`SecondEngine::start_tls`], with a directory, bridge and network of its own, for
    /// a test that runs beside the one that uses that.
    pub async fn start_tls_apart() -> SecondEngine {
        Self::start_with("bn5", 253, true).await
    }

    /// `tag` names its directory, bridge and cgroup parent; its bridge is 172.31.`net`.1/24.
    async fn start_with(tag: &str, net: u8, tls: bool) -> SecondEngine {
        // Short paths: unix socket paths are limited to about 100 bytes.
        let dir = PathBuf::from(format!("/tmp/{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bridge = format!("br-node{}", &tag[2..]);
        // The bridge may exist from an earlier run; each step is idempotent.
        run(&format!(
            "ip link show {bridge} >/dev/null 2>&1 || ip link add {bridge} type bridge"
        ));
        run(&format!(
            "ip addr show {bridge} | grep -q 172.31.{net}.1 || ip addr add 172.31.{net}.1/24 dev {bridge}"
        ));
        run(&format!("ip link set {bridge} up"));
        let d = dir.display();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let mut args: Vec<String> = [
            "--data-root".to_string(),
            format!("{d}/data"),
            "--exec-root".to_string(),
            format!("{d}/x"),
            "--pidfile".to_string(),
            format!("{d}/docker.pid"),
            "-H".to_string(),
            format!("unix://{d}/docker.sock"),
            "--bridge".to_string(),
            bridge.clone(),
            "--cgroup-parent".to_string(),
            format!("/node{}", &tag[2..]),
            "--iptables=false".to_string(),
        ]
        .into();
        let mut tls_addr = None;
        if tls {
            let certs = dir.join("tls");
            make_certs(&certs, "127.0.0.1");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let c = certs.display();
            args.extend([
                "-H".to_string(),
                format!("tcp://{addr}"),
                "--tlsverify".to_string(),
                format!("--tlscacert={c}/ca.pem"),
                format!("--tlscert={c}/server.pem"),
                format!("--tlskey={c}/server-key.pem"),
            ]);
            tls_addr = Some(addr);
        }
        let child = Command::new("dockerd")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a second dockerd");
        let engine = SecondEngine {
            dir,
            child: Some(child),
            tls_addr,
        };
        wait_until(
            "the second engine to answer",
            Duration::from_secs(60),
            || async { run(&format!("docker -H {} info >/dev/null 2>&1", engine.url())).0 },
        )
        .await;
        let (ok, out) = run(&format!(
            "docker -H {} image inspect berth/base >/dev/null 2>&1 || docker save berth/base | docker -H {} load",
            engine.url(),
            engine.url()
        ));
        assert!(ok, "loading berth/base into the second engine: {out}");
        engine
    }

    /// The PEM text of one of the generated TLS files (`ca.pem`, `client.pem`, …).
    pub fn pem(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join("tls").join(file)).expect("a generated PEM file")
    }

    pub fn url(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    /// `tcp://HOST:PORT` of its TLS listener.
    pub fn tls_url(&self) -> String {
        format!(
            "tcp://{}",
            self.tls_addr.as_deref().expect("started with TLS")
        )
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            run(&format!("kill -{sig} {}", c.id()));
        }
    }

    /// Freezes the engine: it stops answering but its containers keep running, like a hung
    /// host.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// `docker ps -a` on this engine for the given label filter.
    pub fn containers(&self, label: &str) -> Vec<String> {
        let (_, out) = run(&format!(
            "docker -H {} ps -aq --filter label={label}",
            self.url()
        ));
        out.split_whitespace().map(str::to_string).collect()
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        self.thaw();
        if let Some(mut c) = self.child.take() {
            // Containers of this engine go with it (TERM stops them), then the state.
            let _ = run(&format!(
                "docker -H {} ps -aq | xargs -r docker -H {} rm -f >/dev/null 2>&1",
                self.url(),
                self.url()
            ));
            // Its networks too (berth's sessions network): their bridges live in the host's
            // namespace and would outlive the engine, each holding one of Docker's address
            // pools until no engine on the host could create a network.
            let _ = run(&format!(
                "docker -H {} network ls -q --filter type=custom | xargs -r docker -H {} network rm >/dev/null 2>&1",
                self.url(),
                self.url()
            ));
            run(&format!("kill -TERM {}", c.id()));
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the gateway keeps no node's TLS material (`DATA_DIR/nodes/` absent or empty).
fn no_tls_dirs(app: &TestApp) -> bool {
    match std::fs::read_dir(app.data_dir().join("nodes")) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    }
}

async fn node(admin: &Client, name: &str) -> Value {
    admin
        .get(&format!("/api/v1/nodes/{name}"))
        .await
        .expect_json(200)
}

async fn add_node(admin: &Client, engine: &SecondEngine) -> Value {
    admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "node2", "docker": engine.url(), "group": "spare"}),
        )
        .await
        .expect_json(201)
}

#[tokio::test]
async fn sessions_spread_over_two_engines_and_a_hung_engine_goes_down_and_comes_back() {
    let engine = SecondEngine::start().await;
    let app =
        TestApp::spawn_with_config("node_check_s = 1\nscheduler_placement = \"dispersed\"\n").await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;

    // Bad input: each a sentence, nothing added.
    let bad = [
        (
            json!({"name": "node2", "docker": "unix:///nonexistent/docker.sock"}),
            "docker",
        ),
        (json!({"name": "Node2", "docker": engine.url()}), "name"),
        (
            json!({"name": "node2", "docker": "tcp://10.0.0.1:2376"}),
            "docker",
        ),
        (json!({"name": "node2", "docker": "http://x"}), "docker"),
        (
            json!({"name": "node2", "docker": engine.url(), "group": "Bad Group"}),
            "group",
        ),
    ];
    for (body, field) in bad {
        assert_field_error(&admin.post("/api/v1/nodes", &body).await, field);
    }
    assert_problem(
        &admin
            .post(
                "/api/v1/nodes",
                &json!({"name": "local", "docker": engine.url()}),
            )
            .await,
        409,
        "conflict",
    );
    assert_problem(
        &alice
            .post(
                "/api/v1/nodes",
                &json!({"name": "node2", "docker": engine.url()}),
            )
            .await,
        403,
        "forbidden",
    );
    assert_problem(&alice.get("/api/v1/nodes").await, 403, "forbidden");
    // The local engine under another path (/var/run is a symlink to /run) is refused.
    let same = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "again", "docker": "unix:///run/docker.sock"}),
        )
        .await;
    let p = assert_problem(&same, 409, "conflict");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("same Docker engine as node local"),
        "{p}"
    );
    // TCP with TLS material that is not PEM: refused in a sentence naming it, nothing kept.
    let tls = json!({"ca": "-----BEGIN CERTIFICATE-----", "cert": "-----BEGIN CERTIFICATE-----", "key": "-----BEGIN PRIVATE KEY-----"});
    let r = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "remote", "docker": "tcp://127.0.0.1:2376", "tls": tls}),
        )
        .await;
    let p = assert_field_error(&r, "docker");
    assert!(p.to_string().contains("The CA"), "{p}");
    assert!(no_tls_dirs(&app), "refused TLS material is not kept");
    let list = admin.get("/api/v1/nodes").await.expect_json(200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "local");
    assert_eq!(list[0]["state"], "UP");

    // Added: capacity read from the engine.
    let n2 = add_node(&admin, &engine).await;
    assert_eq!(n2["state"], "UP");
    assert_eq!(n2["group"], "spare");
    assert!(n2["capacity"]["mem"].as_u64().unwrap() > 0, "{n2}");
    assert_problem(
        &admin
            .post(
                "/api/v1/nodes",
                &json!({"name": "node3", "docker": engine.url()}),
            )
            .await,
        409,
        "conflict",
    );

    // Dispersed placement puts two sessions on the two nodes.
    let a = alice.create_session(small_session("one")).await;
    let a_id = a["id"].as_str().unwrap().to_string();
    let a = wait_status(&alice, &a_id, "RUNNING", Duration::from_secs(60)).await;
    let b = alice.create_session(small_session("two")).await;
    let b_id = b["id"].as_str().unwrap().to_string();
    let b = wait_status(&alice, &b_id, "RUNNING", Duration::from_secs(60)).await;
    let mut placed = [a["node"].as_str().unwrap(), b["node"].as_str().unwrap()];
    placed.sort();
    assert_eq!(
        placed,
        ["local", "node2"],
        "dispersed: one session per node"
    );
    let (on2, on2_name) = if a["node"] == "node2" {
        (&a_id, "one")
    } else {
        (&b_id, "two")
    };
    let label = format!("berth.session={on2}");
    assert_eq!(
        engine.containers(&label).len(),
        1,
        "the container runs on the second engine"
    );
    let n2 = node(&admin, "node2").await;
    assert_eq!(n2["sessions"], 1);
    assert_eq!(n2["allocated"]["cpu"], "0.1");
    let r = admin.delete("/api/v1/nodes/node2").await;
    let p = assert_problem(&r, 409, "conflict");
    assert!(p["detail"].as_str().unwrap().contains(on2_name), "{p}");
    assert_problem(&admin.delete("/api/v1/nodes/local").await, 409, "conflict");

    // The engine hangs: the node goes DOWN with the reason; its session ends in ERROR.
    engine.freeze();
    wait_until("node2 to be DOWN", Duration::from_secs(60), || async {
        node(&admin, "node2").await["state"] == "DOWN"
    })
    .await;
    let n2 = node(&admin, "node2").await;
    assert!(
        n2["state_reason"]
            .as_str()
            .unwrap()
            .contains("did not answer 3 health checks"),
        "{n2}"
    );
    let s = wait_status(&alice, on2, "ERROR", Duration::from_secs(30)).await;
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("Node node2 went down"),
        "{s}"
    );
    // Read again: the node goes DOWN a moment before its sessions are put in ERROR.
    let n2 = node(&admin, "node2").await;
    assert_eq!(
        n2["sessions"], 0,
        "the errored session's allocation is released"
    );
    // Nothing is placed on a DOWN node.
    let c = alice.create_session(small_session("three")).await;
    let c = wait_status(
        &alice,
        c["id"].as_str().unwrap(),
        "RUNNING",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(c["node"], "local");

    // It answers again: UP, and the container left behind there is removed.
    engine.thaw();
    wait_until("node2 to be UP again", Duration::from_secs(60), || async {
        node(&admin, "node2").await["state"] == "UP"
    })
    .await;
    assert!(node(&admin, "node2").await["state_reason"]
        .as_str()
        .unwrap()
        .contains("answers again"));
    wait_until(
        "the orphaned container to be removed",
        Duration::from_secs(30),
        || async { engine.containers(&label).is_empty() },
    )
    .await;

    // Draining: running sessions stay, new ones go elsewhere.
    let d = admin
        .patch("/api/v1/nodes/local", &json!({"state": "draining"}))
        .await
        .expect_json(200);
    assert_eq!(d["state"], "DRAINING");
    let e = alice.create_session(small_session("four")).await;
    let e_id = e["id"].as_str().unwrap().to_string();
    let e = wait_status(&alice, &e_id, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(e["node"], "node2");
    // berth/jupyter is only on the local engine: while local is drained it waits and says
    // why (it is never sent to node2, which lacks the image), and starts once local is back.
    let mut body = small_session("lab");
    body["image"] = json!("berth/jupyter");
    body["resources"] = json!({"cpu": "0.25", "mem": "256m"});
    let j = alice.create_session(body).await;
    let j_id = j["id"].as_str().unwrap().to_string();
    wait_until(
        "the jupyter session to wait for its image",
        Duration::from_secs(20),
        || async {
            let s = alice.session(&j_id).await;
            s["status"] == "PENDING"
                && s["status_reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("image berth/jupyter is only on local")
        },
    )
    .await;
    assert_field_error(
        &admin
            .patch("/api/v1/nodes/local", &json!({"state": "DOWN"}))
            .await,
        "state",
    );
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "UP"}))
        .await
        .expect_json(200);
    let j = wait_status(&alice, &j_id, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(j["node"], "local");
    end_session(&alice, &j_id).await;
    for id in [
        a_id.as_str(),
        b_id.as_str(),
        c["id"].as_str().unwrap(),
        e_id.as_str(),
    ] {
        if id != on2.as_str() {
            end_session(&alice, id).await;
        }
    }
    let r = admin.delete("/api/v1/nodes/node2").await;
    assert_eq!(r.status, 204, "{}", r.text());
    drop(app);

    // Concentrated (the default) fills one node before the next.
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let bob = app.user("bob").await;
    add_node(&admin, &engine).await;
    let mut nodes = Vec::new();
    for name in ["c1", "c2"] {
        let s = bob.create_session(small_session(name)).await;
        let id = s["id"].as_str().unwrap().to_string();
        let s = wait_status(&bob, &id, "RUNNING", Duration::from_secs(60)).await;
        nodes.push(s["node"].as_str().unwrap().to_string());
        end_session(&bob, &id).await;
    }
    assert_eq!(nodes[0], nodes[1], "concentrated: both on one node");
}

/// `docker exec` env of a running container, as `NAME=VALUE` lines.
fn container_env(container: &str) -> String {
    crate::common::docker_ok(&["exec", container, "env"])
}

#[tokio::test]
async fn declared_gpus_are_shared_exactly_and_reach_the_container_as_environment() {
    let app = TestApp::spawn_with_config("[node_gpus]\nlocal = 2\n").await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let local = node(&admin, "local").await;
    assert_eq!(local["capacity"]["gpu"], 2, "{local}");
    assert_eq!(local["gpus"].as_array().unwrap().len(), 2);

    let gpu_session = |name: &str, field: &str, amount: &str| {
        let mut b = small_session(name);
        b["resources"][field] = json!(amount);
        b
    };
    // More than any node has: refused at once, nothing created.
    let r = alice
        .post("/api/v1/sessions", &gpu_session("big", "gpu", "3"))
        .await;
    assert_problem(&r, 400, "unschedulable");
    assert_field_error(
        &alice
            .post(
                "/api/v1/sessions",
                &gpu_session("fine", "gpu_shares", "0.005"),
            )
            .await,
        "resources.gpu_shares",
    );

    // 0.3 goes on one device; 0.8 does not fit next to it and takes the other (best fit).
    let a = alice
        .create_session(gpu_session("a", "gpu_shares", "0.3"))
        .await;
    let a = wait_status(
        &alice,
        a["id"].as_str().unwrap(),
        "RUNNING",
        Duration::from_secs(60),
    )
    .await;
    let env = container_env(a["container_id"].as_str().unwrap());
    assert!(
        env.contains("CUDA_VISIBLE_DEVICES=0\n") || env.contains("CUDA_VISIBLE_DEVICES=1\n"),
        "{env}"
    );
    assert!(
        env.contains("BERTH_GPU_SHARES=") && env.contains(":0.3\n"),
        "{env}"
    );
    let b = alice
        .create_session(gpu_session("b", "gpu_shares", "0.8"))
        .await;
    let b = wait_status(
        &alice,
        b["id"].as_str().unwrap(),
        "RUNNING",
        Duration::from_secs(60),
    )
    .await;
    let local = node(&admin, "local").await;
    let mut held: Vec<&str> = local["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["allocated"].as_str().unwrap())
        .collect();
    held.sort();
    assert_eq!(held, ["0.3", "0.8"], "{local}");
    // 0.9 more: 0.7 + 0.2 free, no even split fits (0.45 > 0.2): it waits and says why.
    let c = alice
        .create_session(gpu_session("c", "gpu_shares", "0.9"))
        .await;
    let c_id = c["id"].as_str().unwrap().to_string();
    wait_until(
        "the GPU session to say why it waits",
        Duration::from_secs(20),
        || async {
            let s = alice.session(&c_id).await;
            s["status"] == "PENDING" && s["status_reason"].as_str().unwrap_or("").contains("GPU")
        },
    )
    .await;
    // Ending the 0.8 session frees its device: 0.9 now fits on it.
    end_session(&alice, b["id"].as_str().unwrap()).await;
    let c = wait_status(&alice, &c_id, "RUNNING", Duration::from_secs(60)).await;
    let env = container_env(c["container_id"].as_str().unwrap());
    assert!(env.contains(":0.9\n"), "{env}");
    // A whole device: none is free (0.3 and 0.9 held) until the 0.3 session ends.
    let d = alice.create_session(gpu_session("d", "gpu", "1")).await;
    let d_id = d["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(alice.session(&d_id).await["status"], "PENDING");
    end_session(&alice, a["id"].as_str().unwrap()).await;
    let d = wait_status(&alice, &d_id, "RUNNING", Duration::from_secs(60)).await;
    let env = container_env(d["container_id"].as_str().unwrap());
    assert!(
        env.contains("BERTH_GPU_SHARES=") && env.contains(":1\n"),
        "{env}"
    );
    for id in [c["id"].as_str().unwrap(), d_id.as_str()] {
        end_session(&alice, id).await;
    }
    let local = node(&admin, "local").await;
    assert!(
        local["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["allocated"] == "0"),
        "{local}"
    );
}

/// Types `input` into the terminal at `url` and waits (20 s) for `needle` in its output.
pub async fn terminal_echo(url: &str, input: &str, needle: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("cannot open the terminal {url}: {e}"));
    let resize = json!({"type": "resize", "cols": 100, "rows": 30}).to_string();
    ws.send(Message::text(resize)).await.expect("send resize");
    ws.send(Message::binary(input.as_bytes().to_vec()))
        .await
        .expect("send input");
    let mut out = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ws.next().await {
            match msg.expect("terminal websocket") {
                Message::Binary(b) => {
                    out.extend_from_slice(&b);
                    if out.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        return true;
                    }
                }
                Message::Close(_) => return false,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "{needle:?} did not come back; output: {:?}",
        String::from_utf8_lossy(&out)
    );
    let _ = ws.close(None).await;
}

#[tokio::test]
async fn an_engine_over_tcp_with_mutual_tls_runs_sessions_and_terminals() {
    let engine = SecondEngine::start_tls().await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let tls = |ca: &str| {
        json!({
            "ca": engine.pem(ca),
            "cert": engine.pem("client.pem"),
            "key": engine.pem("client-key.pem"),
        })
    };

    // A CA that did not sign the engine's certificate: refused in a sentence, nothing kept.
    let r = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "remote", "docker": engine.tls_url(), "tls": tls("other-ca.pem")}),
        )
        .await;
    let p = assert_field_error(&r, "docker");
    let text = p.to_string();
    assert!(
        text.contains(&format!(
            "The Docker engine at {} refused the TLS handshake",
            engine.tls_url()
        )),
        "{p}"
    );
    let list = admin.get("/api/v1/nodes").await.expect_json(200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(no_tls_dirs(&app), "refused TLS material is not kept");

    // The right CA: UP, with the engine's capacity; the PEMs are kept private.
    let n = admin
        .post(
            "/api/v1/nodes",
            &json!({"name": "remote", "docker": engine.tls_url(), "tls": tls("ca.pem")}),
        )
        .await
        .expect_json(201);
    assert_eq!(n["state"], "UP", "{n}");
    assert_eq!(n["docker"], engine.tls_url());
    assert!(n["capacity"]["mem"].as_u64().unwrap() > 0, "{n}");
    assert_ne!(n["capacity"]["cpu"], "0", "{n}");
    let dir = app.data_dir().join("nodes").join(n["id"].as_str().unwrap());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("key.pem")).unwrap(),
            engine.pem("client-key.pem")
        );
    }

    // With local drained, a session lands on the TLS node; its terminal works over TLS.
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "draining"}))
        .await
        .expect_json(200);
    let s = alice.create_session(small_session("far")).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(s["node"], "remote", "{s}");
    assert_eq!(engine.containers(&format!("berth.session={id}")).len(), 1);
    let url = alice.terminal_url(&id).await;
    terminal_echo(&url, "echo over-tls-$((6*7))\r", "over-tls-42").await;
    end_session(&alice, &id).await;
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "UP"}))
        .await
        .expect_json(200);

    // Removed: its TLS material goes with it.
    let r = admin.delete("/api/v1/nodes/remote").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!dir.exists(), "{} is removed with the node", dir.display());
    assert!(no_tls_dirs(&app));
}

/// A second view of a directory at another path (a bind mount), as a shared filesystem
/// mounted elsewhere on another host would be; unmounted on drop.
struct OtherView(PathBuf);

impl OtherView {
    fn of(dir: &std::path::Path) -> OtherView {
        let at = PathBuf::from(format!("/tmp/berth-nfs-{}", std::process::id()));
        std::fs::create_dir_all(&at).unwrap();
        let (ok, out) = run(&format!("mount --bind {} {}", dir.display(), at.display()));
        assert!(ok, "bind-mounting the storage elsewhere: {out}");
        OtherView(at)
    }
}

impl Drop for OtherView {
    fn drop(&mut self) {
        run(&format!("umount {0} && rmdir {0}", self.0.display()));
    }
}

#[tokio::test]
async fn a_node_that_declares_where_it_sees_the_folder_storage_runs_sessions_with_folders() {
    use crate::vfolders::{folder, upload};
    let engine = SecondEngine::start_tls_apart().await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let body = |storage: Option<&str>| {
        let mut b = json!({"name": "far", "docker": engine.tls_url(), "tls": {
            "ca": engine.pem("ca.pem"),
            "cert": engine.pem("client.pem"),
            "key": engine.pem("client-key.pem"),
        }});
        if let Some(p) = storage {
            b["storage"] = json!(p);
        }
        b
    };

    // Storage paths that are not plain absolute paths are refused, naming the field.
    for bad in ["relative/dir", "/", "/mnt/../etc", "/mnt//x", "/mnt/x/"] {
        let r = admin.post("/api/v1/nodes", &body(Some(bad))).await;
        assert_field_error(&r, "storage");
    }

    // A TCP node that declared nothing gets no session with folders: it waits, saying why.
    let n = admin
        .post("/api/v1/nodes", &body(None))
        .await
        .expect_json(201);
    assert_eq!(n["folders"], false, "{n}");
    assert_eq!(n["storage"], Value::Null, "{n}");
    let local = node(&admin, "local").await;
    assert_eq!(
        local["folders"], true,
        "the gateway's own host sees it: {local}"
    );
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "draining"}))
        .await
        .expect_json(200);
    let data = folder(&alice, "datasets").await;
    assert_eq!(
        upload(&alice, &data, "train.csv", b"a,b\n1,2\n")
            .await
            .status,
        204
    );
    let mut with_folder = small_session("with-data");
    with_folder["mounts"] = json!([{"vfolder": "datasets", "mode": "rw"}]);
    let s = alice.create_session(with_folder.clone()).await;
    let waiting = s["id"].as_str().unwrap().to_string();
    wait_until("the waiting reason", Duration::from_secs(30), || async {
        alice.session(&waiting).await["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("see the folder storage")
    })
    .await;
    let s = alice.session(&waiting).await;
    assert_eq!(s["status"], "PENDING", "{s}");
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .contains("added with --storage"),
        "{s}"
    );
    let r = alice.delete(&format!("/api/v1/sessions/{waiting}")).await;
    assert!(r.status < 300, "{}", r.text());
    // A persistent home (the default) is a folder mount too: it waits the same way, saying so.
    let mut with_home = small_session("with-home");
    with_home.as_object_mut().unwrap().remove("home");
    let s = alice.create_session(with_home.clone()).await;
    assert_eq!(s["home"], "persistent");
    let waiting = s["id"].as_str().unwrap().to_string();
    wait_until(
        "the home's waiting reason",
        Duration::from_secs(30),
        || async {
            alice.session(&waiting).await["status_reason"]
                .as_str()
                .unwrap_or_default()
                .contains(
                    "mounts or a persistent home run only on nodes that see the folder storage",
                )
        },
    )
    .await;
    let r = alice.delete(&format!("/api/v1/sessions/{waiting}")).await;
    assert!(r.status < 300, "{}", r.text());

    // Added again with where it sees the storage (the data dir, mounted at another path, as
    // an NFS export would be on another host): the session runs there, from that path.
    let r = admin.delete("/api/v1/nodes/far").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let view = OtherView::of(&app.data_dir());
    let seen = view.0.display().to_string();
    let n = admin
        .post("/api/v1/nodes", &body(Some(&seen)))
        .await
        .expect_json(201);
    assert_eq!(n["folders"], true, "{n}");
    assert_eq!(n["storage"], seen, "{n}");
    let s = alice.create_session(with_folder).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(s["node"], "far", "{s}");
    let cid = s["container_id"].as_str().unwrap().to_string();
    let on_far = |cmd: &str| {
        let (ok, out) = run(&format!("docker -H {} {cmd}", engine.url()));
        assert!(ok, "{cmd}: {out}");
        out
    };
    let source = on_far(&format!(
        "inspect -f '{{{{range .Mounts}}}}{{{{.Source}}}}{{{{end}}}}' {cid}"
    ));
    assert_eq!(
        source.trim(),
        format!("{seen}/vfolders/{data}"),
        "bind-mounted from the node's own view"
    );
    assert_eq!(
        on_far(&format!("exec {cid} cat /home/work/datasets/train.csv")),
        "a,b\n1,2\n"
    );
    // What the session writes is in the folder, as the gateway's file manager sees it.
    on_far(&format!(
        "exec -u 1000 {cid} sh -c 'echo from-far > /home/work/datasets/out.txt'"
    ));
    let r = alice
        .get(&format!("/api/v1/vfolders/{data}/download?path=out.txt"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "from-far\n");
    end_session(&alice, &id).await;
    // The home, seeded on that engine, is mounted from the node's own view too.
    let s = alice.create_session(with_home).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(s["node"], "far", "{s}");
    let cid = s["container_id"].as_str().unwrap().to_string();
    let home = alice.get("/api/v1/vfolders").await.expect_json(200);
    let home = home
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "home")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .unwrap();
    let source = on_far(&format!(
        "inspect -f '{{{{range .Mounts}}}}{{{{.Source}}}}{{{{end}}}}' {cid}"
    ));
    assert_eq!(source.trim(), format!("{seen}/vfolders/{home}"));
    assert!(on_far(&format!("exec {cid} cat /home/work/.bashrc")).contains("berth session user"));
    end_session(&alice, &id).await;
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "UP"}))
        .await
        .expect_json(200);
}
