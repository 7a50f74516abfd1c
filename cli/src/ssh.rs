//! SSH into sessions: `berth ssh-key add|list|rm` (my SSH public keys), `berth ssh SESSION
//! [-- COMMAND]` (runs the system `ssh` with the right options), `berth ssh --stdio SESSION`
//! (ssh's `ProxyCommand`: stdin and stdout spliced with one tunnel websocket to the session's
//! SSH server, app `ssh`) and `berth ssh-config` (`Host berth-NAME` blocks for my running
//! sessions, so `ssh`, `scp`, `sftp`, `rsync -e ssh`, VS Code Remote-SSH and PyCharm work).
//!
//! Hosts are named `berth-NAME` and every option is by name, looked up when ssh connects:
//! the ProxyCommand is `berth ssh --stdio --ssh-host berth-NAME` and the host key comes from
//! berth itself (`KnownHostsCommand berth ssh --known-hosts --ssh-host berth-NAME`, OpenSSH 8.5
//! or later), checked strictly with no other known-hosts file, so there is no first-use prompt
//! and no stale line: a block appended twice, or left from an ended session, reaches whichever
//! session has that name now. The name is written literally into each block (session names are
//! `[a-z0-9-]`), never ssh's `%n`: a host name a hostile repository hands to ssh (say, a git
//! submodule URL) could otherwise reach the ProxyCommand's shell (CVE-2023-51385).

use super::app::Tunnel;
use super::client::{api_path, Auth, Client};
use super::{config, table, Error, Result};
use api::session::{Session, SessionStatus};
use api::ssh::{host_alias, NewSshKey, SshKey, SSH_APP, SSH_USER};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SshArgs {
    /// The session's name or id
    pub session: String,
    /// Splice stdin and stdout with the session's SSH server: the ProxyCommand of `ssh`
    #[arg(long)]
    pub stdio: bool,
    /// Print the session's host key as a known-hosts line: the KnownHostsCommand of `ssh`
    #[arg(long, conflicts_with = "stdio")]
    pub known_hosts: bool,
    /// SESSION is an ssh host name, `berth-NAME` (as `berth ssh-config`'s blocks pass it)
    #[arg(long)]
    pub ssh_host: bool,
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

/// This very program, quoted for ssh's configuration.
fn this_program() -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot tell where this berth program is: {e}")))?;
    Ok(shell_quote(&exe.to_string_lossy()))
}

/// The `ssh` options that reach the session named by host `berth-NAME`: proxy and host key
/// both asked of berth when ssh connects, checked strictly.
fn ssh_options(host: &str) -> Result<Vec<(&'static str, String)>> {
    let me = this_program()?;
    Ok(vec![
        ("User", SSH_USER.to_string()),
        (
            "ProxyCommand",
            format!("{me} ssh --stdio --ssh-host {host}"),
        ),
        (
            "KnownHostsCommand",
            format!("{me} ssh --known-hosts --ssh-host {host}"),
        ),
        ("UserKnownHostsFile", "/dev/null".into()),
        ("GlobalKnownHostsFile", "/dev/null".into()),
        ("StrictHostKeyChecking", "yes".into()),
    ])
}

/// One `Host PATTERN` block of `berth ssh-config`.
fn host_block(pattern: &str, options: &[(&'static str, String)]) -> String {
    let mut out = format!("Host {pattern}\n");
    for (k, v) in options {
        out.push_str(&format!("  {k} {v}\n"));
    }
    out
}

/// The session a command names: with `--ssh-host`, `berth-NAME` is session NAME.
fn named(a: &SshArgs) -> Result<&str> {
    if !a.ssh_host {
        return Ok(&a.session);
    }
    a.session.strip_prefix("berth-").ok_or_else(|| {
        Error::Other(format!(
            "\"{}\" is not a berth host name: those are berth-NAME.",
            a.session
        ))
    })
}

pub async fn run(a: SshArgs) -> Result<()> {
    let target = config::resolve()?;
    let key = target.key.clone();
    let c = Client::new(&target.url, Auth::Key(target.key))?;
    let id = super::session::resolve(&c, named(&a)?).await?;
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
    if a.known_hosts {
        // ssh looks the key up under the name it was given, `berth-NAME`.
        if let Some(x) = &s.ssh {
            println!("{} {}", host_alias(&s.name), x.host_key);
        }
        return Ok(());
    }
    let mut cmd =
        std::process::Command::new(std::env::var("BERTH_SSH").unwrap_or_else(|_| "ssh".into()));
    let host = host_alias(&s.name);
    for (k, v) in ssh_options(&host)? {
        cmd.arg("-o").arg(format!("{k}={v}"));
    }
    cmd.arg(&host);
    if !a.command.is_empty() {
        cmd.arg("--").args(&a.command);
    }
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    Err(Error::Other(format!(
        "cannot run ssh ({e}); install an OpenSSH client (Debian: apt-get install openssh-client)."
    )))
}

/// `berth ssh-config`: a `Host berth-NAME` block per running session of mine that has SSH.
pub async fn config_blocks() -> Result<()> {
    let target = config::resolve()?;
    let c = Client::new(&target.url, Auth::Key(target.key))?;
    let me: api::auth::User = c.get(&api_path(&["me"])).await?;
    let list: Vec<Session> = c.get(&api_path(&["sessions"])).await?;
    let mine: Vec<&Session> = list
        .iter()
        .filter(|s| s.owner == me.id && unreachable_why(s).is_none())
        .collect();
    print!("{}", config_text(&me.username, &target.url, &mine)?);
    Ok(())
}

fn config_text(user: &str, url: &str, sessions: &[&Session]) -> Result<String> {
    let mut out = format!(
        "# berth ssh-config: {} running session(s) of {user} at {url}.\n\
         # Use: berth ssh-config >> ~/.ssh/config, then ssh berth-NAME (or scp, sftp, rsync,\n\
         # VS Code Remote-SSH). Each block asks berth when ssh connects, so it never goes stale;\n\
         # run it again for sessions with new names.\n",
        sessions.len()
    );
    for s in sessions {
        let host = host_alias(&s.name);
        out.push('\n');
        out.push_str(&host_block(&host, &ssh_options(&host)?));
    }
    Ok(out)
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
    fn blocks_reach_sessions_by_name_and_ask_berth_for_the_host_key() {
        let s = test_session(
            json!({"id": "0b6c1c1e-7e29-4a57-9e2f-2f8f2cfa6a00", "name": "nb", "status": "RUNNING",
            "ssh": {"host_key": "ssh-ed25519 AAAA"}}),
        );
        assert!(unreachable_why(&s).is_none());
        let t = config_text("alice", "http://b", &[&s]).unwrap();
        assert!(
            t.contains("\nHost berth-nb\n  User work\n  ProxyCommand '"),
            "{t}"
        );
        assert!(t.contains(" ssh --stdio --ssh-host berth-nb\n"), "{t}");
        assert!(t.contains("  KnownHostsCommand '"), "{t}");
        assert!(
            t.contains(" ssh --known-hosts --ssh-host berth-nb\n"),
            "{t}"
        );
        assert!(t.contains("  UserKnownHostsFile /dev/null\n"), "{t}");
        assert!(t.contains("  StrictHostKeyChecking yes\n"), "{t}");
        assert!(!t.contains('%'), "no ssh tokens reach a shell: {t}");
        assert!(!t.contains('*'), "no wildcard host: {t}");
        assert!(!t.contains("0b6c1c1e"), "by name only: {t}");
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
    fn an_ssh_host_names_its_session() {
        let args = |session: &str, ssh_host: bool| SshArgs {
            session: session.into(),
            stdio: true,
            known_hosts: false,
            ssh_host,
            command: vec![],
        };
        assert_eq!(named(&args("berth-nb", true)).unwrap(), "nb");
        assert_eq!(named(&args("berth-berth-x", true)).unwrap(), "berth-x");
        assert_eq!(named(&args("berth-x", false)).unwrap(), "berth-x");
        assert!(named(&args("nb", true)).is_err());
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
