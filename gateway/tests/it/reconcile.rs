//! A gateway killed with SIGKILL and restarted on the same data dir: running sessions are
//! kept, lost containers are explained, stray containers of this instance are removed, and
//! other instances' containers are left alone.

use crate::common::{
    docker, inspect, small_session, wait_status, wait_until, ContainerGuard, TestApp,
};
use std::time::Duration;

const START: Duration = Duration::from_secs(60);

#[tokio::test]
async fn restart_after_kill_reconciles_with_docker() {
    let mut app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let s1 = alice.create_session(small_session("keep")).await;
    let s2 = alice.create_session(small_session("lose")).await;
    let id1 = s1["id"].as_str().unwrap().to_string();
    let id2 = s2["id"].as_str().unwrap().to_string();
    let c1 = wait_status(&alice, &id1, "RUNNING", START).await["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    let c2 = wait_status(&alice, &id2, "RUNNING", START).await["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(alice);

    app.kill();

    // While it is down: one session's container vanishes, a stray of this instance appears,
    // and another berth instance's container runs beside them.
    let (ok, _) = docker(&["rm", "-f", &c2]);
    assert!(ok, "docker rm -f {c2}");
    let stray = ContainerGuard::run(&[
        format!("berth.instance={}", app.instance),
        format!("berth.session={}", uuid::Uuid::new_v4()),
        "berth.owner=nobody".to_string(),
    ]);
    let other_instance = uuid::Uuid::new_v4().to_string();
    let foreign = ContainerGuard::run(&[
        format!("berth.instance={other_instance}"),
        format!("berth.session={}", uuid::Uuid::new_v4()),
        "berth.owner=nobody".to_string(),
    ]);

    app.restart().await;
    let alice = app.login("alice", crate::common::USER_PASSWORD).await;

    let s1 = alice.session(&id1).await;
    assert_eq!(s1["status"], "RUNNING", "{s1}");
    assert_eq!(
        s1["container_id"],
        c1.as_str(),
        "same container after the restart"
    );
    assert_eq!(inspect(&c1).expect("container 1")["State"]["Running"], true);

    let s2 = wait_status(&alice, &id2, "ERROR", START).await;
    let reason = s2["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("container"),
        "the reason names the container: {reason}"
    );
    let last = alice.history(&id2).await.pop().expect("history");
    assert_eq!(last["status"], "ERROR");

    wait_until("the stray container to be removed", START, || async {
        inspect(&stray.0).is_none()
    })
    .await;
    let f = inspect(&foreign.0).expect("another instance's container must be left alone");
    assert_eq!(f["State"]["Running"], true);
    assert_eq!(app.instance_containers(), vec![c1.clone()]);

    // The restarted gateway still manages the surviving session.
    alice
        .delete(&format!("/api/v1/sessions/{id1}"))
        .await
        .expect_json(200);
    wait_status(&alice, &id1, "TERMINATED", START).await;
    assert!(inspect(&c1).is_none());
    assert!(inspect(&foreign.0).is_some());
    drop(foreign);
}
