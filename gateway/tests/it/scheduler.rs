//! Admission by resource policy: sessions over a user's limits wait with the reason, start by
//! themselves when room frees up, and never hold up other users; requests a policy could
//! never admit, and pending sessions past the limit, are refused at once.

use crate::common::{
    assert_problem, end_session, small_session, wait_status, wait_until, TestApp, USER_PASSWORD,
};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn policies_admit_sessions_and_say_why_others_wait() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    app.create_user("bob", USER_PASSWORD, "user").await;
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    admin
        .put(
            "/api/v1/users/alice/policy",
            &json!({
                "max_concurrent_sessions": 1,
                "max_pending_sessions": 1,
                "max_total_resources": {"cpu": "0.5", "mem": "1g"}
            }),
        )
        .await
        .expect_json(200);

    // Beyond the policy's total, never: refused at once as a quota problem.
    let mut big = small_session("too-big");
    big["resources"] = json!({"cpu": "0.6", "mem": "128m"});
    let p = assert_problem(&alice.post("/api/v1/sessions", &big).await, 409, "quota");
    assert!(p["detail"].as_str().unwrap().contains("policy"), "{p}");

    let first = alice.create_session(small_session("first")).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    wait_status(&alice, &first_id, "RUNNING", Duration::from_secs(60)).await;
    let second = alice.create_session(small_session("second")).await;
    let second_id = second["id"].as_str().unwrap().to_string();

    // The second waits with the policy's sentence, and the queue says so.
    wait_until(
        "the policy's reason on the waiting session",
        Duration::from_secs(20),
        || async {
            let s = alice.session(&second_id).await;
            s["status_reason"]
                .as_str()
                .unwrap_or("")
                .contains("1 concurrent session")
        },
    )
    .await;
    let s = alice.session(&second_id).await;
    assert_eq!(s["status"], "PENDING");
    assert_eq!(s["queue_position"], 1);
    let q = alice.get("/api/v1/scheduler/queue").await.expect_json(200);
    assert_eq!(q.as_array().unwrap().len(), 1);
    assert_eq!(q[0]["id"], second_id.as_str());
    // One more pending is past max_pending_sessions.
    let p = assert_problem(
        &alice
            .post("/api/v1/sessions", &small_session("third"))
            .await,
        409,
        "quota",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("1 pending session"),
        "{p}"
    );

    // Alice's wait does not hold Bob up, and Bob does not see Alice's queue.
    let b = bob.create_session(small_session("bobs")).await;
    let bob_id = b["id"].as_str().unwrap().to_string();
    wait_status(&bob, &bob_id, "RUNNING", Duration::from_secs(60)).await;
    assert!(bob
        .get("/api/v1/scheduler/queue")
        .await
        .expect_json(200)
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        admin
            .get("/api/v1/scheduler/queue")
            .await
            .expect_json(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // When the first ends, the second starts by itself.
    end_session(&alice, &first_id).await;
    wait_status(&alice, &second_id, "RUNNING", Duration::from_secs(60)).await;
    end_session(&alice, &second_id).await;
    end_session(&bob, &bob_id).await;
}
