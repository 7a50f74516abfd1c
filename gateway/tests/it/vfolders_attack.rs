//! Attacks on folder file access, as a session could make them: a directory swapped for a
//! symlink to a secret outside the folder (`renameat2(RENAME_EXCHANGE)` in a tight loop) while
//! hundreds of downloads, zips, clones, uploads, moves and deletes run; and a FIFO, which
//! would hang a gateway that opened it for reading.

use crate::common::{Client, TestApp};
use crate::vfolders::{create_upload, download, folder as create_folder, upload};
use rustix::fs::{renameat_with, RenameFlags, CWD};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every file under `dir` with its bytes (links listed as `-> target`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if m.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(p);
            } else if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_swapped_for_a_symlink_never_leads_outside_the_folder() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory").await;
    app.set_policy(
        "mallory",
        json!({"max_vfolders": null, "vfolder_quota_bytes": null}),
    )
    .await;
    let id = create_folder(&mallory, "loot").await;
    let folder = app.data_dir().join("vfolders").join(&id);

    // Outside the folder: a secret, and files with the names the requests below touch, so a
    // path that was followed out would read, replace or delete them.
    let secret = format!("TOPSECRET-{}", uuid::Uuid::new_v4());
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path();
    std::fs::write(out.join("secret.txt"), &secret).unwrap();
    std::fs::create_dir(out.join("sub")).unwrap();
    std::fs::write(out.join("sub/secret.txt"), &secret).unwrap();
    for i in 0..40 {
        std::fs::write(out.join(format!("victim-{i}")), &secret).unwrap();
        std::fs::write(out.join(format!("mv-{i}")), &secret).unwrap();
    }
    // Inside: the same names with harmless bytes, in directory `d`, and the link beside it.
    for p in ["d/secret.txt", "d/sub/secret.txt"] {
        assert_eq!(upload(&mallory, &id, p, b"harmless").await.status, 204);
    }
    for i in 0..40 {
        assert_eq!(
            upload(&mallory, &id, &format!("d/victim-{i}"), b"v")
                .await
                .status,
            204
        );
        assert_eq!(
            upload(&mallory, &id, &format!("d/mv-{i}"), b"m")
                .await
                .status,
            204
        );
    }
    std::os::unix::fs::symlink(out, folder.join("link")).unwrap();
    let before = snapshot(out);

    // The swapper: `d` and `link` trade places as fast as the kernel allows.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, folder) = (stop.clone(), swaps.clone(), folder.clone());
        std::thread::spawn(move || {
            let (d, l) = (folder.join("d"), folder.join("link"));
            while !stop.load(Ordering::Relaxed) {
                renameat_with(CWD, &d, CWD, &l, RenameFlags::EXCHANGE).expect("exchange");
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let secret_b = secret.as_bytes().to_vec();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let ops: Vec<(&str, usize)> = vec![
        ("download", 120),
        ("zip", 40),
        ("list", 40),
        ("upload", 60),
        ("mkdir", 30),
        ("move", 40),
        ("delete", 40),
        ("clone", 8),
    ];
    let sem = Arc::new(tokio::sync::Semaphore::new(24));
    for (op, n) in ops {
        for i in 0..n {
            let c: Client = mallory.clone();
            let (id, secret, sem) = (id.clone(), secret_b.clone(), sem.clone());
            tasks.spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                match op {
                    "download" => {
                        let p = if i % 2 == 0 {
                            "d/secret.txt"
                        } else {
                            "d/sub/secret.txt"
                        };
                        let r = download(&c, &id, p).await;
                        assert!(!contains(&r.body, &secret), "a download read the secret");
                    }
                    "zip" => {
                        let p = if i % 2 == 0 { "d" } else { "" };
                        let r = download(&c, &id, p).await;
                        assert!(!contains(&r.body, &secret), "a zip held the secret");
                    }
                    "list" => {
                        let r = c
                            .get(&format!("/api/v1/vfolders/{id}/files?path=d/sub"))
                            .await;
                        assert!(r.status < 500, "listing: {}", r.text());
                    }
                    "upload" => {
                        let r = upload(&c, &id, &format!("d/up-{i}"), b"new").await;
                        assert!(r.status < 500, "upload: {}", r.text());
                    }
                    "mkdir" => {
                        let r = c
                            .post(
                                &format!("/api/v1/vfolders/{id}/mkdir"),
                                &json!({"path": format!("d/made-{i}/x")}),
                            )
                            .await;
                        assert!(r.status < 500, "mkdir: {}", r.text());
                    }
                    "move" => {
                        let r = c
                            .post(
                                &format!("/api/v1/vfolders/{id}/move"),
                                &json!({"from": format!("d/mv-{i}"), "to": format!("d/moved-{i}")}),
                            )
                            .await;
                        assert!(r.status < 500, "move: {}", r.text());
                    }
                    "delete" => {
                        let r = c
                            .post(
                                &format!("/api/v1/vfolders/{id}/delete-files"),
                                &json!({"paths": [format!("d/victim-{i}")]}),
                            )
                            .await;
                        assert!(r.status < 500, "delete: {}", r.text());
                    }
                    _ => {
                        let r = c
                            .post(
                                &format!("/api/v1/vfolders/{id}/clone"),
                                &json!({"name": format!("copy-{i}")}),
                            )
                            .await;
                        assert_eq!(r.status, 202, "clone: {}", r.text());
                    }
                }
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("an attack request");
    }
    // Clones finish in the background: wait for every job's folder to be ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = mallory.get("/api/v1/vfolders").await.expect_json(200);
        let pending = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"].as_str().unwrap_or("").starts_with("copy-"))
            .filter(|f| f["state"].as_str() == Some("CLONING"))
            .count();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "clones did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!(
        "{swaps} swaps during {:.1} s of requests",
        started.elapsed().as_secs_f64()
    );
    assert!(swaps > 1000, "the swapper hardly ran ({swaps} swaps)");

    // Nothing outside was created, changed or deleted.
    assert_eq!(
        snapshot(out),
        before,
        "something outside the folder changed"
    );
    // No clone holds the secret.
    for e in std::fs::read_dir(app.data_dir().join("vfolders"))
        .unwrap()
        .flatten()
    {
        for (p, bytes) in snapshot(&e.path()) {
            assert!(
                !contains(&bytes, &secret_b),
                "{} holds the secret",
                p.display()
            );
        }
    }
}

#[tokio::test]
async fn a_fifo_in_a_folder_is_shown_but_never_read() {
    let app = TestApp::spawn().await;
    let c = app.user("fifo").await;
    let id = create_folder(&c, "pipes").await;
    let dir = app.data_dir().join("vfolders").join(&id);
    assert_eq!(upload(&c, &id, "a.txt", b"a").await.status, 204);
    let st = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    // Several at once: each must answer at once, none may hold a blocking thread.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (c, id) = (c.clone(), id.clone());
        tasks.spawn(async move { download(&c, &id, "pipe").await });
    }
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("named pipe"), "{}", r.text());
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "downloads of a FIFO did not answer at once"
    );
    assert_eq!(app.anon().get("/healthz").await.status, 200);
    // Listed as what it is; a zip of the folder leaves it out and completes.
    let v = c
        .get(&format!("/api/v1/vfolders/{id}/files"))
        .await
        .expect_json(200);
    let kinds: Vec<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(kinds.contains(&("pipe".into(), "fifo".into())), "{kinds:?}");
    let zip = download(&c, &id, "").await;
    assert_eq!(zip.status, 200);
    assert!(contains(&zip.body, b"a.txt") && !contains(&zip.body, b"pipe"));
}

#[tokio::test]
async fn racing_uploads_cannot_pass_the_quota_together() {
    let app = TestApp::spawn().await;
    let alice = app.user("racer").await;
    app.set_policy("racer", json!({"vfolder_quota_bytes": 1000}))
        .await;
    let id = create_folder(&alice, "tight").await;
    // Forty creations of 100 bytes at once against a quota of 1000: ten fit, whatever the order.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (c, id) = (alice.clone(), id.clone());
        tasks.spawn(async move { create_upload(&c, &id, &format!("f-{i}"), 100).await.status });
    }
    let mut created = 0;
    while let Some(s) = tasks.join_next().await {
        match s.unwrap() {
            201 => created += 1,
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 10, "reservations raced past the quota");
}
