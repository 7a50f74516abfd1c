//! The SSH server of a session. An interactive session gets the reserved app `ssh` on
//! [`api::ssh::SSH_PORT`] (published on the node's loopback like every app), an ed25519 host
//! key made by berth (kept on the session's row, so clients know it: no trust-on-first-use),
//! and three files written into its running container ([`files`]):
//!
//! - `/etc/berth/ssh/authorized_keys` — the owner's keys; root's, mode 0644, in a root-owned
//!   directory, so code in the session can read but never change it. Rewritten by berth in
//!   the owner's running sessions when a key is added or removed ([`refresh_owner`]).
//! - `/etc/berth/ssh/sshd_config` — root's, 0644: port 2200, keys only (no password, no
//!   keyboard-interactive, no PAM), only `work`, SFTP, TCP forwarding (VS Code needs it), and
//!   the session's environment for logins and commands (`SetEnv`).
//! - `/etc/berth/ssh/host_ed25519_key` — the private host key, `work`'s, 0600 (sshd runs as
//!   `work`, so it must read it; the session's own code can too).
//!
//! The host key is made while the container is prepared ([`make_host_key`]). Right after
//! RUNNING, off the launch path (an archive upload costs ~60 ms there), berth writes the files
//! and starts `/usr/sbin/sshd` as uid 1000 (it daemonizes) ([`start`]); an image without it
//! gets [`no_sshd`]'s sentence on the session. Before the tunnel splices a connection,
//! [`ensure_listening`] checks that sshd answers and, if not (not up yet, or the user killed
//! it), writes the files and starts it again once.

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::nodes::{ContainerFile, Node};
use crate::sessions::store::{AppPort, SessionRow};
use crate::AppState;
use api::session::{SessionStatus, SessionType};
use api::ssh::{SSH_APP, SSH_PORT};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

pub const SSHD: &str = "/usr/sbin/sshd";
pub const CONFIG: &str = "/etc/berth/ssh/sshd_config";
pub const HOST_KEY: &str = "/etc/berth/ssh/host_ed25519_key";
pub const AUTHORIZED_KEYS: &str = "/etc/berth/ssh/authorized_keys";
/// Where sshd, running as `work`, keeps its pid and its log.
const PID_FILE: &str = "/tmp/berth-sshd.pid";
const LOG_FILE: &str = "/tmp/berth-sshd.log";
/// The `PATH` of logins and commands, as the container's own (`DockerNode::start_session`).
const PATH: &str =
    "/home/work/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The reserved app a new interactive session gets, beside its image's apps.
pub fn app_for(kind: SessionType) -> Option<api::images::ServicePort> {
    (kind == SessionType::Interactive).then(|| api::images::ServicePort {
        name: SSH_APP.into(),
        protocol: SSH_APP.into(),
        port: SSH_PORT,
    })
}

/// Whether berth set SSH up in this session (an interactive session launched with it).
pub fn has_ssh(s: &SessionRow) -> bool {
    s.apps().iter().any(is_ssh_app)
}

pub fn is_ssh_app(a: &AppPort) -> bool {
    a.name == SSH_APP && a.protocol == SSH_APP
}

/// The sentence of a session whose image has no OpenSSH server.
pub fn no_sshd(image: &str) -> String {
    format!(
        "The image {image} has no OpenSSH server ({SSHD}), so this session cannot be reached over SSH; launch an image built on berth/base, or install openssh-server in yours."
    )
}

/// A new ed25519 host key: (private, OpenSSH format; public, `ssh-ed25519 BASE64`).
pub fn generate_host_key() -> anyhow::Result<(String, String)> {
    let seed: [u8; 32] = rand::random();
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut private = ssh_key::PrivateKey::from(pair);
    private.set_comment("berth");
    let pem = private.to_openssh(ssh_key::LineEnding::LF)?.to_string();
    let mut public = private.public_key().clone();
    public.set_comment("");
    Ok((pem, public.to_openssh()?.trim().to_string()))
}

/// The session's private host key, made and stored on its first container (the same key for
/// a container made again after a restart, so clients' known hosts stay true).
async fn host_key(db: &Db, s: &SessionRow) -> anyhow::Result<String> {
    if let Some(k) = &s.ssh_host_key {
        return Ok(k.clone());
    }
    let (private, public) = generate_host_key()?;
    sqlx::query(
        "UPDATE sessions SET ssh_host_key = $1, ssh_host_pub = $2 WHERE id = $3 AND ssh_host_key IS NULL",
    )
    .bind(&private)
    .bind(&public)
    .bind(&s.id)
    .execute(db)
    .await?;
    // A racing preparation may have stored its own first: that one is the session's.
    let (k,): (Option<String>,) = sqlx::query_as("SELECT ssh_host_key FROM sessions WHERE id = $1")
        .bind(&s.id)
        .fetch_one(db)
        .await?;
    k.ok_or_else(|| anyhow::anyhow!("the host key was not stored"))
}

/// `authorized_keys` for `owner_id`: their keys, nothing else.
async fn authorized_keys(db: &Db, owner_id: &str) -> sqlx::Result<ContainerFile> {
    let mut text = String::from(
        "# Written by berth: the session owner's SSH keys (Settings → SSH keys). Changes here are not kept.\n",
    );
    for k in super::keys_of(db, owner_id).await? {
        text.push_str(&format!("{} berth-key-{}\n", k.key, k.id));
    }
    Ok(ContainerFile {
        path: AUTHORIZED_KEYS.into(),
        content: text.into_bytes(),
        uid: 0,
        gid: 0,
        mode: 0o644,
        link_to: None,
    })
}

/// One `SetEnv` argument, quoted as sshd_config's tokenizer reads it back.
fn setenv_arg(name: &str, value: &str) -> String {
    let mut out = String::from("\"");
    for c in format!("{name}={value}").chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The daemon's configuration; `env` is what logins and commands see beside PATH
/// (the session's own variables and GPU variables; values with line breaks cannot be
/// written and are left out).
pub fn sshd_config(session_id: &str, env: &BTreeMap<String, String>) -> String {
    let mut vars = vec![
        setenv_arg("PATH", PATH),
        setenv_arg("BERTH_SESSION_ID", session_id),
    ];
    for (k, v) in env {
        if matches!(
            k.as_str(),
            "PATH" | "BERTH_SESSION_ID" | "BERTH_JUPYTER_TOKEN"
        ) || v.contains(['\n', '\r', '\0'])
        {
            continue;
        }
        vars.push(setenv_arg(k, v));
    }
    format!(
        "# Written by berth: sshd runs as work on the session's helper port and lets in only the
# owner's keys, through berth's authenticated tunnel. Changes here are not kept.
Port {SSH_PORT}
AddressFamily inet
HostKey {HOST_KEY}
PidFile {PID_FILE}
AuthorizedKeysFile {AUTHORIZED_KEYS}
StrictModes yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitEmptyPasswords no
UsePAM no
PermitRootLogin no
AllowUsers work
PermitUserEnvironment no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
GatewayPorts no
X11Forwarding no
PrintMotd no
ClientAliveInterval 30
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
SetEnv {}
",
        vars.join(" ")
    )
}

/// Makes and stores the session's host key if it has none yet. A failure is logged: the
/// session still runs, and [`start`] tries again.
pub async fn make_host_key(db: &Db, s: &SessionRow) {
    if let Err(e) = host_key(db, s).await {
        tracing::warn!(session = %s.id, "making the session's SSH host key failed: {e:?}");
    }
}

/// The files of SSH for a session's container; `env` is what [`sshd_config`] passes on. The
/// authorized keys come first, so the directory berth makes for them is root's.
pub async fn files(
    db: &Db,
    s: &SessionRow,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<ContainerFile>> {
    let keys = authorized_keys(db, &s.owner_id).await?;
    let host = host_key(db, s).await?;
    Ok(vec![
        keys,
        ContainerFile {
            path: CONFIG.into(),
            content: sshd_config(&s.id, env).into_bytes(),
            uid: 0,
            gid: 0,
            mode: 0o644,
            link_to: None,
        },
        ContainerFile {
            path: HOST_KEY.into(),
            content: host.into_bytes(),
            uid: 1000,
            gid: 1000,
            mode: 0o600,
            link_to: None,
        },
    ])
}

/// Writes the SSH files into session `s`'s running container and starts sshd there;
/// `Ok(false)`: the image has none.
async fn set_up(
    lifecycle: &crate::sessions::lifecycle::Lifecycle,
    node: &Arc<dyn Node>,
    s: &SessionRow,
    container_id: &str,
) -> anyhow::Result<bool> {
    let db = lifecycle.db();
    let mut files = files(db, s, &lifecycle.container_env(s)).await?;
    // A key change committed after the keys were read is written by `refresh_owner` (the
    // session is RUNNING), perhaps before this write lands: read them again until what was
    // written is what the database holds, so the last write is never a stale one.
    for round in 1.. {
        node.write_files(container_id, &files)
            .await
            .map_err(|e| anyhow::anyhow!("writing the SSH files failed: {}", e.0))?;
        let now = authorized_keys(db, &s.owner_id).await?;
        if files.first() == Some(&now) || round == 5 {
            break;
        }
        files = vec![now];
    }
    run_sshd(node, container_id, &s.id).await
}

/// Runs sshd in the container; `Ok(false)`: the image has none.
async fn run_sshd(node: &Arc<dyn Node>, container_id: &str, session: &str) -> anyhow::Result<bool> {
    let (code, out) = node
        .exec_as_work(container_id, &[SSHD, "-f", CONFIG, "-E", LOG_FILE])
        .await?;
    match code {
        0 => Ok(true),
        // No such program (or not executable): the image has no OpenSSH server.
        126 | 127 => Ok(false),
        _ => {
            // Already running (the port is taken) ends here too; the tunnel's check says more.
            tracing::info!(session, code, output = %out.trim(), "sshd did not start");
            Ok(true)
        }
    }
}

/// Records that the session's image has no sshd, and tells the owner's console.
async fn mark_no_sshd(lifecycle: &crate::sessions::lifecycle::Lifecycle, s: &SessionRow) {
    let res = sqlx::query("UPDATE sessions SET ssh_error = $1 WHERE id = $2")
        .bind(no_sshd(&s.image))
        .bind(&s.id)
        .execute(lifecycle.db())
        .await;
    match res {
        Ok(_) => lifecycle.publish(&s.id).await,
        Err(e) => tracing::warn!(session = %s.id, "recording the missing sshd failed: {e:?}"),
    }
}

/// Sets up and starts the session's sshd (right after RUNNING, off the launch path).
pub async fn start(
    lifecycle: Arc<crate::sessions::lifecycle::Lifecycle>,
    node: Arc<dyn Node>,
    s: SessionRow,
    container_id: String,
) {
    if !has_ssh(&s) {
        return;
    }
    match set_up(&lifecycle, &node, &s, &container_id).await {
        Ok(true) => {}
        Ok(false) => mark_no_sshd(&lifecycle, &s).await,
        Err(e) => tracing::warn!(session = %s.id, "starting sshd failed: {e:?}"),
    }
}

/// Whether an SSH server answers at `addr` (its banner). A published port with nothing
/// behind it may accept and close at once (Docker's userland proxy).
async fn answers(addr: SocketAddr) -> bool {
    let probe = async {
        let mut c = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"SSH-")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), probe).await,
        Ok(Some(true))
    )
}

/// Before the tunnel splices a connection to the session's sshd at `addr`: the sentence
/// when its image has none; sshd started again once when nothing answers.
pub async fn ensure_listening(state: &AppState, s: &SessionRow, addr: SocketAddr) -> AppResult<()> {
    if let Some(e) = &s.ssh_error {
        return Err(AppError::conflict(e.clone()));
    }
    if answers(addr).await {
        return Ok(());
    }
    let lifecycle = &state.lifecycle;
    let (Some(node), Some(cid)) = (lifecycle.node_of(s), s.container_id.as_deref()) else {
        return Err(AppError::conflict(format!(
            "Session {} has no container to reach over SSH.",
            s.name
        )));
    };
    tracing::info!(session = %s.id, "nothing answers on the session's SSH port; starting sshd again");
    match set_up(lifecycle, &node, s, cid).await {
        Ok(true) => {}
        Ok(false) => {
            mark_no_sshd(lifecycle, s).await;
            return Err(AppError::conflict(no_sshd(&s.image)));
        }
        Err(e) => {
            tracing::warn!(session = %s.id, "starting sshd failed: {e:?}");
        }
    }
    for _ in 0..30 {
        if answers(addr).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(AppError::conflict(format!(
        "The SSH server of session {} did not start; see /tmp/berth-sshd.log in the session.",
        s.name
    )))
}

/// Writes `owner_id`'s keys into each of their running sessions with SSH, so an added key
/// works and a removed one stops working without a relaunch. Best effort: failures are
/// logged (the next launch writes the keys again).
pub async fn refresh_owner(state: &AppState, owner_id: &str) {
    let rows = match crate::sessions::store::with_status(&state.db, &[SessionStatus::Running]).await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                user = owner_id,
                "listing sessions to update SSH keys failed: {e:?}"
            );
            return;
        }
    };
    let rows: Vec<SessionRow> = rows
        .into_iter()
        .filter(|r| r.owner_id == owner_id && has_ssh(r) && r.container_id.is_some())
        .collect();
    if rows.is_empty() {
        return;
    }
    let file = match authorized_keys(&state.db, owner_id).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(user = owner_id, "reading SSH keys failed: {e:?}");
            return;
        }
    };
    for r in rows {
        let (Some(node), Some(cid)) = (state.lifecycle.node_of(&r), r.container_id.as_deref())
        else {
            continue;
        };
        if let Err(e) = node.write_files(cid, std::slice::from_ref(&file)).await {
            tracing::warn!(session = %r.id, "updating the session's SSH keys failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setenv_values_are_quoted_for_sshd() {
        assert_eq!(setenv_arg("A", "x y"), "\"A=x y\"");
        assert_eq!(
            setenv_arg("A", "say \"hi\" \\o/"),
            "\"A=say \\\"hi\\\" \\\\o/\""
        );
        let env = BTreeMap::from([
            ("MODEL".to_string(), "big one".to_string()),
            ("BAD".to_string(), "two\nlines".to_string()),
            ("BERTH_JUPYTER_TOKEN".to_string(), "secret".to_string()),
        ]);
        let c = sshd_config("sid", &env);
        let line = c.lines().find(|l| l.starts_with("SetEnv ")).unwrap();
        assert!(line.contains("\"MODEL=big one\""));
        assert!(line.contains("\"BERTH_SESSION_ID=sid\""));
        assert!(!line.contains("BAD") && !line.contains("secret"));
        assert!(c.contains("PasswordAuthentication no\n"));
        assert!(c.contains("AllowUsers work\n"));
    }

    #[test]
    fn host_keys_are_ed25519_in_openssh_form() {
        let (private, public) = generate_host_key().unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(public.starts_with("ssh-ed25519 AAAA"));
        assert_eq!(public.split(' ').count(), 2);
        let back = ssh_key::PrivateKey::from_openssh(&private).unwrap();
        assert_eq!(
            back.public_key().key_data(),
            ssh_key::PublicKey::from_openssh(&public)
                .unwrap()
                .key_data()
        );
    }
}
