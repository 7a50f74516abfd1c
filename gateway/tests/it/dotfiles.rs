//! Dotfiles at three levels, written into real containers: the user's file wins over the
//! project's and the domain's for one path, each lands with its owner and mode; a project's
//! files reach its members' sessions only; bad paths, sizes, modes and a full level are
//! sentences that write nothing; another user's level and a project one does not belong to are
//! out of reach; the CLI round-trips; and links or folders a session left at a dotfile's path
//! never make berth write on the node.

use crate::common::{
    assert_field_error, assert_problem, docker, docker_ok, end_session, small_session, wait_status,
    Client, TestApp, ADMIN_PASSWORD, USER_PASSWORD,
};
use api::dotfiles::{Dotfile, MAX_CONTENT, MAX_PER_LEVEL};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

async fn put(c: &Client, base: &str, path: &str, content: &str, mode: Option<&str>) -> Dotfile {
    let mut body = json!({"path": path, "content": content});
    if let Some(m) = mode {
        body["mode"] = json!(m);
    }
    let r = c.put(base, &body).await;
    assert!(
        r.status == 201 || r.status == 200,
        "PUT {base} {path}: {} {}",
        r.status,
        r.text()
    );
    r.expect(r.status)
}

async fn list(c: &Client, base: &str) -> Vec<Dotfile> {
    c.get(base).await.expect(200)
}

/// Runs `sh -c CMD` in `container` as the session user; returns stdout.
fn sh(container: &str, cmd: &str) -> String {
    docker_ok(&["exec", "-u", "1000:1000", container, "sh", "-c", cmd])
}

/// `owner-uid:gid mode` of `path` in `container`.
fn stat(container: &str, path: &str) -> String {
    docker_ok(&["exec", container, "stat", "-c", "%u:%g %a", path])
        .trim()
        .to_string()
}

async fn running(c: &Client, body: Value) -> (String, String) {
    let s = c.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(c, &id, "RUNNING", Duration::from_secs(60)).await;
    (id, s["container_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn three_levels_meet_in_the_container_and_the_users_file_wins() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    admin
        .post("/api/v1/projects", &json!({"name": "team"}))
        .await
        .expect_json(201);
    admin
        .post("/api/v1/projects/team/members", &json!({"user": "alice"}))
        .await
        .expect_json(200);

    // The domain's, everyone's.
    let domain = "/api/v1/admin/dotfiles";
    put(&admin, domain, "~/.bashrc", "# domain\n", None).await;
    put(&admin, domain, "~/.vimrc", "set number\n", None).await;
    put(
        &admin,
        domain,
        "/etc/profile.d/team.sh",
        "export BERTH_DOMAIN_GREETING=hello-from-domain\n",
        None,
    )
    .await;
    // The project's.
    let project = "/api/v1/projects/team/dotfiles";
    put(&admin, project, "~/.bashrc", "# project\n", None).await;
    put(
        &admin,
        project,
        "~/.gitconfig",
        "[user]\n\tname = Team\n",
        None,
    )
    .await;
    put(
        &admin,
        project,
        "/etc/pip.conf",
        "[global]\nindex-url = http://pypi.team\n",
        Some("0600"),
    )
    .await;
    // Alice's own, one of them a conflict with both levels above.
    put(
        &alice,
        "/api/v1/dotfiles",
        "~/.bashrc",
        "# alice\nalias hi='echo hi-from-alice'\n",
        Some("0600"),
    )
    .await;
    put(
        &alice,
        "/api/v1/dotfiles",
        "~/.local/bin/hello",
        "#!/bin/sh\necho hello-from-local-bin\n",
        Some("0755"),
    )
    .await;
    // A ~/.profile that sets its own PATH (and replaces the image's, which set PATH back).
    put(
        &alice,
        "/api/v1/dotfiles",
        "~/.profile",
        "PATH=\"$HOME/bin:$PATH\"\nexport PATH\n. ~/.bashrc\n",
        None,
    )
    .await;
    put(
        &alice,
        "/api/v1/dotfiles",
        "~/.config/git/ignore",
        "*.o\n",
        None,
    )
    .await;
    let mine = list(&alice, "/api/v1/dotfiles").await;
    assert_eq!(
        mine.iter()
            .map(|d| (d.path.as_str(), d.mode.as_str()))
            .collect::<Vec<_>>(),
        [
            ("~/.bashrc", "0600"),
            ("~/.config/git/ignore", "0644"),
            ("~/.local/bin/hello", "0755"),
            ("~/.profile", "0644"),
        ],
        "listed by path, with their modes"
    );

    // Alice's session in the project: all three levels, hers winning.
    let mut body = small_session("dots");
    body["project"] = json!("team");
    let (sid, c) = running(&alice, body).await;
    assert_eq!(
        sh(&c, "cat ~/.bashrc"),
        "# alice\nalias hi='echo hi-from-alice'\n"
    );
    assert_eq!(stat(&c, "/home/work/.bashrc"), "1000:1000 600");
    assert_eq!(sh(&c, "cat ~/.gitconfig"), "[user]\n\tname = Team\n");
    assert_eq!(stat(&c, "/home/work/.gitconfig"), "1000:1000 644");
    assert_eq!(sh(&c, "cat ~/.vimrc"), "set number\n");
    assert_eq!(stat(&c, "/etc/pip.conf"), "0:0 600");
    assert_eq!(
        docker_ok(&["exec", "-u", "0:0", &c, "cat", "/etc/pip.conf"]),
        "[global]\nindex-url = http://pypi.team\n"
    );
    assert_eq!(stat(&c, "/etc/profile.d/team.sh"), "0:0 644");
    assert_eq!(stat(&c, "/home/work/.local/bin/hello"), "1000:1000 755");
    // Parents berth made are the user's; the image's own folders keep their owner.
    assert_eq!(stat(&c, "/home/work/.config"), "1000:1000 755");
    assert_eq!(stat(&c, "/home/work/.config/git"), "1000:1000 755");
    assert_eq!(stat(&c, "/etc/profile.d"), "0:0 755");
    // The files work: an alias from ~/.bashrc in an interactive shell, the domain's profile
    // script and ~/.local/bin on PATH in a login shell, despite ~/.profile's own PATH.
    let login = docker_ok(&[
        "exec",
        "-u",
        "1000:1000",
        &c,
        "bash",
        "-lic",
        "hi; echo $BERTH_DOMAIN_GREETING; hello; echo PATH=$PATH",
    ]);
    assert!(login.contains("hi-from-alice"), "{login}");
    assert!(login.contains("hello-from-domain"), "{login}");
    assert!(login.contains("hello-from-local-bin"), "{login}");
    assert!(
        login.contains("/home/work/bin:"),
        "~/.profile's PATH ran: {login}"
    );
    // `sh -c` without a login: the container's own PATH has it.
    assert_eq!(sh(&c, "hello"), "hello-from-local-bin\n");
    assert!(sh(&c, "echo $PATH").contains("/home/work/.local/bin"));
    end_session(&alice, &sid).await;

    // Bob is no member: his session has the domain's files only (and no project's).
    let (sid, c) = running(&bob, small_session("plain")).await;
    assert_eq!(sh(&c, "cat ~/.bashrc"), "# domain\n");
    assert_eq!(sh(&c, "cat ~/.vimrc"), "set number\n");
    let (has_pip, _) = docker(&["exec", &c, "test", "-e", "/etc/pip.conf"]);
    assert!(!has_pip, "a non-member's session has no project file");
    let (has_gitconfig, _) = docker(&["exec", &c, "test", "-e", "/home/work/.gitconfig"]);
    assert!(!has_gitconfig);
    let (has_hello, _) = docker(&["exec", &c, "test", "-e", "/home/work/.local/bin/hello"]);
    assert!(!has_hello, "alice's files are hers only");
    end_session(&bob, &sid).await;

    // A project's list: its members read it, admins write it, anyone else finds no project.
    let seen = list(&alice, project).await;
    assert_eq!(
        seen.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
        ["/etc/pip.conf", "~/.bashrc", "~/.gitconfig"]
    );
    assert_problem(
        &alice
            .put(project, &json!({"path": "~/.x", "content": ""}))
            .await,
        403,
        "forbidden",
    );
    assert_problem(
        &alice.delete(&format!("{project}?path=~/.bashrc")).await,
        403,
        "forbidden",
    );
    for r in [
        bob.get(project).await,
        bob.put(project, &json!({"path": "~/.x", "content": ""}))
            .await,
        bob.delete(&format!("{project}?path=~/.bashrc")).await,
        bob.get("/api/v1/projects/nosuch/dotfiles").await,
    ] {
        assert_problem(&r, 404, "not-found");
    }
    // The domain's: admins only.
    assert_problem(&alice.get(domain).await, 403, "forbidden");
    assert_problem(
        &alice
            .put(domain, &json!({"path": "~/.x", "content": ""}))
            .await,
        403,
        "forbidden",
    );
    assert_eq!(
        list(&admin, domain).await.len(),
        3,
        "nothing written by refusals"
    );
    assert_eq!(list(&admin, project).await.len(), 3);
}

#[tokio::test]
async fn bad_input_is_a_sentence_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let own = "/api/v1/dotfiles";
    let first = put(&alice, own, "~/.bashrc", "# mine\n", None).await;
    assert_eq!(first.mode, "0644");
    assert!(
        crate::common::is_rfc3339_utc(&first.updated_at),
        "{}",
        first.updated_at
    );
    let before = list(&alice, own).await;

    let at_most = "x".repeat(MAX_CONTENT);
    for (body, field) in [
        (json!({"path": "~/../etc/passwd", "content": "x"}), "path"),
        (json!({"path": "~/a/../../b", "content": "x"}), "path"),
        (json!({"path": "/usr/bin/evil", "content": "x"}), "path"),
        (
            json!({"path": "/home/work/.bashrc", "content": "x"}),
            "path",
        ),
        (
            json!({"path": "/etc/profile.d/mine.sh", "content": "x"}),
            "path",
        ),
        (json!({"path": "~/a\u{0}b", "content": "x"}), "path"),
        (json!({"path": "", "content": "x"}), "path"),
        (json!({"path": "~", "content": "x"}), "path"),
        (json!({"path": "~/", "content": "x"}), "path"),
        (
            json!({"path": "~/.ssh/authorized_keys", "content": "ssh-ed25519 AAAA"}),
            "path",
        ),
        (
            json!({"path": format!("~/{}", "a".repeat(300)), "content": "x"}),
            "path",
        ),
        (
            json!({"path": "~/.big", "content": format!("{at_most}y")}),
            "content",
        ),
        (
            json!({"path": "~/.x", "content": "x", "mode": "4755"}),
            "mode",
        ),
        (
            json!({"path": "~/.x", "content": "x", "mode": "1777"}),
            "mode",
        ),
        (
            json!({"path": "~/.x", "content": "x", "mode": "0800"}),
            "mode",
        ),
        (
            json!({"path": "~/.x", "content": "x", "mode": "rwx"}),
            "mode",
        ),
        (json!({"path": "~/.x", "content": "x", "mode": 644}), "mode"),
        (
            json!({"path": "~/.x", "content": "x", "owner": "root"}),
            "owner",
        ),
        (json!({"path": "~/.x"}), "content"),
        // A file where another dotfile needs a folder.
        (json!({"path": "~/.bashrc/x", "content": "x"}), "path"),
    ] {
        let r = alice.put(own, &body).await;
        let p = assert_field_error(&r, field);
        assert!(
            p["detail"].as_str().is_some_and(|d| d.ends_with('.')),
            "{p}"
        );
    }
    // The limit itself is fine, in bytes.
    put(&alice, own, "~/.big", &at_most, None).await;
    assert_eq!(
        alice.delete(&format!("{own}?path=~/.big")).await.status,
        204
    );
    assert_eq!(
        list(&alice, own).await,
        before,
        "nothing written by the refusals"
    );

    // Deleting: a bad path is a 400, a missing one a 404, no path a 400 sentence.
    assert_field_error(&alice.delete(&format!("{own}?path=~/../x")).await, "path");
    assert_field_error(&alice.delete(&format!("{own}?path=/etc/x")).await, "path");
    assert_problem(
        &alice.delete(&format!("{own}?path=~/.nothing")).await,
        404,
        "not-found",
    );
    assert_problem(&alice.delete(own).await, 400, "validation");

    // Another user's dotfiles are out of reach: bob's level is his own.
    assert!(list(&bob, own).await.is_empty());
    assert_problem(
        &bob.delete(&format!("{own}?path=~/.bashrc")).await,
        404,
        "not-found",
    );
    put(&bob, own, "~/.bashrc", "# bob\n", None).await;
    assert_eq!(list(&alice, own).await, before, "bob's write is his");
    assert_eq!(list(&bob, own).await[0].content, "# bob\n");

    // A level keeps 100 at most: the 101st is a quota problem; replacing one still works.
    for i in 1..MAX_PER_LEVEL {
        put(&alice, own, &format!("~/.f/{i:03}"), "x", None).await;
    }
    assert_eq!(list(&alice, own).await.len(), MAX_PER_LEVEL);
    let r = alice
        .put(own, &json!({"path": "~/.f/101", "content": "x"}))
        .await;
    assert_problem(&r, 409, "quota");
    assert_eq!(list(&alice, own).await.len(), MAX_PER_LEVEL);
    let r = alice
        .put(
            own,
            &json!({"path": "~/.bashrc", "content": "# again\n", "mode": "600"}),
        )
        .await;
    let d: Dotfile = r.expect(200);
    assert_eq!((d.content.as_str(), d.mode.as_str()), ("# again\n", "0600"));
    // Other levels have their own count.
    put(&bob, own, "~/.f/101", "x", None).await;
    put(&admin, "/api/v1/admin/dotfiles", "/etc/x", "x", None).await;
}

/// One user's `berth` CLI with its own HOME.
struct Cli(tempfile::TempDir);

impl Cli {
    fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("HOME", self.0.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("BERTH_URL")
            .env_remove("BERTH_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berth");
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, "");
        assert_eq!(code, 0, "berth {args:?}: {out}{err}");
        out
    }
}

#[tokio::test]
async fn the_cli_sets_lists_and_removes_at_each_level() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .post("/api/v1/projects", &json!({"name": "team"}))
        .await
        .expect_json(201);
    app.user("alice").await;
    let cli = Cli(tempfile::tempdir().unwrap());
    let (code, _, err) = cli.run(
        &["login", &app.base, "--username", "alice"],
        &format!("{USER_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let rc = cli.0.path().join("rc");
    std::fs::write(&rc, "alias ll='ls -l'\n").unwrap();
    let rc = rc.to_str().unwrap();

    let out = cli.ok(&[
        "dotfiles",
        "set",
        "~/.bashrc",
        "--file",
        rc,
        "--mode",
        "0600",
    ]);
    assert_eq!(out, "Set ~/.bashrc (0600, 17 bytes) for you.\n");
    // A path the shell expanded (this HOME) is read as home-relative.
    let expanded = format!("{}/.vimrc", cli.0.path().display());
    cli.ok(&["dotfiles", "set", &expanded, "--file", rc]);
    let out = cli.ok(&["dotfiles", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PATH"), "{out}");
    assert!(
        lines[1].starts_with("~/.bashrc") && lines[1].contains("0600") && lines[1].contains("17"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("~/.vimrc") && lines[2].contains("0644"),
        "{out}"
    );
    let json: Vec<Dotfile> =
        serde_json::from_str(&cli.ok(&["dotfiles", "list", "--json"])).unwrap();
    assert_eq!(json[0].content, "alias ll='ls -l'\n");
    // Standard input as the file.
    let (code, _, err) = cli.run(
        &["dotfiles", "set", "~/.inputrc", "--file", "-"],
        "set bell-style none\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        list(&app.login("alice", USER_PASSWORD).await, "/api/v1/dotfiles").await[1].content,
        "set bell-style none\n"
    );
    assert_eq!(
        cli.ok(&["dotfiles", "rm", "~/.vimrc"]),
        "Removed ~/.vimrc for you.\n"
    );
    assert_eq!(
        cli.ok(&["dotfiles", "rm", "~/.inputrc"]),
        "Removed ~/.inputrc for you.\n"
    );

    // Refusals: the rules before sending (exit 2), the server's sentence after (exit 1).
    let (code, _, err) = cli.run(&["dotfiles", "set", "/etc/x", "--file", rc], "");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("berth: ") && err.contains("only administrators"),
        "{err}"
    );
    let (code, _, err) = cli.run(&["dotfiles", "rm", "~/.nothing"], "");
    assert_eq!(code, 1);
    assert!(err.contains("There is no dotfile"), "{err}");
    let (code, _, err) = cli.run(&["dotfiles", "list", "--domain"], "");
    assert_eq!(code, 1);
    assert!(err.contains("Only administrators"), "{err}");
    let (code, _, err) = cli.run(
        &["dotfiles", "set", "~/.x", "--file", rc, "--project", "team"],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("There is no project"),
        "a non-member finds no project: {err}"
    );

    // An admin's CLI: a project's and the domain's.
    let admin_cli = Cli(tempfile::tempdir().unwrap());
    let (code, _, err) = admin_cli.run(
        &["login", &app.base, "--username", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        admin_cli.ok(&[
            "dotfiles",
            "set",
            "/etc/pip.conf",
            "--file",
            rc,
            "--project",
            "team"
        ]),
        "Set /etc/pip.conf (0644, 17 bytes) for project team.\n"
    );
    assert_eq!(
        admin_cli.ok(&[
            "dotfiles",
            "set",
            "/etc/profile.d/x.sh",
            "--file",
            rc,
            "--domain"
        ]),
        "Set /etc/profile.d/x.sh (0644, 17 bytes) for the domain.\n"
    );
    assert!(admin_cli
        .ok(&["dotfiles", "ls", "--project", "team"])
        .contains("/etc/pip.conf"));
    assert!(admin_cli
        .ok(&["dotfiles", "ls", "--domain"])
        .contains("/etc/profile.d/x.sh"));
    admin_cli.ok(&["dotfiles", "rm", "/etc/profile.d/x.sh", "--domain"]);
    assert_eq!(
        admin_cli.ok(&["dotfiles", "ls", "--domain"]),
        "No dotfiles for the domain.\n"
    );
    let (code, _, err) = admin_cli.run(&["dotfiles", "ls", "--domain", "--project", "team"], "");
    assert_eq!(code, 2, "--domain and --project together: {err}");
}

#[tokio::test]
async fn links_and_folders_a_session_left_at_a_dotfiles_path_never_reach_the_node() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let folder = crate::vfolders::folder(&alice, "persist").await;
    let on_node = app.data_dir().join("vfolders").join(&folder);
    // On the node, outside any folder: a file and a folder a link will point at.
    let outside = tempfile::Builder::new()
        .prefix("berth-dotfiles-outside-")
        .tempdir()
        .unwrap();
    std::fs::write(outside.path().join("victim"), "untouched\n").unwrap();
    let victim = outside.path().join("victim");
    let outside_dir = outside.path().to_str().unwrap().to_string();
    let mut body = small_session("plant");
    body["mounts"] = json!([{"vfolder": "persist"}]);

    // A session leaves, in its persistent folder, links to the node's paths (absolute and
    // relative) and a folder where a dotfile will be.
    let (sid, c) = running(&alice, body.clone()).await;
    sh(
        &c,
        &format!(
            "cd ~/persist && ln -s {v} link && ln -s {d} linkdir && ln -s ../../../../../../../../..{v} rellink \
             && mkdir folder && echo keep > folder/keep",
            v = victim.display(),
            d = outside_dir
        ),
    );
    end_session(&alice, &sid).await;
    for (path, content) in [
        ("~/persist/link", "through a link\n"),
        ("~/persist/rellink", "through a relative link\n"),
    ] {
        put(&alice, "/api/v1/dotfiles", path, content, None).await;
    }
    // The links are replaced inside the folder; nothing is written on the node.
    let (sid, c) = running(&alice, body.clone()).await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(sh(&c, "cat ~/persist/link"), "through a link\n");
    assert_eq!(sh(&c, "cat ~/persist/rellink"), "through a relative link\n");
    for name in ["link", "rellink"] {
        let m = std::fs::symlink_metadata(on_node.join(name)).unwrap();
        assert!(m.is_file(), "{name} is a plain file of the folder now");
    }
    end_session(&alice, &sid).await;

    // A link where a dotfile needs a folder: the engine refuses to replace it, the launch
    // ends in ERROR with a sentence naming the path, and nothing lands behind the link.
    put(
        &alice,
        "/api/v1/dotfiles",
        "~/persist/linkdir/planted",
        "planted\n",
        None,
    )
    .await;
    let s = alice.create_session(body.clone()).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "ERROR", Duration::from_secs(60)).await;
    let reason = s["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("write the session's files into the container")
            && reason.contains("/home/work/persist/linkdir"),
        "{reason}"
    );
    assert!(
        !outside.path().join("planted").exists(),
        "nothing written through the link"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        1,
        "the node's folder holds only what it held"
    );
    assert!(std::fs::symlink_metadata(on_node.join("linkdir"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(
        alice
            .delete("/api/v1/dotfiles?path=~/persist/linkdir/planted")
            .await
            .status
            == 204
    );

    // A folder where a dotfile should go: the launch ends in ERROR with a sentence, and the
    // folder keeps its content.
    put(&alice, "/api/v1/dotfiles", "~/persist/folder", "x\n", None).await;
    let s = alice.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &id, "ERROR", Duration::from_secs(60)).await;
    let reason = s["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("write the session's files into the container")
            && reason.contains("/home/work/persist/folder"),
        "{reason}"
    );
    assert_eq!(
        std::fs::read_to_string(on_node.join("folder/keep")).unwrap(),
        "keep\n"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creations_never_pass_a_levels_limit() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let own = "/api/v1/dotfiles";
    for i in 0..MAX_PER_LEVEL - 10 {
        put(&alice, own, &format!("~/.f/{i:03}"), "x", None).await;
    }
    let puts = (0..30).map(|i| {
        let alice = &alice;
        async move {
            alice
                .put(
                    own,
                    &json!({"path": format!("~/.race/{i}"), "content": "x"}),
                )
                .await
                .status
        }
    });
    let mut statuses = futures_util::future::join_all(puts).await;
    statuses.sort();
    assert_eq!(statuses, [[201; 10].as_slice(), &[409; 20]].concat());
    assert_eq!(list(&alice, own).await.len(), MAX_PER_LEVEL);
}
