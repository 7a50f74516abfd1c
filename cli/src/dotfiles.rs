//! `berth dotfiles list|set|rm`: the files written into every session at start — your own,
//! a project's (`--project P`, admins write) or the domain's (`--domain`, admins). Paths,
//! modes and sizes are checked here with the server's own rules (`api::dotfiles`) before
//! anything is sent.

use super::client::{api_path, segment, Client};
use super::table::{self, Table};
use super::{connect, Error, Result};
use api::dotfiles::{validate_path, Dotfile, Level, PutDotfile, MAX_CONTENT};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Which level a command works on.
#[derive(Debug, Clone, clap::Args)]
pub struct LevelArgs {
    /// A project's dotfiles (its name or id) instead of your own
    #[arg(long, value_name = "PROJECT", conflicts_with = "domain")]
    pub project: Option<String>,
    /// The domain's dotfiles, everyone's (admins)
    #[arg(long)]
    pub domain: bool,
}

impl LevelArgs {
    fn level(&self) -> Level {
        match (&self.project, self.domain) {
            (Some(_), _) => Level::Project,
            (None, true) => Level::Domain,
            (None, false) => Level::User,
        }
    }

    /// The API path of this level's dotfiles.
    fn base(&self) -> String {
        match (&self.project, self.domain) {
            (Some(p), _) => api_path(&["projects", p, "dotfiles"]),
            (None, true) => api_path(&["admin", "dotfiles"]),
            (None, false) => api_path(&["dotfiles"]),
        }
    }

    /// "for you", "for project P", "for the domain".
    fn whose(&self) -> String {
        match (&self.project, self.domain) {
            (Some(p), _) => format!("for project {p}"),
            (None, true) => "for the domain".into(),
            (None, false) => "for you".into(),
        }
    }
}

/// `berth dotfiles …`.
#[derive(Debug, clap::Subcommand)]
pub enum DotfilesCmd {
    /// List dotfiles: path, mode, size, when changed
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        level: LevelArgs,
        /// Print the server's JSON (contents included)
        #[arg(long)]
        json: bool,
    },
    /// Create or replace the dotfile at PATH with the content of a local file
    Set {
        /// ~/REL (your home in the session), or /etc/REL for a project or the domain.
        /// Quote it: a shell turns ~ into your own home, which is read back as ~/…
        path: String,
        /// The local file to send (UTF-8 text, at most 64 KiB); - reads standard input
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Permission bits in octal, at most 0777 (default 0644)
        #[arg(long)]
        mode: Option<String>,
        #[command(flatten)]
        level: LevelArgs,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove the dotfile at PATH
    #[command(visible_alias = "remove")]
    Rm {
        /// The dotfile's path, as `berth dotfiles list` shows it
        path: String,
        #[command(flatten)]
        level: LevelArgs,
    },
}

/// Runs a `dotfiles` command.
pub async fn run(cmd: DotfilesCmd) -> Result<()> {
    match cmd {
        DotfilesCmd::List { level, json } => list(&connect()?, &level, json).await,
        DotfilesCmd::Set {
            path,
            file,
            mode,
            level,
            json,
        } => {
            // Bad input is refused before a server or a key is needed.
            let req = set_request(&path, &file, mode, &level)?;
            set(&connect()?, &req, &level, json).await
        }
        DotfilesCmd::Rm { path, level } => {
            let path = home_relative(&path, std::env::var_os("HOME").as_deref().map(Path::new));
            validate_path(&path, level.level()).map_err(Error::Usage)?;
            let c = connect()?;
            c.delete::<()>(&format!("{}?path={}", level.base(), segment(&path)))
                .await?;
            println!("Removed {path} {}.", level.whose());
            Ok(())
        }
    }
}

/// A path the shell expanded from `~/X` (under the local `$HOME`) is taken as `~/X`.
fn home_relative(path: &str, home: Option<&Path>) -> String {
    if let Some(home) = home.and_then(Path::to_str).filter(|h| h.len() > 1) {
        if let Some(rest) = path.strip_prefix(home.trim_end_matches('/')) {
            if let Some(rest) = rest.strip_prefix('/') {
                return format!("~/{rest}");
            }
        }
    }
    path.to_string()
}

/// The request of `dotfiles set`, its file read and everything checked with the server's rules.
fn set_request(
    path: &str,
    file: &Path,
    mode: Option<String>,
    level: &LevelArgs,
) -> Result<PutDotfile> {
    let path = home_relative(path, std::env::var_os("HOME").as_deref().map(Path::new));
    let mut bytes = Vec::new();
    let limit = MAX_CONTENT as u64 + 1;
    let read = if file == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| Error::Other(format!("cannot read {}: {e}", file.display())))?;
    let content = String::from_utf8(bytes).map_err(|_| {
        Error::Usage(format!(
            "{} is not text: a dotfile's content is UTF-8.",
            file.display()
        ))
    })?;
    let req = PutDotfile {
        path,
        content,
        mode,
    };
    req.validate(level.level()).map_err(|errs| {
        Error::Usage(
            errs.iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )
    })?;
    Ok(req)
}

async fn set(c: &Client, req: &PutDotfile, level: &LevelArgs, json: bool) -> Result<()> {
    let d: Dotfile = c.put(&level.base(), req).await?;
    if json {
        table::print_json(&d);
    } else {
        println!(
            "Set {} ({}, {} bytes) {}.",
            d.path,
            d.mode,
            d.content.len(),
            level.whose()
        );
    }
    Ok(())
}

async fn list(c: &Client, level: &LevelArgs, json: bool) -> Result<()> {
    let files: Vec<Dotfile> = c.get(&level.base()).await?;
    if json {
        table::print_json(&files);
        return Ok(());
    }
    if files.is_empty() {
        println!("No dotfiles {}.", level.whose());
        return Ok(());
    }
    let mut t = Table::new(&["PATH", "MODE", "SIZE", "CHANGED"]);
    for d in &files {
        t.row(vec![
            d.path.clone(),
            d.mode.clone(),
            d.content.len().to_string(),
            table::age(&d.updated_at),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_the_shell_expanded_is_read_as_home_relative() {
        let home = Some(Path::new("/home/alice"));
        assert_eq!(home_relative("/home/alice/.bashrc", home), "~/.bashrc");
        assert_eq!(home_relative("/home/alice/.config/x", home), "~/.config/x");
        assert_eq!(home_relative("~/.vimrc", home), "~/.vimrc");
        assert_eq!(
            home_relative("/home/alicex/.bashrc", home),
            "/home/alicex/.bashrc"
        );
        assert_eq!(home_relative("/etc/pip.conf", home), "/etc/pip.conf");
        assert_eq!(
            home_relative("/etc/pip.conf", Some(Path::new("/"))),
            "/etc/pip.conf"
        );
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_sent() {
        let own = LevelArgs {
            project: None,
            domain: false,
        };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rc");
        std::fs::write(&f, "alias ll='ls -l'\n").unwrap();
        let e = set_request("/etc/x", &f, None, &own).unwrap_err();
        assert!(e.to_string().contains("only administrators"), "{e}");
        let e = set_request("~/.x", &f, Some("4755".into()), &own).unwrap_err();
        assert!(e.to_string().contains("set-uid"), "{e}");
        std::fs::write(&f, vec![b'a'; MAX_CONTENT + 1]).unwrap();
        let e = set_request("~/.x", &f, None, &own).unwrap_err();
        assert!(e.to_string().contains("64 KiB"), "{e}");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        let e = set_request("~/.x", &f, None, &own).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        let domain = LevelArgs {
            project: None,
            domain: true,
        };
        std::fs::write(&f, "x").unwrap();
        let r = set_request("/etc/pip.conf", &f, Some("0600".into()), &domain).unwrap();
        assert_eq!(r.mode.as_deref(), Some("0600"));
        assert_eq!(domain.base(), "/api/v1/admin/dotfiles");
        let p = LevelArgs {
            project: Some("ml team".into()),
            domain: false,
        };
        assert_eq!(p.base(), "/api/v1/projects/ml%20team/dotfiles");
    }
}
