//! SSH into sessions with Debian's real OpenSSH client, through the real `berth` binary as
//! its ProxyCommand (`berth ssh-config`, `berth ssh`): a command runs (42), scp carries 20 MB
//! there and back byte for byte, sftp lists the home, the host key is checked strictly;
//! another user's key, a password, a key planted in ~/.ssh by code in the session are
//! refused; a key added while the session runs works at once and a removed one stops; sshd
//! killed is started again. Keys with bad input get sentences and leave nothing stored;
//! another user's key and session answer as missing; an image without sshd says so.

use crate::common::{
    docker, docker_ok, end_session, small_session, wait_status, wait_until, Client, TestApp,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A person's machine: a HOME with their SSH key pair (`~/.ssh/id_ed25519`) and the berth
/// CLI's credentials in the environment.
struct Laptop {
    home: tempfile::TempDir,
    url: String,
    key: String,
}

impl Laptop {
    async fn new(app: &TestApp, client: &Client) -> Laptop {
        let home = tempfile::Builder::new()
            .prefix("berth-ssh-home-")
            .tempdir()
            .unwrap();
        let k = client
            .post("/api/v1/keys", &json!({"name": "ssh tests"}))
            .await
            .expect_json(201);
        let l = Laptop {
            home,
            url: app.base.clone(),
            key: k["key"].as_str().unwrap().to_string(),
        };
        std::fs::create_dir_all(l.home.path().join(".ssh")).unwrap();
        keygen(&l.home.path().join(".ssh/id_ed25519"));
        l
    }

    fn identity(&self) -> PathBuf {
        self.home.path().join(".ssh/id_ed25519")
    }

    fn public_key(&self) -> String {
        std::fs::read_to_string(self.home.path().join(".ssh/id_ed25519.pub")).unwrap()
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env("BERTH_URL", &self.url)
            .env("BERTH_KEY", &self.key)
            .stdin(Stdio::null());
    }

    fn berth(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args);
        self.env(&mut cmd);
        cmd.output().unwrap()
    }

    /// `berth ssh-config` into a file of its own; returns its path.
    fn ssh_config(&self) -> PathBuf {
        let out = self.berth(&["ssh-config"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let p = self.home.path().join("berth-ssh-config");
        std::fs::write(&p, &out.stdout).unwrap();
        p
    }

    /// A program of OpenSSH's (`ssh`, `scp`, `sftp`) with the generated config, the given
    /// identity only, never a prompt.
    fn openssh(&self, program: &str, config: &Path, identity: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.arg("-F")
            .arg(config)
            .arg("-i")
            .arg(identity)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(args);
        self.env(&mut cmd);
        cmd.output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A new ed25519 key pair at `path` (and `path.pub`), without a passphrase.
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tests@laptop", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", stderr(&out));
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    stdout(&out).split(' ').next().unwrap().to_string()
}

/// Adds `key` to the user's SSH keys, asserting 201; returns the key's JSON.
async fn add_key(client: &Client, key: &str) -> Value {
    client
        .post("/api/v1/me/ssh-keys", &json!({"key": key}))
        .await
        .expect_json_as::<api::ssh::SshKey>(201)
}

async fn key_count(client: &Client) -> usize {
    client
        .get("/api/v1/me/ssh-keys")
        .await
        .expect_json_as::<Vec<api::ssh::SshKey>>(200)
        .as_array()
        .unwrap()
        .len()
}

/// Launches an interactive session and waits until it runs and berth has started its sshd
/// (or found the image has none); returns its JSON.
async fn launch(client: &Client, body: Value) -> Value {
    let s = client.create_session(body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let s = wait_status(client, &id, "RUNNING", Duration::from_secs(60)).await;
    assert!(
        s["ssh"]["host_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ")),
        "a running interactive session shows its SSH host key: {s}"
    );
    s
}

#[tokio::test]
async fn ssh_scp_and_sftp_reach_a_session_with_its_owners_keys_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let a = Laptop::new(&app, &alice).await;
    let b = Laptop::new(&app, &bob).await;
    let k = add_key(&alice, &a.public_key()).await;
    assert!(k["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    assert_eq!(
        k["name"], "tests@laptop",
        "the name defaults to the comment"
    );
    let printed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(a.home.path().join(".ssh/id_ed25519.pub"))
        .output()
        .unwrap();
    assert!(
        stdout(&printed).contains(k["fingerprint"].as_str().unwrap()),
        "the fingerprint is ssh-keygen's: {}",
        stdout(&printed)
    );
    add_key(&bob, &b.public_key()).await;

    let mut body = small_session("box");
    body["env"] = json!({"GREETING": "hello \"quoted\" world $HOME"});
    let s = launch(&alice, body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let container = s["container_id"].as_str().unwrap().to_string();
    assert!(
        !s["apps"].to_string().contains("\"ssh\""),
        "berth's SSH server is no app of the image: {s}"
    );

    let cfg = a.ssh_config();
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("Host berth-box\n"), "{text}");
    assert!(text.contains("StrictHostKeyChecking yes"), "{text}");

    // A command; the host key checked strictly against the one berth made (no prompt).
    let out = a.openssh("ssh", &cfg, &a.identity(), &["berth-box", "echo $((6*7))"]);
    assert!(out.status.success(), "ssh: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "42");

    // Logins and commands see the session's environment and ~/.local/bin on PATH.
    let out = a.openssh(
        "ssh",
        &cfg,
        &a.identity(),
        &[
            "berth-box",
            "echo \"$PATH\"; echo \"$BERTH_SESSION_ID\"; printenv GREETING; id -un",
        ],
    );
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert!(lines[0].starts_with("/home/work/.local/bin:"), "{lines:?}");
    assert_eq!(lines[1], id);
    assert_eq!(lines[2], "hello \"quoted\" world $HOME");
    assert_eq!(lines[3], "work");

    // `berth ssh SESSION -- COMMAND` runs the system ssh with the same options (through a
    // wrapper naming this laptop's key: ssh finds `~` in /etc/passwd, not in $HOME).
    let wrapper = a.home.path().join("ssh-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes \"$@\"\n",
            a.identity().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(["ssh", "box", "--", "echo", "$((6*7))"]);
    a.env(&mut cmd);
    let out = cmd.env("BERTH_SSH", &wrapper).output().unwrap();
    assert!(out.status.success(), "berth ssh: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "42");

    // scp of 20 MB there and back, byte for byte.
    let there = a.home.path().join("there.bin");
    let back = a.home.path().join("back.bin");
    let mut data = vec![0u8; 20 << 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut data);
    std::fs::write(&there, &data).unwrap();
    let out = a.openssh(
        "scp",
        &cfg,
        &a.identity(),
        &[there.to_str().unwrap(), "berth-box:/home/work/data.bin"],
    );
    assert!(out.status.success(), "scp there: {}", stderr(&out));
    let out = a.openssh(
        "scp",
        &cfg,
        &a.identity(),
        &["berth-box:/home/work/data.bin", back.to_str().unwrap()],
    );
    assert!(out.status.success(), "scp back: {}", stderr(&out));
    assert_eq!(sha256(&there), sha256(&back), "scp is byte-identical");

    // sftp lists the home.
    let batch = a.home.path().join("sftp-batch");
    std::fs::write(&batch, "ls -la /home/work\n").unwrap();
    let out = a.openssh(
        "sftp",
        &cfg,
        &a.identity(),
        &["-b", batch.to_str().unwrap(), "berth-box"],
    );
    assert!(out.status.success(), "sftp: {}", stderr(&out));
    assert!(stdout(&out).contains("data.bin"), "{}", stdout(&out));

    // Another user's key, a password, keyboard-interactive: refused.
    let out = a.openssh("ssh", &cfg, &b.identity(), &["berth-box", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    let out = a.openssh(
        "ssh",
        &cfg,
        &a.identity(),
        &[
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "berth-box",
            "true",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied (publickey)"),
        "only keys are offered: {}",
        stderr(&out)
    );

    // A host key other than the session's fails the strict check.
    let other = a.home.path().join("other_host_key");
    keygen(&other);
    let fake = a.home.path().join("fake_known_hosts");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut other_pub = other_pub.split(' ').take(2).collect::<Vec<_>>().join(" ");
    other_pub.insert_str(0, "berth-box ");
    std::fs::write(&fake, format!("{other_pub}\n")).unwrap();
    let out = a.openssh(
        "ssh",
        &cfg,
        &a.identity(),
        &[
            "-o",
            &format!("KnownHostsCommand=/bin/cat {}", fake.display()),
            "berth-box",
            "true",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Host key verification failed")
            || stderr(&out).contains("HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        stderr(&out)
    );

    // Code in the session cannot let a key in: ~/.ssh is not read, berth's file is root's.
    let planted = a.home.path().join("planted");
    keygen(&planted);
    let planted_pub = std::fs::read_to_string(planted.with_extension("pub")).unwrap();
    docker_ok(&[
        "exec",
        "-u",
        "1000:1000",
        &container,
        "sh",
        "-c",
        &format!(
            "mkdir -p ~/.ssh && chmod 700 ~/.ssh && echo '{}' > ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys",
            planted_pub.trim()
        ),
    ]);
    let (wrote, _) = docker(&[
        "exec",
        "-u",
        "1000:1000",
        &container,
        "sh",
        "-c",
        &format!(
            "echo '{}' >> /etc/berth/ssh/authorized_keys",
            planted_pub.trim()
        ),
    ]);
    assert!(!wrote, "the session cannot write berth's authorized_keys");
    let out = a.openssh("ssh", &cfg, &planted, &["berth-box", "true"]);
    assert!(!out.status.success(), "a planted key is refused");

    // A key added while the session runs works at once; a removed one stops.
    let second = a.home.path().join("second");
    keygen(&second);
    let k2 = add_key(
        &alice,
        &std::fs::read_to_string(second.with_extension("pub")).unwrap(),
    )
    .await;
    let out = a.openssh("ssh", &cfg, &second, &["berth-box", "echo added"]);
    assert!(out.status.success(), "the new key: {}", stderr(&out));
    let r = alice
        .delete(&format!(
            "/api/v1/me/ssh-keys/{}",
            k["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let out = a.openssh("ssh", &cfg, &a.identity(), &["berth-box", "true"]);
    assert!(!out.status.success(), "a removed key is refused");
    let out = a.openssh("ssh", &cfg, &second, &["berth-box", "echo still"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // sshd killed by the user is started again by the next connection.
    docker_ok(&[
        "exec",
        "-u",
        "1000:1000",
        &container,
        "sh",
        "-c",
        "kill $(cat /tmp/berth-sshd.pid)",
    ]);
    let out = a.openssh("ssh", &cfg, &second, &["berth-box", "echo $((6*7))"]);
    assert!(out.status.success(), "after kill: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "42");

    // Bob reaches neither the tunnel nor the session through it.
    let r = bob
        .post(&format!("/api/v1/sessions/{id}/tunnel/ssh"), &json!({}))
        .await;
    assert_eq!(r.problem(404).kind, "/problems/not-found");
    let ws = format!(
        "{}/api/v1/sessions/{id}/tunnel/ssh",
        app.base.replacen("http", "ws", 1)
    );
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws.as_str())
            .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", b.key).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 404)
        }
        other => panic!("Bob's tunnel to Alice's session: {:?}", other.map(|_| ())),
    }
    let out = b.berth(&["ssh", "--stdio", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("berth: There is no session"),
        "{}",
        stderr(&out)
    );
    // Bob's own ssh-config has no block for Alice's session, and asked by that host name
    // berth finds no session of his: no proxy, no host key.
    let out = b.berth(&["ssh-config"]);
    assert!(!stdout(&out).contains("Host berth-box"), "{}", stdout(&out));
    for how in ["--stdio", "--known-hosts"] {
        let out = b.berth(&["ssh", how, "--ssh-host", "berth-box"]);
        assert!(!out.status.success());
        assert!(stdout(&out).is_empty(), "{how}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("berth: There is no session"),
            "{how}: {}",
            stderr(&out)
        );
    }
    let _ = k2;
    end_session(&alice, &id).await;
    let second = a.home.path().join("second");

    // The config written for the first "box" stays right: a new session of that name (with a
    // new host key) is reached through it, its host key checked strictly.
    let again = launch(&alice, small_session("box")).await;
    let out = a.openssh(
        "ssh",
        &cfg,
        &second,
        &["berth-box", "echo $BERTH_SESSION_ID"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), again["id"].as_str().unwrap());
    end_session(&alice, again["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn ssh_keys_refuse_bad_input_with_sentences_and_store_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    keygen(&key);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let private = std::fs::read_to_string(&key).unwrap();
    let rsa = dir.path().join("rsa");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "1024", "-N", "", "-f"])
        .arg(&rsa)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rsa_small = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();

    let bad: Vec<(Value, &str)> = vec![
        (json!({"key": "hello world"}), "not an SSH public key"),
        (json!({"key": ""}), "Paste a public key"),
        (json!({"key": private}), "This is a private key"),
        (json!({"key": rsa_small}), "at least 2048 bits"),
        (
            json!({"key": format!("{public}{public}")}),
            "one key at a time",
        ),
        (
            json!({"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBROKEN"}),
            "not an SSH public key",
        ),
        (json!({"key": public, "name": "x".repeat(65)}), "1 to 64"),
        (json!({"key": public, "extra": 1}), "extra"),
    ];
    for (body, says) in bad {
        let r = alice.post("/api/v1/me/ssh-keys", &body).await;
        let p = r.problem(400);
        let all = format!("{} {:?}", p.detail, p.errors);
        assert!(all.contains(says), "{body}: {all}");
        assert_eq!(key_count(&alice).await, 0, "nothing stored for {body}");
    }

    let k = alice
        .post(
            "/api/v1/me/ssh-keys",
            &json!({"key": format!("  {public}\n"), "name": "laptop"}),
        )
        .await
        .expect_json_as::<api::ssh::SshKey>(201);
    assert_eq!(k["name"], "laptop");
    let parts: Vec<&str> = public.split_whitespace().collect();
    assert_eq!(
        k["key"].as_str().unwrap(),
        format!("{} {}", parts[0], parts[1]),
        "normalized without the comment"
    );
    // The same key twice (even with another comment) is a conflict.
    let again = format!("{} {} other-comment", parts[0], parts[1]);
    let p = alice
        .post("/api/v1/me/ssh-keys", &json!({"key": again}))
        .await
        .problem(409);
    assert!(p.detail.contains("already"), "{}", p.detail);
    assert_eq!(key_count(&alice).await, 1);

    // Another user's key answers as missing, and stays.
    let r = bob
        .delete(&format!(
            "/api/v1/me/ssh-keys/{}",
            k["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.problem(404).kind, "/problems/not-found");
    assert_eq!(key_count(&bob).await, 0);
    assert_eq!(key_count(&alice).await, 1);

    // At most 50 keys.
    for i in 1..api::ssh::MAX_SSH_KEYS {
        let p = dir.path().join(format!("k{i}"));
        keygen(&p);
        add_key(
            &alice,
            &std::fs::read_to_string(p.with_extension("pub")).unwrap(),
        )
        .await;
    }
    let p = dir.path().join("one-too-many");
    keygen(&p);
    let r = alice
        .post(
            "/api/v1/me/ssh-keys",
            &json!({"key": std::fs::read_to_string(p.with_extension("pub")).unwrap()}),
        )
        .await;
    let problem = r.problem(409);
    assert_eq!(problem.kind, "/problems/quota");
    assert!(problem.detail.contains("50 SSH keys"), "{}", problem.detail);
    assert_eq!(key_count(&alice).await, 50);

    // The CLI says the server's sentences.
    let a = Laptop::new(&app, &alice).await;
    let out = a.berth(&["ssh-key", "add", key.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("berth: ") && stderr(&out).contains("This is a private key"),
        "{}",
        stderr(&out)
    );
    let out = a.berth(&["ssh-key", "rm", "laptop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = a.berth(&[
        "ssh-key",
        "add",
        a.home.path().join(".ssh/id_ed25519.pub").to_str().unwrap(),
        "--name",
        "cli key",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = a.berth(&["ssh-key", "list"]);
    assert!(stdout(&out).contains("cli key"), "{}", stdout(&out));
}

/// An image like berth/base but without OpenSSH's server.
const NO_SSHD: &str = "berth-test/no-sshd:latest";

fn ensure_image_without_sshd() {
    if docker(&["image", "inspect", NO_SSHD]).0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM berth/base\nUSER root\nRUN rm -f /usr/sbin/sshd\nUSER work\n",
    )
    .unwrap();
    // Two tests building at once race on the tag only: the same image either way.
    docker_ok(&["build", "-q", "-t", NO_SSHD, dir.path().to_str().unwrap()]);
}

#[tokio::test]
async fn an_image_without_sshd_and_a_batch_session_say_why_there_is_no_ssh() {
    ensure_image_without_sshd();
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let a = Laptop::new(&app, &alice).await;
    add_key(&alice, &a.public_key()).await;
    let mut body = small_session("bare");
    body["image"] = json!(NO_SSHD);
    let s = launch(&alice, body).await;
    let id = s["id"].as_str().unwrap().to_string();
    let want = format!(
        "The image {} has no OpenSSH server (/usr/sbin/sshd)",
        NO_SSHD.trim_end_matches(":latest")
    );
    wait_until(
        "the session says its image has no sshd",
        Duration::from_secs(30),
        || {
            let alice = &alice;
            let id = &id;
            let want = &want;
            async move {
                let s = alice.session(id).await;
                s["ssh"]["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(want.as_str()))
            }
        },
    )
    .await;
    let p = alice
        .post(&format!("/api/v1/sessions/{id}/tunnel/ssh"), &json!({}))
        .await
        .problem(409);
    assert!(p.detail.starts_with(&want), "{}", p.detail);
    let out = a.berth(&["ssh", "bare", "--", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(
        !stdout(&a.berth(&["ssh-config"])).contains("Host berth-bare"),
        "no block for a session without SSH"
    );

    // A batch session has no SSH server at all.
    let mut body = small_session("job");
    body["type"] = json!("batch");
    body["command"] = json!("sleep 30");
    let s = alice.create_session(body).await;
    let job = s["id"].as_str().unwrap().to_string();
    let s = wait_status(&alice, &job, "RUNNING", Duration::from_secs(60)).await;
    assert!(s.get("ssh").is_none_or(Value::is_null), "{s}");
    let p = alice
        .post(&format!("/api/v1/sessions/{job}/tunnel/ssh"), &json!({}))
        .await
        .problem(409);
    assert!(p.detail.contains("has no SSH server"), "{}", p.detail);
    end_session(&alice, &job).await;
    end_session(&alice, &id).await;
}
