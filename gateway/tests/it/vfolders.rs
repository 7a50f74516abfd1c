//! VFolders against a real server, disk and containers: folder rules, the traversal set,
//! tus uploads (resumed after a broken connection, refused past the quota with nothing left
//! behind, expired), downloads (ranges, zip), sharing between users, clones, and mounts into
//! real session containers.

use crate::common::{
    assert_field_error, assert_problem, docker_ok, end_session, small_session, wait_status,
    wait_until, Client, Reply, TestApp, IMAGE,
};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub(crate) async fn folder(c: &Client, name: &str) -> String {
    let v = c
        .post("/api/v1/vfolders", &json!({ "name": name }))
        .await
        .expect_json(201);
    v["id"].as_str().expect("folder id").to_string()
}

/// `POST …/uploads` for `path` of `len` bytes.
pub(crate) async fn create_upload(c: &Client, folder: &str, path: &str, len: u64) -> Reply {
    c.send(
        c.http
            .post(c.url(&format!("/api/v1/vfolders/{folder}/uploads")))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header(
                "Upload-Metadata",
                api::vfolders::upload_metadata(path, Some("x")),
            ),
    )
    .await
}

async fn patch(c: &Client, location: &str, offset: u64, data: &[u8]) -> Reply {
    c.send(
        c.http
            .patch(c.url(location))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(data.to_vec()),
    )
    .await
}

async fn head_offset(c: &Client, location: &str) -> (u16, Option<u64>) {
    let r = c
        .send(
            c.http
                .head(c.url(location))
                .header("Tus-Resumable", "1.0.0"),
        )
        .await;
    let off = r
        .headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (r.status, off)
}

/// Uploads `data` to `path` in one PATCH; returns the final reply.
pub(crate) async fn upload(c: &Client, folder: &str, path: &str, data: &[u8]) -> Reply {
    let r = create_upload(c, folder, path, data.len() as u64).await;
    if r.status != 201 {
        return r;
    }
    let loc = location(&r);
    if data.is_empty() {
        return r;
    }
    patch(c, &loc, 0, data).await
}

fn location(r: &Reply) -> String {
    assert_eq!(r.status, 201, "upload creation: {}", r.text());
    assert_eq!(r.headers["tus-resumable"], "1.0.0");
    r.headers["location"]
        .to_str()
        .expect("location")
        .to_string()
}

async fn files(c: &Client, folder: &str, path: &str) -> Vec<String> {
    let v = c
        .get(&format!("/api/v1/vfolders/{folder}/files?path={path}"))
        .await
        .expect_json(200);
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub(crate) async fn download(c: &Client, folder: &str, path: &str) -> Reply {
    c.get(&format!("/api/v1/vfolders/{folder}/download?path={path}"))
        .await
}

fn dir_entries(p: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn folders_have_checked_names_a_trash_and_stay_private() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = folder(&alice, "datasets").await;
    let v = alice
        .get(&format!("/api/v1/vfolders/{id}"))
        .await
        .expect_json(200);
    assert_eq!(v["name"], "datasets");
    assert_eq!(v["type"], "user");
    assert_eq!(v["owner"], "alice");
    assert_eq!(v["permission"], "OWNER");
    assert_eq!(v["bytes"], 0);
    assert_eq!(v["quota_bytes"], 100u64 << 30, "the built-in quota");
    // On disk by id, not by name.
    assert!(app.data_dir().join("vfolders").join(&id).is_dir());
    assert!(!app.data_dir().join("vfolders/datasets").exists());

    let dup = alice
        .post("/api/v1/vfolders", &json!({"name": "datasets"}))
        .await;
    assert_problem(&dup, 409, "conflict");
    // Bob may use the same name: names are unique per owner.
    folder(&bob, "datasets").await;
    let long = "x".repeat(65);
    for bad in [".", "..", "a b", "a/b", long.as_str(), "a\0b", ""] {
        let r = alice
            .post("/api/v1/vfolders", &json!({ "name": bad }))
            .await;
        assert_field_error(&r, "name");
    }
    let r = alice
        .post(
            "/api/v1/vfolders",
            &json!({"name": "x", "type": "project", "project": "p"}),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = alice
        .post("/api/v1/vfolders", &json!({"name": "x", "color": "red"}))
        .await;
    assert_field_error(&r, "color");

    // Another user's folder answers like a missing one, whatever the call.
    for r in [
        bob.get(&format!("/api/v1/vfolders/{id}")).await,
        bob.patch(&format!("/api/v1/vfolders/{id}"), &json!({"name": "mine"}))
            .await,
        bob.delete(&format!("/api/v1/vfolders/{id}")).await,
        bob.get(&format!("/api/v1/vfolders/{id}/files")).await,
        download(&bob, &id, "").await,
        create_upload(&bob, &id, "a.txt", 1).await,
        bob.get("/api/v1/vfolders/not-a-uuid").await,
    ] {
        assert_problem(&r, 404, "not-found");
    }
    let missing = bob
        .get("/api/v1/vfolders/7d3c1f0e-0000-4000-8000-000000000000")
        .await;
    let other = bob.get(&format!("/api/v1/vfolders/{id}")).await;
    assert_eq!(
        missing.text(),
        other.text(),
        "missing and foreign answer alike"
    );

    // Rename, trash, restore, purge.
    let v = alice
        .patch(&format!("/api/v1/vfolders/{id}"), &json!({"name": "data"}))
        .await
        .expect_json(200);
    assert_eq!(v["name"], "data");
    let purge_live = alice
        .post(&format!("/api/v1/vfolders/{id}/purge"), &json!({}))
        .await;
    assert_problem(&purge_live, 409, "conflict");
    alice
        .delete(&format!("/api/v1/vfolders/{id}"))
        .await
        .expect_json(200);
    let list = alice.get("/api/v1/vfolders").await.expect_json(200);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["id"] != id.as_str()));
    let trash = alice
        .get("/api/v1/vfolders?trash=true")
        .await
        .expect_json(200);
    assert_eq!(trash[0]["id"], id.as_str());
    assert!(trash[0]["deleted_at"].is_string());
    let r = alice.get(&format!("/api/v1/vfolders/{id}/files")).await;
    assert_problem(&r, 409, "conflict");
    alice
        .post(&format!("/api/v1/vfolders/{id}/restore"), &json!({}))
        .await
        .expect_json(200);
    alice
        .delete(&format!("/api/v1/vfolders/{id}"))
        .await
        .expect_json(200);
    let r = alice
        .post(&format!("/api/v1/vfolders/{id}/purge"), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!app.data_dir().join("vfolders").join(&id).exists());
    assert_problem(
        &alice.get(&format!("/api/v1/vfolders/{id}")).await,
        404,
        "not-found",
    );

    // The policy's folder count, the trash included: a trashed folder keeps its space until
    // purged, so trashing one and making another must not take storage without bound.
    app.set_policy("alice", json!({"max_vfolders": 1})).await;
    let one = folder(&alice, "one").await;
    let r = alice
        .post("/api/v1/vfolders", &json!({"name": "two"}))
        .await;
    assert_problem(&r, 409, "quota");
    alice
        .delete(&format!("/api/v1/vfolders/{one}"))
        .await
        .expect_json(200);
    let p = assert_problem(
        &alice
            .post("/api/v1/vfolders", &json!({"name": "two"}))
            .await,
        409,
        "quota",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("in the trash"),
        "{p}"
    );
    // Restoring adds nothing to the count.
    alice
        .post(&format!("/api/v1/vfolders/{one}/restore"), &json!({}))
        .await
        .expect_json(200);
    alice
        .delete(&format!("/api/v1/vfolders/{one}"))
        .await
        .expect_json(200);
    let r = alice
        .post(&format!("/api/v1/vfolders/{one}/purge"), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    folder(&alice, "two").await;
}

#[tokio::test]
async fn file_operations_refuse_every_path_that_leaves_the_folder() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = folder(&alice, "work").await;
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/mkdir"),
            &json!({"path": "a/b"}),
        )
        .await
        .expect_json(201);
    assert_eq!(r["path"], "a/b");
    assert_eq!(r["kind"], "dir");
    assert_eq!(upload(&alice, &id, "a/b/c.txt", b"hello").await.status, 204);
    assert_eq!(files(&alice, &id, "a/b").await, vec!["c.txt"]);
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/mkdir"),
            &json!({"path": "a/b/c.txt"}),
        )
        .await;
    assert_problem(&r, 409, "conflict");

    let long = "n".repeat(300);
    let bad = ["../x", "/etc/passwd", "a/../../x", "a\0b", long.as_str()];
    for p in bad {
        let q = urlencode(p);
        assert_field_error(
            &alice
                .get(&format!("/api/v1/vfolders/{id}/files?path={q}"))
                .await,
            "path",
        );
        assert_field_error(&download(&alice, &id, &q).await, "path");
        assert_field_error(
            &alice
                .post(
                    &format!("/api/v1/vfolders/{id}/mkdir"),
                    &json!({ "path": p }),
                )
                .await,
            "path",
        );
        assert_field_error(
            &alice
                .post(
                    &format!("/api/v1/vfolders/{id}/move"),
                    &json!({"from": "a/b/c.txt", "to": p}),
                )
                .await,
            "to",
        );
        assert_field_error(
            &alice
                .post(
                    &format!("/api/v1/vfolders/{id}/move"),
                    &json!({"from": p, "to": "z"}),
                )
                .await,
            "from",
        );
        assert_field_error(
            &alice
                .post(
                    &format!("/api/v1/vfolders/{id}/delete-files"),
                    &json!({ "paths": [p] }),
                )
                .await,
            "paths[0]",
        );
        assert_field_error(&create_upload(&alice, &id, p, 3).await, "path");
    }
    // Nothing escaped, nothing was made outside.
    assert!(!app.data_dir().join("vfolders/x").exists());
    assert!(!app.data_dir().join("x").exists());

    // A symlink that leads out (as a session could make) is refused, and can be deleted.
    let dir = app.data_dir().join("vfolders").join(&id);
    std::os::unix::fs::symlink("/", dir.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("pw")).unwrap();
    assert_field_error(
        &alice
            .get(&format!("/api/v1/vfolders/{id}/files?path=escape"))
            .await,
        "path",
    );
    assert_field_error(&download(&alice, &id, "escape/etc/passwd").await, "path");
    assert_field_error(&download(&alice, &id, "pw").await, "path");
    assert_field_error(&create_upload(&alice, &id, "escape/tmp/x", 1).await, "path");
    assert_field_error(
        &alice
            .post(
                &format!("/api/v1/vfolders/{id}/mkdir"),
                &json!({"path": "escape/tmp/y"}),
            )
            .await,
        "path",
    );
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/delete-files"),
            &json!({"paths": ["escape", "pw"]}),
        )
        .await
        .expect_json(200);
    assert_eq!(r["deleted"], 2);
    assert!(std::path::Path::new("/etc/passwd").exists());

    // Move never overwrites; delete needs the path to exist.
    assert_eq!(upload(&alice, &id, "d.txt", b"other").await.status, 204);
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/move"),
            &json!({"from": "d.txt", "to": "a/b/c.txt"}),
        )
        .await;
    assert_problem(&r, 409, "conflict");
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/move"),
            &json!({"from": "d.txt", "to": "e/d2.txt"}),
        )
        .await
        .expect_json(200);
    assert_eq!(r["path"], "e/d2.txt");
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/delete-files"),
            &json!({"paths": ["nope"]}),
        )
        .await;
    assert_problem(&r, 404, "not-found");
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{id}/delete-files"),
            &json!({"paths": []}),
        )
        .await;
    assert_field_error(&r, "paths");

    // Paging: directories first, then by name.
    for i in 0..5 {
        assert_eq!(
            upload(&alice, &id, &format!("p/f{i}"), b"x").await.status,
            204
        );
    }
    alice
        .post(
            &format!("/api/v1/vfolders/{id}/mkdir"),
            &json!({"path": "p/zdir"}),
        )
        .await
        .expect_json(201);
    let v = alice
        .get(&format!(
            "/api/v1/vfolders/{id}/files?path=p&offset=1&limit=2"
        ))
        .await
        .expect_json(200);
    assert_eq!(v["total"], 6);
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["f0", "f1"]);
    assert_eq!(files(&alice, &id, "p").await[0], "zdir");
    assert_field_error(
        &alice
            .get(&format!("/api/v1/vfolders/{id}/files?limit=5000"))
            .await,
        "limit",
    );
    // An unknown query parameter is a sentence too, not the framework's text.
    let p = assert_field_error(
        &alice
            .get(&format!("/api/v1/vfolders/{id}/files?evil=1"))
            .await,
        "query",
    );
    assert!(p["detail"].as_str().unwrap().contains("evil"), "{p}");
    assert_problem(
        &alice
            .get(&format!("/api/v1/vfolders/{id}/files?path=none"))
            .await,
        404,
        "not-found",
    );
}

/// `s` percent-encoded as a query value (everything but RFC 3986's unreserved characters).
fn urlencode(s: &str) -> String {
    const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

#[tokio::test]
async fn tus_uploads_resume_after_a_broken_connection_and_never_overwrite() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let id = folder(&alice, "up").await;

    let r = alice
        .send(alice.http.request(
            reqwest::Method::OPTIONS,
            alice.url(&format!("/api/v1/vfolders/{id}/uploads")),
        ))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["tus-version"], "1.0.0");
    assert!(r.headers["tus-extension"]
        .to_str()
        .unwrap()
        .contains("creation"));

    // Protocol errors are sentences.
    let no_version = alice
        .send(
            alice
                .http
                .post(alice.url(&format!("/api/v1/vfolders/{id}/uploads")))
                .header("Upload-Length", "3")
                .header("Upload-Metadata", api::vfolders::upload_metadata("a", None)),
        )
        .await;
    assert_problem(&no_version, 412, "precondition-failed");
    let deferred = alice
        .send(
            alice
                .http
                .post(alice.url(&format!("/api/v1/vfolders/{id}/uploads")))
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Defer-Length", "1")
                .header("Upload-Metadata", api::vfolders::upload_metadata("a", None)),
        )
        .await;
    assert_field_error(&deferred, "Upload-Defer-Length");
    let no_path = alice
        .send(
            alice
                .http
                .post(alice.url(&format!("/api/v1/vfolders/{id}/uploads")))
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", "3"),
        )
        .await;
    assert_field_error(&no_path, "Upload-Metadata");
    let huge = create_upload(&alice, &id, "big", 1 << 41).await;
    assert_problem(&huge, 413, "too-large");

    // 1 MiB of patterned data, sent in two parts with a broken connection between.
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let loc = location(&create_upload(&alice, &id, "data/blob.bin", data.len() as u64).await);
    assert!(loc.starts_with(&format!("/api/v1/vfolders/{id}/uploads/")));
    let r = alice
        .send(
            alice
                .http
                .patch(alice.url(&loc))
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Offset", "0")
                .header("Content-Type", "application/json")
                .body("{}"),
        )
        .await;
    assert_problem(&r, 415, "unsupported-media-type");
    assert_problem(&patch(&alice, &loc, 5, &data[..10]).await, 409, "conflict");
    // Another user cannot see or feed the upload.
    assert_eq!(head_offset(&bob, &loc).await.0, 404);
    assert_problem(&patch(&bob, &loc, 0, &data[..10]).await, 404, "not-found");

    // A raw PATCH that promises the whole file, sends 300 000 bytes and drops the connection.
    let sent = 300_000usize;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        alice.cookie_header(),
        data.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&data[..sent]).await.unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(tcp);
    wait_until(
        "the partial upload to be recorded",
        Duration::from_secs(10),
        || async { head_offset(&alice, &loc).await.1 == Some(sent as u64) },
    )
    .await;
    let offset = sent as u64;
    // Nothing appears in the folder until the upload completes.
    assert!(files(&alice, &id, "").await.is_empty());
    let r = patch(&alice, &loc, offset, &data[offset as usize..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.headers["upload-offset"], data.len().to_string().as_str());
    let got = download(&alice, &id, "data/blob.bin").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["accept-ranges"], "bytes");
    assert!(
        got.body == data,
        "the resumed upload must equal what was sent"
    );
    assert_eq!(
        head_offset(&alice, &loc).await.0,
        404,
        "a finished upload is gone"
    );
    assert!(dir_entries(&app.data_dir().join("uploads")).is_empty());

    // Range requests.
    let r = alice
        .send(
            alice
                .http
                .get(alice.url(&format!(
                    "/api/v1/vfolders/{id}/download?path=data/blob.bin"
                )))
                .header("Range", "bytes=1000-1999"),
        )
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.headers["content-range"],
        format!("bytes 1000-1999/{}", data.len()).as_str()
    );
    assert!(r.body == data[1000..2000]);
    let r = alice
        .send(
            alice
                .http
                .get(alice.url(&format!(
                    "/api/v1/vfolders/{id}/download?path=data/blob.bin"
                )))
                .header("Range", "bytes=99999999-"),
        )
        .await;
    assert_eq!(r.status, 416);

    // Never over an existing file: refused at creation, and nothing is reserved.
    assert_problem(
        &create_upload(&alice, &id, "data/blob.bin", 3).await,
        409,
        "conflict",
    );
    // Two uploads racing for one path: the second to finish is dropped, the first kept.
    let l1 = location(&create_upload(&alice, &id, "race.txt", 3).await);
    let l2 = location(&create_upload(&alice, &id, "race.txt", 3).await);
    assert_eq!(patch(&alice, &l1, 0, b"one").await.status, 204);
    assert_problem(&patch(&alice, &l2, 0, b"two").await, 409, "conflict");
    assert_eq!(download(&alice, &id, "race.txt").await.body, b"one");

    // More bytes than announced: refused, nothing placed, nothing past the length kept.
    let l = location(&create_upload(&alice, &id, "short.txt", 4).await);
    assert_field_error(&patch(&alice, &l, 0, b"too long").await, "Upload-Length");
    assert!(!files(&alice, &id, "")
        .await
        .contains(&"short.txt".to_string()));
    assert_eq!(head_offset(&alice, &l).await.1, Some(4));
    // Termination removes the partial data.
    let r = alice
        .send(
            alice
                .http
                .delete(alice.url(&l))
                .header("Tus-Resumable", "1.0.0"),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(head_offset(&alice, &l).await.0, 404);
    assert!(dir_entries(&app.data_dir().join("uploads")).is_empty());
    // An empty file is placed at once.
    let r = create_upload(&alice, &id, "empty", 0).await;
    assert_eq!(r.status, 201);
    assert!(files(&alice, &id, "").await.contains(&"empty".to_string()));
}

#[tokio::test]
async fn quota_refuses_uploads_before_they_land_and_abandoned_ones_expire() {
    let app = TestApp::spawn_with_config("upload_expiry_s = 2\n").await;
    let alice = app.user("alice").await;
    let admin = app.admin().await;
    app.set_policy("alice", json!({"vfolder_quota_bytes": 1000}))
        .await;
    let id = folder(&alice, "small").await;
    let v = alice
        .get(&format!("/api/v1/vfolders/{id}"))
        .await
        .expect_json(200);
    assert_eq!(v["quota_bytes"], 1000);

    let r = create_upload(&alice, &id, "big.bin", 1500).await;
    let p = assert_problem(&r, 409, "quota");
    assert!(p["detail"].as_str().unwrap().contains("quota"), "{p}");
    assert!(dir_entries(&app.data_dir().join("uploads")).is_empty());
    assert!(files(&alice, &id, "").await.is_empty());

    // 600 bytes fit; a second 600 while the first is in flight does not (reserved).
    let l = location(&create_upload(&alice, &id, "a.bin", 600).await);
    assert_problem(
        &create_upload(&alice, &id, "b.bin", 600).await,
        409,
        "quota",
    );
    assert_eq!(patch(&alice, &l, 0, &[7u8; 600]).await.status, 204);
    let v = alice
        .get(&format!("/api/v1/vfolders/{id}"))
        .await
        .expect_json(200);
    assert_eq!(v["bytes"], 600);
    assert_problem(
        &create_upload(&alice, &id, "b.bin", 401).await,
        409,
        "quota",
    );
    assert_eq!(upload(&alice, &id, "c.bin", &[1u8; 400]).await.status, 204);

    // An abandoned upload expires with its partial data.
    let admin_folder = folder(&admin, "scratch").await;
    let l = location(&create_upload(&admin, &admin_folder, "half.bin", 100).await);
    assert_eq!(patch(&admin, &l, 0, &[1u8; 50]).await.status, 204);
    wait_until(
        "the abandoned upload to expire",
        Duration::from_secs(20),
        || async { head_offset(&admin, &l).await.0 == 404 },
    )
    .await;
    assert!(dir_entries(&app.data_dir().join("uploads")).is_empty());
    assert!(files(&admin, &admin_folder, "").await.is_empty());
}

/// Checks a zip with Python's zipfile inside the session image; returns `name:size` lines.
fn zip_listing(zip: &[u8]) -> String {
    let mut child = std::process::Command::new("docker")
        .args([
            "run", "--rm", "-i", "--network", "none", IMAGE, "python3", "-c",
            "import sys,io,zipfile\nz=zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\nassert z.testzip() is None\nfor i in z.infolist(): print(f'{i.filename}:{i.file_size}')",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker run");
    child.stdin.take().unwrap().write_all(zip).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "zipfile refused the archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn sharing_invitations_permissions_clone_and_project_folders() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let id = folder(&alice, "shared").await;
    assert_eq!(
        upload(&alice, &id, "docs/readme.txt", b"read me")
            .await
            .status,
        204
    );
    assert_eq!(upload(&alice, &id, "top.txt", b"top").await.status, 204);

    // Folder download as a zip that Python's zipfile accepts.
    let z = download(&alice, &id, "").await;
    assert_eq!(z.status, 200);
    assert_eq!(z.content_type(), "application/zip");
    assert!(z.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("shared.zip"));
    let listing = zip_listing(&z.body);
    for line in ["docs/:0", "docs/readme.txt:7", "top.txt:3"] {
        assert!(
            listing.lines().any(|l| l == line),
            "{line} missing from {listing}"
        );
    }

    // Invitations: bad ones are sentences.
    let inv_url = format!("/api/v1/vfolders/{id}/invitations");
    assert_field_error(
        &alice
            .post(&inv_url, &json!({"user": "bob", "permission": "owner"}))
            .await,
        "permission",
    );
    assert_field_error(
        &alice
            .post(&inv_url, &json!({"user": "nobody", "permission": "ro"}))
            .await,
        "user",
    );
    assert_field_error(
        &alice
            .post(&inv_url, &json!({"user": "alice", "permission": "ro"}))
            .await,
        "user",
    );
    assert_problem(
        &bob.post(&inv_url, &json!({"user": "carol", "permission": "ro"}))
            .await,
        404,
        "not-found",
    );
    let inv = alice
        .post(&inv_url, &json!({"user": "bob", "permission": "RO"}))
        .await
        .expect_json(201);
    assert_eq!(inv["permission"], "RO");
    assert_eq!(inv["state"], "PENDING");
    assert_problem(
        &alice
            .post(&inv_url, &json!({"user": "bob", "permission": "rw"}))
            .await,
        409,
        "conflict",
    );
    let inv_id = inv["id"].as_str().unwrap();
    // Only the invitee sees and answers it.
    assert!(carol
        .get("/api/v1/invitations")
        .await
        .expect_json(200)
        .as_array()
        .unwrap()
        .is_empty());
    assert_problem(
        &carol
            .post(&format!("/api/v1/invitations/{inv_id}/accept"), &json!({}))
            .await,
        404,
        "not-found",
    );
    let inbox = bob.get("/api/v1/invitations").await.expect_json(200);
    assert_eq!(inbox[0]["vfolder_name"], "shared");
    assert_eq!(inbox[0]["inviter"], "alice");
    let v = bob
        .post(&format!("/api/v1/invitations/{inv_id}/accept"), &json!({}))
        .await
        .expect_json(200);
    assert_eq!(v["permission"], "RO");
    assert_problem(
        &bob.post(&format!("/api/v1/invitations/{inv_id}/decline"), &json!({}))
            .await,
        409,
        "conflict",
    );
    let members = alice
        .get(&format!("/api/v1/vfolders/{id}/members"))
        .await
        .expect_json(200);
    assert_eq!(members[0]["username"], "bob");

    // Read-only: bob reads, cannot write, delete, rename or share.
    assert_eq!(download(&bob, &id, "top.txt").await.body, b"top");
    assert_problem(
        &create_upload(&bob, &id, "new.txt", 1).await,
        403,
        "forbidden",
    );
    assert_problem(
        &bob.post(
            &format!("/api/v1/vfolders/{id}/mkdir"),
            &json!({"path": "d"}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_problem(
        &bob.post(
            &format!("/api/v1/vfolders/{id}/delete-files"),
            &json!({"paths": ["top.txt"]}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_problem(
        &bob.patch(&format!("/api/v1/vfolders/{id}"), &json!({"name": "x"}))
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &bob.delete(&format!("/api/v1/vfolders/{id}")).await,
        403,
        "forbidden",
    );
    // Carol still sees nothing.
    assert_problem(
        &carol.get(&format!("/api/v1/vfolders/{id}/files")).await,
        404,
        "not-found",
    );

    // Clone into bob's own folder, with a job that reports progress.
    let job = bob
        .post(
            &format!("/api/v1/vfolders/{id}/clone"),
            &json!({"name": "mine"}),
        )
        .await
        .expect_json(202);
    assert_eq!(job["kind"], "clone");
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_problem(
        &alice.get(&format!("/api/v1/jobs/{job_id}")).await,
        404,
        "not-found",
    );
    wait_until("the clone to finish", Duration::from_secs(30), || async {
        bob.get(&format!("/api/v1/jobs/{job_id}"))
            .await
            .expect_json(200)["state"]
            != "RUNNING"
    })
    .await;
    let last: Value = bob
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .expect_json(200);
    assert_eq!(last["state"], "DONE", "{last}");
    assert_eq!(last["done_bytes"], 10);
    assert_eq!(last["total_bytes"], 10);
    let copy = last["vfolder"].as_str().unwrap().to_string();
    let v = bob
        .get(&format!("/api/v1/vfolders/{copy}"))
        .await
        .expect_json(200);
    assert_eq!(
        (
            v["permission"].as_str(),
            v["state"].as_str(),
            v["bytes"].as_u64()
        ),
        (Some("OWNER"), Some("READY"), Some(10))
    );
    assert_eq!(
        download(&bob, &copy, "docs/readme.txt").await.body,
        b"read me"
    );
    assert_eq!(upload(&bob, &copy, "bob.txt", b"b").await.status, 204);
    assert_field_error(
        &bob.post(
            &format!("/api/v1/vfolders/{id}/clone"),
            &json!({"name": "../x"}),
        )
        .await,
        "name",
    );

    // Leave; the folder answers like a missing one again.
    assert_problem(
        &alice
            .post(&format!("/api/v1/vfolders/{id}/leave"), &json!({}))
            .await,
        409,
        "conflict",
    );
    let r = bob
        .post(&format!("/api/v1/vfolders/{id}/leave"), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_problem(
        &bob.get(&format!("/api/v1/vfolders/{id}")).await,
        404,
        "not-found",
    );

    // Write-delete for carol, then unshare.
    let inv = alice
        .post(&inv_url, &json!({"user": "carol", "permission": "wd"}))
        .await
        .expect_json(201);
    carol
        .post(
            &format!("/api/v1/invitations/{}/accept", inv["id"].as_str().unwrap()),
            &json!({}),
        )
        .await
        .expect_json(200);
    assert_eq!(upload(&carol, &id, "carol.txt", b"c").await.status, 204);
    carol
        .post(
            &format!("/api/v1/vfolders/{id}/delete-files"),
            &json!({"paths": ["carol.txt"]}),
        )
        .await
        .expect_json(200);
    let r = alice
        .delete(&format!("/api/v1/vfolders/{id}/members/carol"))
        .await;
    assert_eq!(r.status, 204);
    assert_problem(
        &carol.get(&format!("/api/v1/vfolders/{id}")).await,
        404,
        "not-found",
    );
    // A declined invitation grants nothing.
    let inv = alice
        .post(&inv_url, &json!({"user": "carol", "permission": "rw"}))
        .await
        .expect_json(201);
    let r = carol
        .post(
            &format!(
                "/api/v1/invitations/{}/decline",
                inv["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_problem(
        &carol.get(&format!("/api/v1/vfolders/{id}")).await,
        404,
        "not-found",
    );

    // Project folders: made by admins, usable by every member.
    let admin = app.admin().await;
    let p = admin
        .post("/api/v1/projects", &json!({"name": "vision"}))
        .await
        .expect_json(201);
    let pid = p["id"].as_str().unwrap();
    admin
        .post(
            &format!("/api/v1/projects/{pid}/members"),
            &json!({"user": "bob"}),
        )
        .await;
    let pf = admin
        .post(
            "/api/v1/vfolders",
            &json!({"name": "team", "type": "project", "project": "vision"}),
        )
        .await
        .expect_json(201);
    assert_eq!(pf["type"], "project");
    assert_eq!(pf["owner"], "vision");
    let pf_id = pf["id"].as_str().unwrap();
    let v = bob
        .get(&format!("/api/v1/vfolders/{pf_id}"))
        .await
        .expect_json(200);
    assert_eq!(v["permission"], "WD");
    assert_eq!(upload(&bob, pf_id, "results.csv", b"1,2").await.status, 204);
    assert_problem(
        &carol.get(&format!("/api/v1/vfolders/{pf_id}")).await,
        404,
        "not-found",
    );
    assert_problem(
        &bob.post(&format!("/api/v1/vfolders/{pf_id}/leave"), &json!({}))
            .await,
        409,
        "conflict",
    );
    assert_field_error(
        &admin
            .post(
                "/api/v1/vfolders",
                &json!({"name": "t2", "type": "project", "project": "nope"}),
            )
            .await,
        "project",
    );
}

#[tokio::test]
async fn mounted_folders_are_visible_in_the_container_and_outlive_the_session() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let data = folder(&alice, "datasets").await;
    let out = folder(&alice, "results").await;
    assert_eq!(
        upload(&alice, &data, "train.csv", b"a,b\n1,2\n")
            .await
            .status,
        204
    );
    // Bob shares a folder with alice read-only.
    let bobs = folder(&bob, "refs").await;
    assert_eq!(upload(&bob, &bobs, "ref.txt", b"ref").await.status, 204);
    let inv = bob
        .post(
            &format!("/api/v1/vfolders/{bobs}/invitations"),
            &json!({"user": "alice", "permission": "ro"}),
        )
        .await
        .expect_json(201);
    alice
        .post(
            &format!("/api/v1/invitations/{}/accept", inv["id"].as_str().unwrap()),
            &json!({}),
        )
        .await
        .expect_json(200);

    // Bad mounts: each a sentence, no session made.
    let bad = [
        (json!([{"vfolder": "nope"}]), "mounts[0].vfolder"),
        (
            json!([{"vfolder": "datasets"}, {"vfolder": "datasets", "path": "x"}]),
            "mounts[1].vfolder",
        ),
        (
            json!([{"vfolder": "datasets", "path": "/etc"}]),
            "mounts[0].path",
        ),
        (
            json!([{"vfolder": "datasets", "path": "/home/work"}]),
            "mounts[0].path",
        ),
        (
            json!([{"vfolder": "datasets", "path": "../x"}]),
            "mounts[0].path",
        ),
        (
            json!([{"vfolder": "datasets", "mode": "rx"}]),
            "mounts[0].mode",
        ),
        (json!([{"vfolder": "refs", "mode": "rw"}]), "mounts[0].mode"),
        (
            json!([{"vfolder": "datasets", "path": "a"}, {"vfolder": "results", "path": "a/b"}]),
            "mounts",
        ),
        (
            json!([{"vfolder": "datasets", "path": "/data"}, {"vfolder": "results", "path": "/data"}]),
            "mounts",
        ),
    ];
    for (mounts, field) in bad {
        let mut body = small_session("bad");
        body["mounts"] = mounts;
        let r = alice.post("/api/v1/sessions", &body).await;
        assert_field_error(&r, field);
    }
    assert!(
        alice.sessions().await.is_empty(),
        "no session from a refused request"
    );
    // Bob's own folders are not alice's to mount by id either.
    let bobs_private = folder(&bob, "private").await;
    let mut body = small_session("bad");
    body["mounts"] = json!([{"vfolder": bobs_private}]);
    assert_field_error(
        &alice.post("/api/v1/sessions", &body).await,
        "mounts[0].vfolder",
    );

    let mut body = small_session("mounted");
    body["mounts"] = json!([
        {"vfolder": "datasets"},
        {"vfolder": out, "path": "/opt/out"},
        {"vfolder": "refs"},
    ]);
    let s = alice.create_session(body).await;
    let sid = s["id"].as_str().unwrap().to_string();
    let mounts = s["mounts"].as_array().unwrap();
    assert_eq!(mounts[0]["path"], "/home/work/datasets");
    assert_eq!(mounts[0]["mode"], "rw");
    assert_eq!(mounts[1]["path"], "/opt/out");
    assert_eq!(
        mounts[2]["mode"], "ro",
        "a read-only share mounts read-only"
    );
    let s = wait_status(&alice, &sid, "RUNNING", Duration::from_secs(60)).await;
    let cid = s["container_id"].as_str().unwrap().to_string();
    let sh = |cmd: &str| docker_ok(&["exec", "-u", "1000:1000", &cid, "sh", "-c", cmd]);
    assert_eq!(sh("cat /home/work/datasets/train.csv"), "a,b\n1,2\n");
    sh("echo done > /opt/out/result.txt && mkdir -p /home/work/datasets/new && echo x > /home/work/datasets/new/y");
    assert_eq!(sh("cat /home/work/refs/ref.txt"), "ref");
    let (ok, _) = crate::common::docker(&[
        "exec",
        "-u",
        "1000:1000",
        &cid,
        "sh",
        "-c",
        "echo no > /home/work/refs/w",
    ]);
    assert!(!ok, "a read-only mount refuses writes");
    // A symlink made inside the session that points at / stays unusable through the API.
    sh("ln -s / /home/work/datasets/escape");
    assert_field_error(
        &alice
            .get(&format!("/api/v1/vfolders/{data}/files?path=escape"))
            .await,
        "path",
    );
    assert_field_error(&download(&alice, &data, "escape/etc/passwd").await, "path");
    // Files written in the session belong to work and are seen by the API.
    assert_eq!(download(&alice, &out, "result.txt").await.body, b"done\n");
    assert!(files(&alice, &data, "").await.contains(&"new".to_string()));
    // A mounted folder cannot be purged while the session lives.
    alice
        .delete(&format!("/api/v1/vfolders/{out}"))
        .await
        .expect_json(200);
    assert_problem(
        &alice
            .post(&format!("/api/v1/vfolders/{out}/purge"), &json!({}))
            .await,
        409,
        "conflict",
    );
    alice
        .post(&format!("/api/v1/vfolders/{out}/restore"), &json!({}))
        .await
        .expect_json(200);

    end_session(&alice, &sid).await;
    // The data outlives the session.
    assert_eq!(download(&alice, &out, "result.txt").await.body, b"done\n");
    assert_eq!(download(&alice, &data, "new/y").await.body, b"x\n");
}

#[tokio::test]
async fn an_upload_whose_file_was_never_made_still_completes() {
    // As after a gateway killed between recording an upload and creating its file.
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = folder(&alice, "k").await;
    let loc = location(&create_upload(&alice, &id, "a.bin", 5).await);
    let upload = loc.rsplit('/').next().unwrap();
    std::fs::remove_file(app.data_dir().join("uploads").join(upload)).unwrap();
    assert_eq!(head_offset(&alice, &loc).await, (200, Some(0)));
    assert_eq!(patch(&alice, &loc, 0, b"hello").await.status, 204);
    assert_eq!(download(&alice, &id, "a.bin").await.body, b"hello");
}
