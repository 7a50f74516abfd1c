//! Persistent homes against a real server, disk and containers: a `pip install --user` that
//! outlives its session, the image's skeleton seeded on first use, clean homes, folders
//! mounted inside the home, two sessions sharing it, the rules that keep a home private and
//! in place (no sharing, renaming or deleting while used; its own quota; another user's is
//! missing), and a session that turns its home hostile.

use crate::common::{
    assert_field_error, assert_problem, docker, end_session, small_session, wait_status, Client,
    TestApp,
};
use crate::vfolders::{download, folder, upload};
use serde_json::{json, Value};
use std::time::Duration;

const JUPYTER: &str = "berth/jupyter";

/// The user's home folder as the folder list shows it (listing makes it).
async fn home_of(c: &Client) -> Value {
    let list = c.get("/api/v1/vfolders").await.expect_json(200);
    let homes: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == "home")
        .cloned()
        .collect();
    assert_eq!(homes.len(), 1, "one home in {list}");
    homes[0].clone()
}

/// A session that keeps the owner's home (the default).
fn persistent(name: &str, image: &str) -> Value {
    let mut b = small_session(name);
    b.as_object_mut().unwrap().remove("home");
    b["image"] = json!(image);
    if image == JUPYTER {
        b["resources"] = json!({"cpu": "0.25", "mem": "256m"});
    }
    b
}

async fn running(c: &Client, body: Value) -> (String, String) {
    let s = c.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(c, &id, "RUNNING", Duration::from_secs(90)).await;
    (id, s["container_id"].as_str().unwrap().to_string())
}

/// Runs `cmd` in the container as `work`; (success, output).
fn sh(cid: &str, cmd: &str) -> (bool, String) {
    docker(&["exec", "-u", "1000:1000", cid, "sh", "-c", cmd])
}

fn sh_ok(cid: &str, cmd: &str) -> String {
    let (ok, out) = sh(cid, cmd);
    assert!(ok, "{cmd}: {out}");
    out
}

/// A zip archive of `files`, stored (not compressed): enough for a wheel.
fn zip_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // stored
            h.extend(0u16.to_le_bytes()); // time
            h.extend(0x21u16.to_le_bytes()); // 1980-01-01
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend(0u16.to_le_bytes()); // comment
                h.extend(0u16.to_le_bytes()); // disk
                h.extend(0u16.to_le_bytes()); // internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend(*data);
        central.extend(head(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    let n = files.len() as u16;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A pure-Python wheel of module `berthx` (`X = 42`), made by hand: no index is reachable.
fn wheel() -> Vec<u8> {
    zip_stored(&[
        ("berthx.py", b"X = 42\n"),
        (
            "berthx-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: berthx\nVersion: 1.0\n",
        ),
        (
            "berthx-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: berth-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (
            "berthx-1.0.dist-info/RECORD",
            b"berthx.py,,\nberthx-1.0.dist-info/METADATA,,\nberthx-1.0.dist-info/WHEEL,,\nberthx-1.0.dist-info/RECORD,,\n",
        ),
    ])
}

#[tokio::test]
async fn a_pip_user_install_outlives_its_session_and_a_clean_home_sees_none_of_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let home = home_of(&alice).await;
    let hid = home["id"].as_str().unwrap().to_string();
    assert_eq!(home["name"], "home");
    assert_eq!(home["permission"], "OWNER");
    assert_eq!(home["owner"], "alice");
    assert_eq!(
        home["quota_bytes"],
        10u64 << 30,
        "the built-in home quota: {home}"
    );
    // Listed again: the same home, not a second one.
    assert_eq!(home_of(&alice).await["id"], hid.as_str());
    // Files go in through the API like any folder's.
    let r = upload(&alice, &hid, "wheels/berthx-1.0-py3-none-any.whl", &wheel()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Her own .profile, and a file in a directory the image's home has too: seeding keeps
    // both and fills in around them.
    for (path, body) in [
        (".profile", "# alice's own profile\n"),
        (".local/notes.txt", "mine\n"),
    ] {
        let r = upload(&alice, &hid, path, body.as_bytes()).await;
        assert_eq!(r.status, 204, "{path}: {}", r.text());
    }
    let data_id = folder(&alice, "data").await;
    assert_eq!(
        upload(&alice, &data_id, "in-data.txt", b"data")
            .await
            .status,
        204
    );
    let before = home_of(&alice).await;
    assert_eq!(before["id"], hid.as_str());

    // First session: the home is seeded from the image, the upload is still there.
    let mut first = persistent("first", JUPYTER);
    first["mounts"] = json!([{"vfolder": "data"}]);
    let s = alice.create_session(first).await;
    assert_eq!(s["home"], "persistent", "{s}");
    let sid = s["id"].as_str().unwrap().to_string();
    let cid = wait_status(&alice, &sid, "RUNNING", Duration::from_secs(90)).await["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The seeded files count at once, not at the next usage walk.
    let after = home_of(&alice).await;
    assert!(
        after["bytes"].as_u64().unwrap() > before["bytes"].as_u64().unwrap(),
        "the home's size after seeding: {after} (before: {before})"
    );
    let listing = sh_ok(&cid, "cd ~ && ls -A && stat -c '%U %a' .");
    for skel in [".bashrc", ".profile", ".bash_logout", ".local", "wheels"] {
        assert!(
            listing.lines().any(|l| l == skel),
            "{skel} in the new home: {listing}"
        );
    }
    assert!(listing.ends_with("work 755\n"), "{listing}");
    assert!(
        sh_ok(&cid, "cat ~/.bashrc").contains("~/.bashrc of the berth session user"),
        "the image's own .bashrc"
    );
    assert_eq!(
        sh_ok(
            &cid,
            "cat ~/.profile ~/.local/notes.txt && test -d ~/.local/bin && echo bin"
        ),
        "# alice's own profile\nmine\nbin\n",
        "what she uploaded before the first session is kept, the image's files fill in around it"
    );
    // A folder mounted at launch appears inside the persistent home, as a link: no mount
    // point lies inside the home, which the owner's other sessions could change meanwhile.
    assert_eq!(sh_ok(&cid, "cat /home/work/data/in-data.txt"), "data");
    assert_eq!(sh_ok(&cid, "readlink /home/work/data"), "/mnt/berth/data\n");
    let mounts = sh_ok(&cid, "cut -d' ' -f2 /proc/mounts");
    assert!(mounts.lines().any(|m| m == "/mnt/berth/data"), "{mounts}");
    assert!(
        !mounts.lines().any(|m| m.starts_with("/home/work/")),
        "a mount point inside the home: {mounts}"
    );
    sh_ok(&cid, "echo from-session > ~/data/written.txt");
    let r = alice
        .get(&format!(
            "/api/v1/vfolders/{data_id}/download?path=written.txt"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "from-session\n");
    sh_ok(
        &cid,
        "cd ~ && /opt/berth/jupyter/bin/python -m pip install --user --no-index --no-cache-dir ./wheels/berthx-1.0-py3-none-any.whl",
    );
    assert_eq!(
        sh_ok(&cid, "python3 -c 'import berthx; print(berthx.X)'"),
        "42\n"
    );
    end_session(&alice, &sid).await;

    // The next session sees what the user left; a clean one sees none of it.
    let (second, cid2) = running(&alice, persistent("second", JUPYTER)).await;
    let mut clean = persistent("clean", JUPYTER);
    clean["home"] = json!("clean");
    let (clean_id, cid3) = running(&alice, clean).await;
    assert_eq!(alice.session(&clean_id).await["home"], "clean");
    assert_eq!(
        sh_ok(&cid2, "cd / && python3 -c 'import berthx; print(berthx.X)'"),
        "42\n"
    );
    assert!(sh_ok(&cid2, "ls -A ~").contains("wheels"));
    let (imported, _) = sh(&cid3, "cd / && python3 -c 'import berthx'");
    assert!(!imported, "a clean home has no user packages");
    let clean_listing = sh_ok(&cid3, "ls -A ~");
    assert!(
        !clean_listing.contains("wheels") && clean_listing.contains(".bashrc"),
        "a clean home is the image's own: {clean_listing}"
    );
    // Seeding happened once: a file the user changes keeps the change in later sessions.
    sh_ok(&cid2, "echo '# mine' >> ~/.bashrc");
    end_session(&alice, &second).await;
    let (third, cid4) = running(&alice, persistent("third", "berth/base")).await;
    assert!(sh_ok(&cid4, "tail -1 ~/.bashrc").contains("# mine"));
    end_session(&alice, &third).await;
    end_session(&alice, &clean_id).await;
    // What the session wrote is in the home as the API sees it.
    let listed = alice
        .get(&format!("/api/v1/vfolders/{hid}/files?path=.local/lib"))
        .await
        .expect_json(200);
    assert_eq!(listed["entries"][0]["name"], "python3.11", "{listed}");
    assert!(alice.session(&clean_id).await["mounts"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn two_sessions_share_the_home_which_stays_private_and_in_place() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let hid = home_of(&alice).await["id"].as_str().unwrap().to_string();
    let bobs = home_of(&bob).await["id"].as_str().unwrap().to_string();
    assert_ne!(hid, bobs, "one home per user");

    // Bad input: a folder may not be made or called "home", a launch's home mode is checked,
    // and the home is not mounted twice.
    let r = alice
        .post("/api/v1/vfolders", &json!({"name": "home"}))
        .await;
    assert_field_error(&r, "name");
    assert!(
        r.text().contains("belongs to your home folder"),
        "{}",
        r.text()
    );
    assert_field_error(
        &alice
            .post("/api/v1/vfolders", &json!({"name": "mine", "type": "home"}))
            .await,
        "type",
    );
    let mut bad = small_session("bad");
    bad["home"] = json!("temporary");
    let r = alice.post("/api/v1/sessions", &bad).await;
    assert_field_error(&r, "home");
    assert!(r.text().contains("persistent"), "{}", r.text());
    let mut twice = persistent("twice", "berth/base");
    twice["mounts"] = json!([{"vfolder": "home"}]);
    assert_field_error(&alice.post("/api/v1/sessions", &twice).await, "mounts");
    assert!(alice.sessions().await.is_empty(), "nothing was made");

    // Two sessions at once share the home, as two logins on one machine do.
    let (a, ca) = running(&alice, persistent("a", "berth/base")).await;
    let (b, cb) = running(&alice, persistent("b", "berth/base")).await;
    sh_ok(&ca, "echo from-a > ~/shared.txt");
    assert_eq!(sh_ok(&cb, "cat ~/shared.txt"), "from-a\n");
    assert_eq!(download(&alice, &hid, "shared.txt").await.body, b"from-a\n");

    // Never shared, never renamed, not trashed while used.
    let r = alice
        .post(
            &format!("/api/v1/vfolders/{hid}/invitations"),
            &json!({"user": "bob", "permission": "ro"}),
        )
        .await;
    let p = assert_problem(&r, 409, "conflict");
    assert!(
        p["detail"].as_str().unwrap().contains("never shared"),
        "{p}"
    );
    let bob_id = app
        .admin()
        .await
        .get("/api/v1/users")
        .await
        .expect_json(200);
    let bob_id = bob_id
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_problem(
        &alice
            .delete(&format!("/api/v1/vfolders/{hid}/members/{bob_id}"))
            .await,
        409,
        "conflict",
    );
    let p = assert_problem(
        &alice
            .patch(
                &format!("/api/v1/vfolders/{hid}"),
                &json!({"name": "house"}),
            )
            .await,
        409,
        "conflict",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("keeps its name"),
        "{p}"
    );
    let p = assert_problem(
        &alice.delete(&format!("/api/v1/vfolders/{hid}")).await,
        409,
        "conflict",
    );
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("in use by sessions a, b"), "{p}");
    // Renaming a folder of one's own to "home" is refused too.
    let other = folder(&alice, "other").await;
    assert_field_error(
        &alice
            .patch(
                &format!("/api/v1/vfolders/{other}"),
                &json!({"name": "home"}),
            )
            .await,
        "name",
    );

    // Another user's home answers as missing, whatever is asked of it.
    for r in [
        bob.get(&format!("/api/v1/vfolders/{hid}")).await,
        bob.get(&format!("/api/v1/vfolders/{hid}/files")).await,
        download(&bob, &hid, "shared.txt").await,
        bob.delete(&format!("/api/v1/vfolders/{hid}")).await,
        bob.post(
            &format!("/api/v1/vfolders/{hid}/invitations"),
            &json!({"user": "alice", "permission": "ro"}),
        )
        .await,
        upload(&bob, &hid, "x.txt", b"x").await,
    ] {
        assert_problem(&r, 404, "not-found");
    }
    let mut theirs = small_session("theirs");
    theirs["mounts"] = json!([{"vfolder": hid}]);
    assert_field_error(
        &bob.post("/api/v1/sessions", &theirs).await,
        "mounts[0].vfolder",
    );

    // The home has a quota of its own: home_quota_bytes, not the per-folder one.
    app.set_policy(&bob_id, json!({"home_quota_bytes": "1m"}))
        .await;
    assert_eq!(home_of(&bob).await["quota_bytes"], 1 << 20);
    let big = vec![7u8; 2 << 20];
    let p = assert_problem(&upload(&bob, &bobs, "big.bin", &big).await, 409, "quota");
    assert!(p["detail"].as_str().unwrap().contains("quota"), "{p}");
    let bobs_data = folder(&bob, "data").await;
    assert_eq!(upload(&bob, &bobs_data, "big.bin", &big).await.status, 204);
    let r = app
        .admin()
        .await
        .put(
            &format!("/api/v1/users/{bob_id}/policy"),
            &json!({"home_quota_bytes": "lots"}),
        )
        .await;
    assert_field_error(&r, "home_quota_bytes");

    // Unused, it can be deleted; the next session gets a fresh, seeded home.
    end_session(&alice, &a).await;
    end_session(&alice, &b).await;
    alice
        .delete(&format!("/api/v1/vfolders/{hid}"))
        .await
        .expect_json(200);
    let (c, cc) = running(&alice, persistent("c", "berth/base")).await;
    let fresh = sh_ok(&cc, "ls -A ~");
    assert!(
        !fresh.contains("shared.txt") && fresh.contains(".bashrc"),
        "{fresh}"
    );
    let new_home = home_of(&alice).await["id"].as_str().unwrap().to_string();
    assert_ne!(new_home, hid);
    // The old home waits in the trash and cannot come back beside the new one.
    let p = assert_problem(
        &alice
            .post(&format!("/api/v1/vfolders/{hid}/restore"), &json!({}))
            .await,
        409,
        "conflict",
    );
    assert!(p["detail"].as_str().unwrap().contains("newer home"), "{p}");
    // One home at a time waits in the trash: trashing one home after another would take
    // storage without bound (trashed homes keep their space and count against nothing else).
    end_session(&alice, &c).await;
    let p = assert_problem(
        &alice.delete(&format!("/api/v1/vfolders/{new_home}")).await,
        409,
        "conflict",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("still in the trash"),
        "{p}"
    );
    assert_eq!(home_of(&alice).await["id"], new_home.as_str());
    let r = alice
        .post(&format!("/api/v1/vfolders/{hid}/purge"), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    alice
        .delete(&format!("/api/v1/vfolders/{new_home}"))
        .await
        .expect_json(200);
}

#[tokio::test]
async fn a_hostile_home_is_neither_followed_by_the_gateway_nor_by_seeding() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory").await;
    let hid = home_of(&mallory).await["id"].as_str().unwrap().to_string();
    // A file on the gateway's host that links in the home will point at.
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("target");
    std::fs::write(&target, "host\n").unwrap();
    std::fs::set_permissions(
        host.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let tpath = target.to_string_lossy().to_string();

    // Before its first use, a clean session mounts the home like any folder and fills it with
    // links and FIFOs where the image's files would go.
    let mut clean = small_session("prep");
    clean["mounts"] = json!([{"vfolder": "home", "path": "h"}]);
    let (prep, cp) = running(&mallory, clean).await;
    sh_ok(
        &cp,
        &format!(
            "cd ~/h && ln -s /etc x && ln -s {tpath} .bashrc && mkfifo .profile && ln -s / .local && ln -s {tpath} dangling-host"
        ),
    );
    end_session(&mallory, &prep).await;

    // The gateway's operations on the home stay inside it.
    assert_field_error(
        &mallory
            .get(&format!("/api/v1/vfolders/{hid}/files?path=x"))
            .await,
        "path",
    );
    for p in [
        "x/passwd",
        ".bashrc",
        ".profile",
        ".local/etc/passwd",
        "dangling-host",
    ] {
        let r = download(&mallory, &hid, p).await;
        assert!(
            matches!(r.status, 400 | 404),
            "downloading {p}: {} {}",
            r.status,
            r.text()
        );
        assert!(!r.text().contains("root:"), "{p}");
    }
    let r = upload(&mallory, &hid, "x/evil", b"evil").await;
    assert!(matches!(r.status, 400 | 404), "{}", r.text());
    let r = mallory
        .post(
            &format!("/api/v1/vfolders/{hid}/mkdir"),
            &json!({"path": ".local/tmp/evil"}),
        )
        .await;
    assert!(matches!(r.status, 400 | 404), "{}", r.text());
    // A zip of the whole home skips what is not a file or directory (and does not hang on
    // the FIFO).
    let zip = download(&mallory, &hid, "").await;
    assert_eq!(zip.status, 200);
    assert!(!String::from_utf8_lossy(&zip.body).contains("root:x:0"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "host\n");

    // First persistent use: seeding leaves the links and the FIFO where the image's files
    // would go as they are (the owner's own entries), writing neither through them on the host
    // nor beneath them; the image's files fill only the free names.
    let (s, cs) = running(&mallory, persistent("seeded", "berth/base")).await;
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "host\n",
        "the host file a link named is untouched"
    );
    let kinds = sh_ok(
        &cs,
        "cd ~ && stat -c '%n %F' .bashrc .profile .local .bash_logout",
    );
    assert_eq!(
        kinds,
        ".bashrc symbolic link\n.profile fifo\n.local symbolic link\n.bash_logout regular file\n",
        "{kinds}"
    );
    assert_eq!(sh_ok(&cs, "readlink ~/.local"), "/\n");
    // The session's own links stay links, seen only inside the container.
    assert_eq!(sh_ok(&cs, "readlink ~/x"), "/etc\n");
    let listed = mallory
        .get(&format!("/api/v1/vfolders/{hid}/files"))
        .await
        .expect_json(200);
    let kind = |n: &str| {
        listed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .map(|e| e["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(kind(".bashrc").as_deref(), Some("symlink"), "{listed}");
    assert_eq!(kind(".bash_logout").as_deref(), Some("file"), "{listed}");
    assert_eq!(kind("x").as_deref(), Some("symlink"), "{listed}");
    // Nothing was written on the host beside the target either.
    let mut beside: Vec<String> = std::fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["target"]);
    end_session(&mallory, &s).await;
    let (ok, _) = docker(&["inspect", &format!("berth-seed-{s}")]);
    assert!(!ok, "the seeding container is gone");
}
