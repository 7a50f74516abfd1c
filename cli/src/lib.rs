//! The client side of the `berth` command line: `login`, `session …`, `app`, `vfolder …`,
//! `node …` and `admin …` talk to a berth server over its public REST API with an API key,
//! sending and decoding `api` types. They print tables for people and the decoded answer as
//! JSON for scripts (`--json`), and report the server's own sentences on failure.
//!
//! Layout: [`config`] (where URL and key live), [`client`] (typed HTTP and problem+json),
//! [`login`], [`session`], [`app`] (TCP tunnels), [`ssh`] (SSH keys, `berth ssh`,
//! `berth ssh-config`), [`vfolder`] (data folders), [`dotfiles`] (files written into sessions
//! at start), [`node`] (Docker engines), [`admin`], [`table`] (output helpers).
//!
//! This crate never depends on the gateway: the `berth` binary (in the gateway package)
//! flattens [`Command`] next to its own `serve` and hands every other command to
//! [`run_command`].

mod admin;
mod app;
mod client;
mod command;
mod config;
mod dotfiles;
mod login;
mod node;
mod session;
mod ssh;
mod table;
mod vfolder;

pub use admin::{run as admin, AdminCmd, LocalUser};
pub use app::{run as app, AppArgs};
pub use command::{run as run_command, Command};
pub use dotfiles::{run as dotfiles, DotfilesCmd};
pub use login::{login, LoginArgs};
pub use node::{run as node, NodeCmd};
pub use session::{run as session, SessionCmd};
pub use ssh::{SshArgs, SshKeyCmd};
pub use vfolder::{run as vfolder, VfolderCmd};

use std::fmt;

/// Why a command failed; [`Error::exit_code`] and [`report`] turn it into what the user sees.
#[derive(Debug)]
pub enum Error {
    /// The server refused: its problem+json, printed as its `detail` (and field messages).
    Problem {
        /// The server's problem+json.
        problem: Box<api::Problem>,
        /// A line of advice after the server's sentence.
        hint: Option<String>,
    },
    /// The command line itself is wrong (exit code 2, like clap's own errors).
    Usage(String),
    /// Anything else: the network, local files, an answer this client cannot read.
    Other(String),
}

/// A command's outcome.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The process exit code for this error: 2 for usage errors, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem { problem, hint } => {
                let detail = problem.detail.trim();
                if detail.is_empty() {
                    write!(f, "{} (HTTP {})", problem.title, problem.status)?;
                } else {
                    f.write_str(detail)?;
                }
                // Field messages the detail does not already say.
                for e in &problem.errors {
                    if !detail.contains(e.message.trim()) {
                        if e.field.is_empty() {
                            write!(f, "\n  {}", e.message)?;
                        } else {
                            write!(f, "\n  {}: {}", e.field, e.message)?;
                        }
                    }
                }
                if let Some(h) = hint {
                    write!(f, "\n{h}")?;
                }
                Ok(())
            }
            Self::Usage(m) | Self::Other(m) => f.write_str(m),
        }
    }
}

/// Prints the error as `berth: …` on standard error and returns the exit code.
pub fn report(e: &Error) -> i32 {
    eprintln!("berth: {e}");
    e.exit_code()
}

/// Runs a command's future and turns its outcome into an exit code.
pub async fn run<F: std::future::Future<Output = Result<()>>>(f: F) -> i32 {
    match f.await {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// A client for the configured server and key.
fn connect() -> Result<client::Client> {
    let t = config::resolve()?;
    client::Client::new(&t.url, client::Auth::Key(t.key))
}

/// Prompts and reading secrets: hidden on a terminal, else one line of standard input each.
pub(crate) mod prompt {
    use super::{Error, Result};
    use std::io::{BufRead, IsTerminal, Write};

    /// Whether standard input is a terminal (prompts are shown, passwords asked twice).
    pub fn interactive() -> bool {
        std::io::stdin().is_terminal()
    }

    /// One line of standard input without its line ending; `what` names it in the error.
    pub fn read_line(what: &str) -> Result<String> {
        let mut line = String::new();
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::Other(format!("cannot read the {what}: {e}")))?;
        if n == 0 {
            return Err(Error::Usage(format!(
                "No {what} on standard input: type it, or pipe it in on a line of its own."
            )));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Asks on the terminal (standard error) when there is one, else reads a line.
    pub fn line(prompt: &str, what: &str) -> Result<String> {
        if interactive() {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
        }
        read_line(what)
    }

    /// A hidden prompt on a terminal, else a line of standard input.
    pub fn secret(prompt: &str, what: &str) -> Result<String> {
        if interactive() {
            rpassword::prompt_password(prompt)
                .map_err(|e| Error::Other(format!("cannot read the {what}: {e}")))
        } else {
            read_line(what)
        }
    }

    /// A new password: on a terminal asked twice and compared.
    pub fn new_password(prompt: &str) -> Result<String> {
        let pw = secret(prompt, "password")?;
        if interactive() {
            let again = secret("Repeat it: ", "password")?;
            if again != pw {
                return Err(Error::Usage(
                    "The two passwords differ; nothing changed.".into(),
                ));
            }
        }
        Ok(pw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::FieldError;

    #[test]
    fn problems_print_the_sentence_and_new_field_messages() {
        let p = api::Problem::validation(vec![FieldError::new(
            "resources.cpu",
            "CPU must be more than zero.",
        )]);
        let e = Error::Problem {
            problem: Box::new(p),
            hint: None,
        };
        assert_eq!(e.to_string(), "CPU must be more than zero.");
        assert_eq!(e.exit_code(), 1);
        let mut p = api::Problem::new(api::ProblemType::Validation, "The request is invalid.");
        p.errors = vec![FieldError::new("name", "Too long.")];
        let e = Error::Problem {
            problem: Box::new(p),
            hint: Some("Try again.".into()),
        };
        assert_eq!(
            e.to_string(),
            "The request is invalid.\n  name: Too long.\nTry again."
        );
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
    }
}
