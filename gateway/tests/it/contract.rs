//! The `api` crate is the whole wire contract: every JSON answer under `/api/v1` (and every
//! session event) decodes into its `api` type, and encoding the decoded value gives back
//! exactly what the server sent, so a field the type lacks, adds or spells differently fails
//! here. Requests are made of the `api` request types, so those are checked to be what the
//! server accepts. One live berth, one session launch.

use crate::common::{
    decode_strict, end_session, small_session, wait_status, Client, TestApp, IMAGE, USER_PASSWORD,
};
use crate::events::SseStream;
use api::auth::{ApiKey, CreateKey, CreateUser, CreatedKey, Secret, UpdateUser, User};
use api::images::{AppToken, AppUrl, ImageInfo};
use api::nodes::{Node, NodeState, UpdateNode};
use api::policy::{Policy, UserPolicy};
use api::projects::{AddMember, CreateProject, Project};
use api::resources::NumText;
use api::session::{
    CreateSession, HistoryEntry, MountRequest, Session, SessionStatus, TerminalUrl,
};
use api::vfolders::{
    CloneRequest, CreateVFolder, DeleteFilesRequest, DeletedFiles, FileEntry, FileList, Invitation,
    InviteRequest, Job, Member, MkdirRequest, MoveRequest, UpdateVFolder, VFolder,
};
use api::{Problem, ResourcesRequest, Shares};
use serde_json::json;
use std::time::{Duration, Instant};

/// A problem answer of `status` and type `/problems/{kind}`, decoded strictly.
#[track_caller]
fn problem(reply: &crate::common::Reply, status: u16, kind: &str) -> Problem {
    let p = reply.problem(status);
    assert_eq!(p.kind, format!("/problems/{kind}"), "{p:?}");
    assert_eq!(p.status, status, "{p:?}");
    p
}

/// Waits for a clone job to finish; returns its last answer.
async fn finished_job(c: &Client, id: &str) -> Job {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j: Job = c.get(&format!("/api/v1/jobs/{id}")).await.expect(200);
        if j.state != "RUNNING" {
            return j;
        }
        assert!(Instant::now() < deadline, "job {id} still running: {j:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_json_answer_is_exactly_its_api_type() {
    // Two declared GPUs: a node then reports whole devices and their shares together, which
    // no request may ask for, and its devices one by one.
    let app = TestApp::spawn_with_config("[node_gpus]\nlocal = 2\n").await;
    let admin = app.admin().await;
    let anon = app.anon();

    // Accounts.
    let me: User = admin.get("/api/v1/me").await.expect(200);
    assert_eq!(me.username, "admin");
    let alice: User = admin
        .post(
            "/api/v1/users",
            &CreateUser {
                username: "alice".into(),
                password: Secret(USER_PASSWORD.into()),
                role: None,
            },
        )
        .await
        .expect(201);
    app.create_user("bob", USER_PASSWORD, "user").await;
    let users: Vec<User> = admin.get("/api/v1/users").await.expect(200);
    assert_eq!(users.len(), 3);
    let _: User = admin
        .get(&format!("/api/v1/users/{}", alice.id))
        .await
        .expect(200);
    let _: User = admin
        .patch(
            &format!("/api/v1/users/{}", alice.id),
            &UpdateUser {
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect(200);
    let alice_c = app.login("alice", USER_PASSWORD).await;
    let bob_c = app.login("bob", USER_PASSWORD).await;

    // Policies: a total of resources, and one concurrent session so a second one waits.
    let defaults: Policy = admin.get("/api/v1/policies/default").await.expect(200);
    let _: Policy = admin
        .put(
            "/api/v1/policies/default",
            &json!({"max_vfolders": defaults.max_vfolders}),
        )
        .await
        .expect(200);
    let p: UserPolicy = admin
        .put(
            "/api/v1/users/alice/policy",
            &json!({"max_concurrent_sessions": 1, "max_total_resources": {"cpu": "4", "mem": "8g"}}),
        )
        .await
        .expect(200);
    assert!(p.policy.max_total_resources.is_some());
    let _: UserPolicy = alice_c
        .get(&format!("/api/v1/users/{}/policy", alice.id))
        .await
        .expect(200);

    // Keys: listed once used, with the time of that use.
    let key: CreatedKey = alice_c
        .post(
            "/api/v1/keys",
            &CreateKey {
                name: "laptop".into(),
            },
        )
        .await
        .expect(201);
    let by_key = anon
        .send(anon.http.get(anon.url("/api/v1/me")).bearer_auth(&key.key))
        .await;
    let _: User = by_key.expect(200);
    let keys: Vec<ApiKey> = alice_c.get("/api/v1/keys").await.expect(200);
    assert!(keys[0].last_used_at.is_some(), "{keys:?}");

    // Projects, with a member.
    let project: Project = admin
        .post(
            "/api/v1/projects",
            &CreateProject {
                name: "vision".into(),
                description: Some("Seeing things".into()),
            },
        )
        .await
        .expect(201);
    let project: Project = admin
        .post(
            &format!("/api/v1/projects/{}/members", project.id),
            &AddMember {
                user: "alice".into(),
            },
        )
        .await
        .expect(200);
    assert_eq!(project.members.len(), 1);
    let _: Project = admin
        .post(
            &format!("/api/v1/projects/{}/members", project.id),
            &AddMember { user: "bob".into() },
        )
        .await
        .expect(200);
    let _: Project = admin
        .delete(&format!("/api/v1/projects/{}/members/bob", project.id))
        .await
        .expect(200);
    let projects: Vec<Project> = admin.get("/api/v1/projects").await.expect(200);
    assert_eq!(projects.len(), 1);
    let _: Project = admin
        .get(&format!("/api/v1/projects/{}", project.id))
        .await
        .expect(200);

    // Images and the idle node: nothing allocated is still a node.
    let images: Vec<ImageInfo> = alice_c.get("/api/v1/images").await.expect(200);
    assert!(images.iter().any(|i| i.name.starts_with("berth/base")));
    let nodes: Vec<Node> = admin.get("/api/v1/nodes").await.expect(200);
    assert_eq!(nodes[0].allocated, api::Resources::default(), "{nodes:?}");
    assert_eq!(
        (nodes[0].capacity.gpu, nodes[0].capacity.gpu_shares),
        (2, Shares(200))
    );
    let local = nodes[0].id.clone();
    let n: Node = admin
        .patch(
            &format!("/api/v1/nodes/{local}"),
            &UpdateNode {
                state: "draining".into(),
            },
        )
        .await
        .expect(200);
    assert_eq!(n.state, NodeState::Draining);
    let n: Node = admin
        .patch(
            &format!("/api/v1/nodes/{local}"),
            &UpdateNode { state: "up".into() },
        )
        .await
        .expect(200);
    assert_eq!(n.state, NodeState::Up);

    // A folder with files, shared through an invitation, cloned, trashed and restored.
    let folder: VFolder = alice_c
        .post(
            "/api/v1/vfolders",
            &CreateVFolder {
                name: "data".into(),
                ..Default::default()
            },
        )
        .await
        .expect(201);
    let fid = folder.id.clone();
    let r = crate::vfolders::upload(&alice_c, &fid, "a.txt", b"hello").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let _: FileEntry = alice_c
        .post(
            &format!("/api/v1/vfolders/{fid}/mkdir"),
            &MkdirRequest { path: "dir".into() },
        )
        .await
        .expect(201);
    let _: FileEntry = alice_c
        .post(
            &format!("/api/v1/vfolders/{fid}/mkdir"),
            &MkdirRequest {
                path: "gone".into(),
            },
        )
        .await
        .expect(201);
    let _: FileEntry = alice_c
        .post(
            &format!("/api/v1/vfolders/{fid}/move"),
            &MoveRequest {
                from: "a.txt".into(),
                to: "dir/a.txt".into(),
            },
        )
        .await
        .expect(200);
    let d: DeletedFiles = alice_c
        .post(
            &format!("/api/v1/vfolders/{fid}/delete-files"),
            &DeleteFilesRequest {
                paths: vec!["gone".into()],
            },
        )
        .await
        .expect(200);
    assert_eq!(d.deleted, 1);
    // tus answers carry no JSON but their problems: a file already at the path is a 409.
    problem(
        &crate::vfolders::upload(&alice_c, &fid, "dir/a.txt", b"again").await,
        409,
        "conflict",
    );
    let files: FileList = alice_c
        .get(&format!("/api/v1/vfolders/{fid}/files?path=dir"))
        .await
        .expect(200);
    assert_eq!(files.entries.len(), 1, "{files:?}");
    let _: VFolder = alice_c
        .patch(
            &format!("/api/v1/vfolders/{fid}"),
            &UpdateVFolder {
                name: "dataset".into(),
            },
        )
        .await
        .expect(200);
    let inv: Invitation = alice_c
        .post(
            &format!("/api/v1/vfolders/{fid}/invitations"),
            &InviteRequest {
                user: "bob".into(),
                permission: "ro".into(),
            },
        )
        .await
        .expect(201);
    let sent: Vec<Invitation> = alice_c
        .get(&format!("/api/v1/vfolders/{fid}/invitations"))
        .await
        .expect(200);
    assert_eq!(sent.len(), 1);
    let inbox: Vec<Invitation> = bob_c.get("/api/v1/invitations").await.expect(200);
    assert_eq!(inbox.len(), 1);
    let shared: VFolder = bob_c
        .post(
            &format!("/api/v1/invitations/{}/accept", inv.id),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(shared.permission, api::vfolders::Permission::Ro);
    let members: Vec<Member> = alice_c
        .get(&format!("/api/v1/vfolders/{fid}/members"))
        .await
        .expect(200);
    assert_eq!(members.len(), 1);
    let job: Job = bob_c
        .post(
            &format!("/api/v1/vfolders/{fid}/clone"),
            &CloneRequest {
                name: "copy".into(),
            },
        )
        .await
        .expect(202);
    let job = finished_job(&bob_c, &job.id).await;
    assert_eq!(job.state, "DONE", "{job:?}");
    let copy = job.vfolder.expect("the clone's folder");
    let _: VFolder = bob_c
        .delete(&format!("/api/v1/vfolders/{copy}"))
        .await
        .expect(200);
    let trash: Vec<VFolder> = bob_c.get("/api/v1/vfolders?trash=true").await.expect(200);
    assert_eq!(trash.len(), 1);
    let _: VFolder = bob_c
        .post(&format!("/api/v1/vfolders/{copy}/restore"), &json!({}))
        .await
        .expect(200);

    // Sessions: one launch, watched on the event stream; a second one waits in the queue.
    let mut events = SseStream::open(&alice_c).await;
    let body = CreateSession {
        name: Some("contract".into()),
        image: IMAGE.into(),
        project: Some("vision".into()),
        resources: ResourcesRequest {
            gpu_shares: Some(NumText("0.3".into())),
            ..ResourcesRequest::new("0.1", "128m")
        },
        mounts: Some(vec![MountRequest {
            vfolder: "dataset".into(),
            path: Some("/data".into()),
            mode: Some("ro".into()),
        }]),
        env: Some([("GREETING".to_string(), "hi".to_string())].into()),
        preopen_ports: Some(vec![8000]),
        ..Default::default()
    };
    let s: Session = alice_c.post("/api/v1/sessions", &body).await.expect(201);
    assert_eq!(s.project.as_deref(), Some("vision"));
    // Every event decodes strictly (`SseStream::until`).
    events
        .until(&s.id, "RUNNING", Duration::from_secs(60))
        .await;
    wait_status(&alice_c, &s.id, "RUNNING", Duration::from_secs(30)).await;
    let s: Session = alice_c
        .get(&format!("/api/v1/sessions/{}", s.id))
        .await
        .expect(200);
    assert_eq!(s.status, SessionStatus::Running);
    assert!(!s.apps.is_empty() && !s.mounts.is_empty(), "{s:?}");
    let waiting: Session = alice_c
        .post("/api/v1/sessions", &small_session("waiting"))
        .await
        .expect(201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queue: Vec<Session> = admin.get("/api/v1/scheduler/queue").await.expect(200);
        if queue
            .iter()
            .any(|q| q.id == waiting.id && q.queue_position.is_some())
        {
            break;
        }
        assert!(Instant::now() < deadline, "not queued: {queue:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list: Vec<Session> = alice_c.get("/api/v1/sessions").await.expect(200);
    assert_eq!(list.len(), 2);
    let history: Vec<HistoryEntry> = alice_c
        .get(&format!("/api/v1/sessions/{}/history", s.id))
        .await
        .expect(200);
    assert!(history.len() >= 4, "{history:?}");
    let _: TerminalUrl = alice_c
        .post(&format!("/api/v1/sessions/{}/terminal", s.id), &json!({}))
        .await
        .expect(200);
    let _: AppUrl = alice_c
        .post(
            &format!("/api/v1/sessions/{}/apps/port-8000", s.id),
            &json!({}),
        )
        .await
        .expect(200);
    let _: AppToken = alice_c
        .get(&format!("/api/v1/sessions/{}/apps/port-8000/token", s.id))
        .await
        .expect(200);
    let nodes: Vec<Node> = admin.get("/api/v1/nodes").await.expect(200);
    assert_eq!(nodes[0].sessions, 1, "{nodes:?}");
    assert_eq!(nodes[0].allocated.gpu_shares, Shares(30), "{nodes:?}");
    assert!(
        nodes[0].gpus.iter().any(|d| d.allocated == "0.3"),
        "{nodes:?}"
    );
    let _: Node = admin
        .get(&format!("/api/v1/nodes/{local}"))
        .await
        .expect(200);
    let _: api::usage::UsageReport = admin.get("/api/v1/usage?group_by=node").await.expect(200);
    let _: api::usage::UsageReport = alice_c
        .get("/api/v1/usage?group_by=project&from=2025-01-01&to=2025-12-31")
        .await
        .expect(200);

    // Problems, each a strict `api::Problem`.
    let p = problem(
        &alice_c
            .post(
                "/api/v1/sessions",
                &CreateSession {
                    image: String::new(),
                    resources: ResourcesRequest::new("0", "1x"),
                    ..Default::default()
                },
            )
            .await,
        400,
        "validation",
    );
    assert!(p.errors.len() >= 3, "{p:?}");
    problem(&anon.get("/api/v1/me").await, 401, "unauthenticated");
    problem(&alice_c.get("/api/v1/nodes").await, 403, "forbidden");
    problem(
        &bob_c.get(&format!("/api/v1/sessions/{}", s.id)).await,
        404,
        "not-found",
    );
    problem(
        &alice_c.get("/api/v1/no-such-thing").await,
        404,
        "not-found",
    );
    problem(
        &alice_c
            .post(
                "/api/v1/vfolders",
                &CreateVFolder {
                    name: "dataset".into(),
                    ..Default::default()
                },
            )
            .await,
        409,
        "conflict",
    );
    problem(
        &bob_c
            .post(
                "/api/v1/sessions",
                &CreateSession {
                    image: IMAGE.into(),
                    resources: ResourcesRequest::new("4000", "128m"),
                    ..Default::default()
                },
            )
            .await,
        400,
        "unschedulable",
    );
    // On a client of its own: the gateway may close a connection it refused a body on.
    let once = app.login("bob", USER_PASSWORD).await;
    problem(
        &once
            .post_raw(
                "/api/v1/vfolders",
                "application/json",
                vec![b' '; (1 << 20) + 16],
            )
            .await,
        413,
        "too-large",
    );
    problem(
        &alice_c.put("/api/v1/sessions", &json!({})).await,
        405,
        "method-not-allowed",
    );
    problem(
        &alice_c
            .post_raw("/api/v1/vfolders", "text/plain", b"name".to_vec())
            .await,
        415,
        "unsupported-media-type",
    );

    // Ending: the answer to DELETE is the session too.
    let w: Session = alice_c
        .delete(&format!("/api/v1/sessions/{}", waiting.id))
        .await
        .expect(200);
    assert_eq!(w.status, SessionStatus::Cancelled);
    end_session(&alice_c, &s.id).await;
    let _: Session = decode_strict(
        &alice_c
            .get(&format!("/api/v1/sessions/{}", s.id))
            .await
            .body,
    );
}
