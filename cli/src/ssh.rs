//! SSH into sessions: `berth ssh-key add|list|rm` (my SSH public keys), `berth ssh SESSION
//! [-- COMMAND]` (runs the system `ssh` with the right options), `berth ssh --stdio SESSION`
//! (ssh's `ProxyCommand`: stdin and stdout spliced with one tunnel websocket to the session's
//! SSH server, app `ssh`) and `berth ssh-config` (`Host berth-NAME` blocks for my running
//! sessions, so `ssh`, `scp`, `sftp`, `rsync -e ssh`, VS Code Remote-SSH and PyCharm work).
//!
//! The host keys berth made for the sessions go into `~/.config/berth/known_hosts` (beside
//! the configuration), named `berth-ID` (`HostKeyAlias`), so clients check them strictly
//! without a first-use prompt.

use super::app::Tunnel;
use super::client::{api_path, Auth, Client};
use super::{config, table, Error, Result};
use api::session::{Session, SessionStatus};
use api::ssh::{host_alias, host_key_alias, NewSshKey, SshKey, SSH_APP, SSH_USER};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SshArgs {
    /// The session's name or id
    pub session: String,
    /// Splice stdin and stdout with the session's SSH server: the ProxyCommand of `ssh`
    #[arg(long)]
    pub stdio: bool,
    /// A command to run instead of a login shell (after `--`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum SshKeyCmd {
    /// Add a public key from a file (e.g. ~/.ssh/id_ed25519.pub; `-` reads stdin)
    Add {
        file: PathBuf,
        /// The key's name (default: the key's comment)
        #[arg(long)]
        name: Option<String>,
    },
    /// List my SSH keys
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a key, by id (or the start of it) or name
    Rm { key: String },
}

pub async fn key(cmd: SshKeyCmd) -> Result<()> {
    let target = config::resolve()?;
    let c = Client::new(&target.url, Auth::Key(target.key))?;
    let path = api_path(&["me", "ssh-keys"]);
    match cmd {
        SshKeyCmd::Add { file, name } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::Other(format!("cannot read stdin: {e}")))?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| Error::Other(format!("cannot read {}: {e}", file.display())))?
            };
            let k: SshKey = c.post(&path, &NewSshKey { name, key: text }).await?;
            println!("Added SSH key \"{}\" ({}).", k.name, k.fingerprint);
        }
        SshKeyCmd::List { json } => {
            let keys: Vec<SshKey> = c.get(&path).await?;
            if json {
                table::print_json(&keys);
            } else if keys.is_empty() {
                println!(
                    "No SSH keys yet: add one with `berth ssh-key add ~/.ssh/id_ed25519.pub`."
                );
            } else {
                let mut t = table::Table::new(&["NAME", "ID", "TYPE", "FINGERPRINT", "ADDED"]);
                for k in &keys {
                    t.row(vec![
                        k.name.clone(),
                        k.id.chars().take(8).collect(),
                        k.key.split(' ').next().unwrap_or("").to_string(),
                        k.fingerprint.clone(),
                        table::age(&k.created_at),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        SshKeyCmd::Rm { key } => {
            let keys: Vec<SshKey> = c.get(&path).await?;
            let k = pick_key(&keys, &key)?;
            let _: () = c.delete(&api_path(&["me", "ssh-keys", &k.id])).await?;
            println!("Removed SSH key \"{}\" ({}).", k.name, k.fingerprint);
        }
    }
    Ok(())
}

/// The key `arg` names: an exact id or name, else a unique id prefix.
fn pick_key<'a>(keys: &'a [SshKey], arg: &str) -> Result<&'a SshKey> {
    if let Some(k) = keys.iter().find(|k| k.id == arg || k.name == arg) {
        return Ok(k);
    }
    let by_id: Vec<&SshKey> = keys.iter().filter(|k| k.id.starts_with(arg)).collect();
    match (by_id.len(), arg.len() >= 4) {
        (1, true) => Ok(by_id[0]),
        (n, true) if n > 1 => Err(Error::Other(format!(
            "\"{arg}\" is the start of {n} key ids; give more of the id or the name."
        ))),
        _ => Err(Error::Other(format!(
            "You have no SSH key named \"{}\".",
            arg.escape_default()
        ))),
    }
}

/// Why `s` cannot be reached over SSH, as a sentence; `None` when it can.
pub fn unreachable_why(s: &Session) -> Option<String> {
    match &s.ssh {
        None => Some(format!(
            "Session \"{}\" has no SSH server: berth sets one up in interactive sessions.",
            s.name
        )),
        Some(x) if x.error.is_some() => x.error.clone(),
        Some(_) if s.status != SessionStatus::Running => Some(format!(
            "Session \"{}\" is {}, not RUNNING; SSH opens once it runs.",
            s.name, s.status
        )),
        Some(_) => None,
    }
}

/// Quotes `s` for the shell `ssh` runs a ProxyCommand with, `%` escaped from ssh's tokens.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''")).replace('%', "%%")
}

/// The `ProxyCommand` of session `id`: this very program, `ssh --stdio ID`.
fn proxy_command(id: &str) -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot tell where this berth program is: {e}")))?;
    Ok(format!(
        "{} ssh --stdio {id}",
        shell_quote(&exe.to_string_lossy())
    ))
}

/// `~/.config/berth/known_hosts`.
fn known_hosts_path() -> Result<PathBuf> {
    let cfg = config::path()?;
    Ok(cfg.parent().unwrap_or(Path::new(".")).join("known_hosts"))
}

/// Writes the host keys of `sessions` into berth's known hosts, replacing their old lines
/// and keeping every other one.
fn remember_host_keys(sessions: &[&Session]) -> Result<PathBuf> {
    let p = known_hosts_path()?;
    let old = std::fs::read_to_string(&p).unwrap_or_default();
    let ours: Vec<(String, &str)> = sessions
        .iter()
        .filter_map(|s| Some((host_key_alias(&s.id), s.ssh.as_ref()?.host_key.as_str())))
        .collect();
    let mut text: String = old
        .lines()
        .filter(|l| {
            let host = l.split_whitespace().next().unwrap_or("");
            !ours.iter().any(|(a, _)| a == host)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for (alias, key) in &ours {
        text.push_str(&format!("{alias} {key}\n"));
    }
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let tmp = p.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    };
    write().map_err(|e| Error::Other(format!("cannot write {}: {e}", p.display())))?;
    Ok(p)
}

/// The `ssh` options that reach session `s`: user, proxy, host key alias and known hosts.
fn ssh_options(s: &Session, known_hosts: &Path) -> Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("User", SSH_USER.to_string()),
        ("ProxyCommand", proxy_command(&s.id)?),
        ("HostKeyAlias", host_key_alias(&s.id)),
        (
            "UserKnownHostsFile",
            shell_quote(&known_hosts.to_string_lossy()),
        ),
        ("StrictHostKeyChecking", "yes".into()),
    ])
}

/// One `Host berth-NAME` block of `berth ssh-config`.
pub fn host_block(s: &Session, known_hosts: &Path) -> Result<String> {
    let mut out = format!(
        "Host {}\n  HostName {}\n",
        host_alias(&s.name),
        host_key_alias(&s.id)
    );
    for (k, v) in ssh_options(s, known_hosts)? {
        out.push_str(&format!("  {k} {v}\n"));
    }
    Ok(out)
}

pub async fn run(a: SshArgs) -> Result<()> {
    let target = config::resolve()?;
    let key = target.key.clone();
    let c = Client::new(&target.url, Auth::Key(target.key))?;
    let id = super::session::resolve(&c, &a.session).await?;
    if a.stdio {
        // ssh waits on our stdout and owns the terminal: errors go to stderr, as ssh shows them.
        let t = Tunnel::new(c, key, &id, SSH_APP);
        let code = match t.splice(tokio::io::stdin(), tokio::io::stdout()).await {
            Ok(()) => 0,
            Err(e) => crate::report(&e),
        };
        // The runtime would wait for the blocking read of stdin; nothing is left to do.
        std::process::exit(code);
    }
    let s: Session = c.get(&api_path(&["sessions", &id])).await?;
    if let Some(why) = unreachable_why(&s) {
        return Err(Error::Other(why));
    }
    let known = remember_host_keys(&[&s])?;
    let mut cmd =
        std::process::Command::new(std::env::var("BERTH_SSH").unwrap_or_else(|_| "ssh".into()));
    for (k, v) in ssh_options(&s, &known)? {
        cmd.arg("-o").arg(format!("{k}={v}"));
    }
    cmd.arg(host_alias(&s.name));
    if !a.command.is_empty() {
        cmd.arg("--").args(&a.command);
    }
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    Err(Error::Other(format!(
        "cannot run ssh ({e}); install an OpenSSH client (Debian: apt-get install openssh-client)."
    )))
}

/// `berth ssh-config`: a `Host` block per running session of mine that has SSH.
pub async fn config_blocks() -> Result<()> {
    let target = config::resolve()?;
    let c = Client::new(&target.url, Auth::Key(target.key))?;
    let me: api::auth::User = c.get(&api_path(&["me"])).await?;
    let list: Vec<Session> = c.get(&api_path(&["sessions"])).await?;
    let mine: Vec<&Session> = list
        .iter()
        .filter(|s| s.owner == me.id && unreachable_why(s).is_none())
        .collect();
    let known = remember_host_keys(&mine)?;
    let mut out = format!(
        "# berth ssh-config: {} session(s) of {} at {}; host keys in {}.\n# Use: berth ssh-config >> ~/.ssh/config, then ssh berth-NAME (or scp, sftp, rsync, VS Code Remote-SSH).\n",
        mine.len(),
        me.username,
        target.url,
        known.display()
    );
    for s in mine {
        out.push('\n');
        out.push_str(&host_block(s, &known)?);
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::test_session;
    use serde_json::json;

    #[test]
    fn quoting_for_the_proxy_command() {
        assert_eq!(shell_quote("/usr/bin/berth"), "'/usr/bin/berth'");
        assert_eq!(shell_quote("/a b/it's%"), "'/a b/it'\\''s%%'");
    }

    #[test]
    fn blocks_name_the_session_and_its_host_key() {
        let s = test_session(
            json!({"id": "0b6c1c1e-7e29-4a57-9e2f-2f8f2cfa6a00", "name": "nb", "status": "RUNNING",
            "ssh": {"host_key": "ssh-ed25519 AAAA"}}),
        );
        assert!(unreachable_why(&s).is_none());
        let b = host_block(&s, Path::new("/h/.config/berth/known_hosts")).unwrap();
        assert!(b.starts_with("Host berth-nb\n  HostName berth-0b6c1c1e-7e29-4a57-9e2f-2f8f2cfa6a00\n  User work\n  ProxyCommand '"));
        assert!(b.contains(" ssh --stdio 0b6c1c1e-7e29-4a57-9e2f-2f8f2cfa6a00\n"));
        assert!(b.contains("  HostKeyAlias berth-0b6c1c1e-7e29-4a57-9e2f-2f8f2cfa6a00\n"));
        assert!(b.contains("  UserKnownHostsFile '/h/.config/berth/known_hosts'\n"));
        assert!(b.contains("  StrictHostKeyChecking yes\n"));
        let s = test_session(json!({"name": "nb", "status": "RUNNING",
            "ssh": {"host_key": "k", "error": "The image x has no OpenSSH server."}}));
        assert_eq!(
            unreachable_why(&s).unwrap(),
            "The image x has no OpenSSH server."
        );
        let s = test_session(json!({"name": "nb", "status": "RUNNING"}));
        assert!(unreachable_why(&s).unwrap().contains("no SSH server"));
    }

    #[test]
    fn keys_are_picked_by_id_prefix_or_name() {
        let k = |id: &str, name: &str| SshKey {
            id: id.into(),
            name: name.into(),
            key: "ssh-ed25519 AAAA".into(),
            fingerprint: "SHA256:x".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        let keys = vec![k("abcd1234", "laptop"), k("abce9999", "desk")];
        assert_eq!(pick_key(&keys, "laptop").unwrap().id, "abcd1234");
        assert_eq!(pick_key(&keys, "abce").unwrap().name, "desk");
        assert!(pick_key(&keys, "abc").is_err());
        assert!(pick_key(&keys, "nope").is_err());
    }
}
