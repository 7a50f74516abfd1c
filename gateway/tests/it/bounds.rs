//! Containers are bounded: a fork bomb stays inside its session (the owner's
//! `max_processes`), a container's log cannot grow past its cap, no capability is left even
//! to root in an exec, environment names berth and the GPU runtime rely on are refused at
//! create, folder names cannot hide files of the home, and a fresh install's policy is not
//! unlimited.

use crate::common::{
    assert_field_error, assert_problem, docker, end_session, inspect, running_with_ports,
    small_session, wait_status, wait_until, TestApp,
};
use serde_json::{json, Value};
use std::time::Duration;

/// The container's current process count, read from its pids cgroup on the host.
fn pids_current(container: &str) -> Option<u64> {
    [
        format!("/sys/fs/cgroup/pids/docker/{container}/pids.current"),
        format!("/sys/fs/cgroup/docker/{container}/pids.current"),
        format!("/sys/fs/cgroup/system.slice/docker-{container}.scope/pids.current"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .and_then(|s| s.trim().parse().ok())
}

#[tokio::test]
async fn a_fork_bomb_stays_inside_its_session() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    assert_field_error(
        &admin
            .put("/api/v1/users/alice/policy", &json!({"max_processes": 0}))
            .await,
        "max_processes",
    );
    admin
        .put("/api/v1/users/alice/policy", &json!({"max_processes": 64}))
        .await
        .expect_json(200);
    let (a_id, a) = running_with_ports(&alice, "bomb", &[]).await;
    let (b_id, b) = running_with_ports(&bob, "bystander", &[]).await;
    let limit = |c: &str| inspect(c).unwrap()["HostConfig"]["PidsLimit"].clone();
    assert_eq!(limit(&a), 64, "alice's policy");
    assert_eq!(limit(&b), 1024, "the built-in default");

    // The limit is in place (checked above, so the bomb cannot reach the host): set it off.
    let (ok, out) = docker(&[
        "exec",
        "-d",
        "-u",
        "1000:1000",
        &a,
        "bash",
        "-c",
        ":(){ :|:& };:",
    ]);
    assert!(ok, "{out}");
    let mut seen = 0;
    wait_until(
        "the bomb to fill its session's process limit",
        Duration::from_secs(30),
        || {
            let n = pids_current(&a).unwrap_or(0);
            seen = seen.max(n);
            async move { n >= 60 }
        },
    )
    .await;
    for _ in 0..20 {
        let n = pids_current(&a).unwrap_or(0);
        assert!(n <= 64, "{n} processes in a session limited to 64");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen <= 64, "{seen}");

    // Everyone else carries on: another session runs a command, the gateway answers.
    let (ok, out) = docker(&["exec", "-u", "1000:1000", &b, "sh", "-c", "echo still here"]);
    assert!(ok && out.contains("still here"), "{out}");
    let r = app.anon().get("/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        bob.session(&b_id).await["status"],
        "RUNNING",
        "bob's session is unaffected"
    );

    end_session(&alice, &a_id).await;
    end_session(&bob, &b_id).await;
}

#[tokio::test]
async fn a_containers_log_stays_under_its_cap() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    // 40 MB of output in 1000-byte lines, then quiet.
    let mut body = small_session("chatty");
    body["command"] = json!(
        "head -c 40000000 /dev/zero | tr '\\0' x | fold -w 999; echo done-writing; sleep infinity"
    );
    let s = alice.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "RUNNING", Duration::from_secs(60)).await;
    let c = s["container_id"].as_str().unwrap().to_string();
    let info = inspect(&c).unwrap();
    assert_eq!(info["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(
        info["HostConfig"]["LogConfig"]["Config"],
        json!({"max-size": "10m", "max-file": "3"})
    );
    let log_path = info["LogPath"].as_str().unwrap().to_string();
    wait_until(
        "the command to write all its output",
        Duration::from_secs(120),
        || {
            let p = log_path.clone();
            async move {
                std::fs::read(&p)
                    .map(|b| b.windows(12).any(|w| w == b"done-writing"))
                    .unwrap_or(false)
            }
        },
    )
    .await;
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let current = size(&log_path);
    let all: u64 = (0..5)
        .map(|i| {
            if i == 0 {
                current
            } else {
                size(&format!("{log_path}.{i}"))
            }
        })
        .sum();
    // 40 MB of output is about 46 MB of json-file records: the cap holds it to 3 × 10 MiB.
    assert!(current <= 10 << 20, "the live log file is {current} bytes");
    assert!(all <= 30 << 20, "the log files hold {all} bytes in all");
    end_session(&alice, &id).await;
}

#[tokio::test]
async fn sessions_have_no_capabilities_even_for_root_in_an_exec() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (id, c) = running_with_ports(&alice, "caps", &[]).await;
    let info = inspect(&c).unwrap();
    assert_eq!(info["HostConfig"]["CapDrop"], json!(["ALL"]));
    assert!(
        info["HostConfig"]["SecurityOpt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "no-new-privileges"),
        "{}",
        info["HostConfig"]
    );
    for user in ["1000:1000", "0:0"] {
        let (ok, out) = docker(&["exec", "-u", user, &c, "grep", "^Cap", "/proc/self/status"]);
        assert!(ok, "{out}");
        for field in ["CapEff", "CapBnd", "CapPrm"] {
            let line = out
                .lines()
                .find(|l| l.starts_with(field))
                .unwrap_or_else(|| panic!("no {field} in {out}"));
            assert!(
                line.ends_with("0000000000000000"),
                "{user}: {line} (all: {out})"
            );
        }
    }
    // Root in an exec (berth never execs as root) can do nothing a capability guards.
    let root = |cmd: &str| docker(&["exec", "-u", "0:0", &c, "sh", "-c", cmd]);
    let (ok, out) = root("chown 4242 /home/work");
    assert!(!ok, "chown of another's file needs CAP_CHOWN: {out}");
    let (ok, out) = root("mknod /tmp/null c 1 3");
    assert!(!ok, "mknod needs CAP_MKNOD: {out}");
    let (ok, out) = root(
        "python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)'",
    );
    assert!(!ok, "a raw socket (ping) needs CAP_NET_RAW: {out}");
    end_session(&alice, &id).await;
}

#[tokio::test]
async fn environment_names_berth_and_the_gpu_runtime_rely_on_are_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    for name in [
        "BERTH_JUPYTER_TOKEN",
        "BERTH_SESSION_ID",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
        "LD_PRELOAD",
        "HOME",
    ] {
        let mut body = small_session("env");
        body["env"] = json!({ name: "all", "FINE": "yes" });
        let p = assert_field_error(
            &alice.post("/api/v1/sessions", &body).await,
            &format!("env.{name}"),
        );
        assert!(
            p.to_string().contains(&format!("{name} cannot be set")),
            "{p}"
        );
    }
    assert!(alice.sessions().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn folder_names_cannot_start_with_a_dot() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    for name in [".local", ".ssh", "..hidden"] {
        let p = assert_field_error(
            &alice.post("/api/v1/vfolders", &json!({"name": name})).await,
            "name",
        );
        assert!(p.to_string().contains("cannot start with '.'"), "{p}");
    }
    alice
        .post("/api/v1/vfolders", &json!({"name": "local"}))
        .await
        .expect_json(201);
}

#[tokio::test]
async fn a_fresh_install_is_not_unlimited() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let d = admin.get("/api/v1/policies/default").await.expect_json(200);
    assert_eq!(d["max_pending_sessions"], 10, "{d}");
    assert_eq!(d["max_vfolders"], 100, "{d}");
    assert_eq!(d["vfolder_quota_bytes"], 100u64 << 30, "{d}");
    assert_eq!(d["max_processes"], 1024, "{d}");
    let f = alice
        .post("/api/v1/vfolders", &json!({"name": "data"}))
        .await
        .expect_json(201);
    assert_eq!(f["quota_bytes"], 100u64 << 30, "{f}");

    // Nothing can start (the only node drains): sessions wait, ten at most.
    admin
        .patch("/api/v1/nodes/local", &json!({"state": "draining"}))
        .await
        .expect_json(200);
    for i in 0..10 {
        let s = alice
            .create_session(small_session(&format!("wait-{i}")))
            .await;
        assert_eq!(s["status"], "PENDING", "{s}");
    }
    let p = assert_problem(
        &alice
            .post("/api/v1/sessions", &small_session("one-too-many"))
            .await,
        409,
        "quota",
    );
    assert!(p["detail"].as_str().unwrap().contains("10 pending"), "{p}");

    // An administrator who wants no limit says so: null is unlimited.
    let d = admin
        .put(
            "/api/v1/policies/default",
            &json!({"max_pending_sessions": null, "max_processes": null}),
        )
        .await
        .expect_json(200);
    assert_eq!(d["max_pending_sessions"], Value::Null, "{d}");
    assert_eq!(d["max_processes"], Value::Null, "{d}");
    assert_eq!(d["vfolder_quota_bytes"], 100u64 << 30, "left out: built in");
    let s = alice.create_session(small_session("eleventh")).await;
    assert_eq!(s["status"], "PENDING", "{s}");
}
