//! `berth admin user|project|policy`: the admin API from the command line. `admin user add
//! --data-dir DIR` is the one local command: it writes the database directly, so a server
//! can get its users before anyone holds a key.
//!
//! Layout: the argument types and [`run`] here; [`users`], [`projects`], [`policy`],
//! [`usage`].

use self::policy::policy;
use self::projects::project;
use self::usage::usage;
use self::users::{user, user_add_local};
use super::{connect, Result};
use std::path::PathBuf;

mod policy;
mod projects;
mod usage;
mod users;

/// `berth admin …`.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCmd {
    /// Users: add, list, passwd, disable, enable, role
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Projects (groups of users) and their members
    Project {
        #[command(subcommand)]
        cmd: ProjectCmd,
    },
    /// Resource policies: the defaults and each user's overrides
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Accounted usage per UTC day: core-, GiB-, GPU- and GPU-share-hours per user, project
    /// or node (everyone's for admins; a user gets their own)
    #[command(after_help = "Examples:\n  \
berth admin usage                                  # the last 30 days, per user\n  \
berth admin usage --from 2026-01-01 --to 2026-01-31 --group-by project\n  \
berth admin usage --group-by node --csv > usage.csv")]
    Usage {
        /// First day, YYYY-MM-DD (UTC) [default: 29 days before --to]
        #[arg(long, value_name = "DAY")]
        from: Option<String>,
        /// Last day, included, YYYY-MM-DD (UTC) [default: today]
        #[arg(long, value_name = "DAY")]
        to: Option<String>,
        /// user, project or node [default: user]
        #[arg(long, value_name = "GROUP")]
        group_by: Option<String>,
        /// Print the server's JSON (exact seconds)
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print the rows as CSV (exact seconds)
        #[arg(long)]
        csv: bool,
    },
}

/// `berth admin user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is asked for (or read from standard input)
    Add {
        username: String,
        /// user, admin or superadmin [default: user]
        #[arg(long)]
        role: Option<String>,
        /// Write to this data directory's database instead of calling the server (for
        /// setting up a server before anyone has a key)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List users
    #[command(visible_alias = "ls")]
    List {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password; the new one is asked for (or read from standard input)
    Passwd { username: String },
    /// Disable a user: their logins, cookies and keys stop working at once
    Disable { username: String },
    /// Enable a disabled user again
    Enable { username: String },
    /// Change a user's role (user, admin or superadmin)
    Role { username: String, role: String },
}

/// `berth admin project …`.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectCmd {
    /// Create a project
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List projects with their members
    #[command(visible_alias = "ls")]
    List {
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Add or remove project members
    Member {
        #[command(subcommand)]
        cmd: MemberCmd,
    },
}

/// `berth admin project member …`.
#[derive(Debug, clap::Subcommand)]
pub enum MemberCmd {
    /// Add a user to a project
    Add { project: String, user: String },
    /// Remove a user from a project
    #[command(visible_alias = "remove")]
    Rm { project: String, user: String },
}

/// `berth admin policy …`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Show a user's effective policy (and which settings are their own), or the defaults
    Show {
        /// Username or id (leave out with --default)
        user: Option<String>,
        /// The defaults everyone gets
        #[arg(long)]
        default: bool,
        /// Print the server's JSON
        #[arg(long)]
        json: bool,
    },
    /// Change settings of a user's policy (or of the defaults), keeping the others.
    ///
    /// Each setting is KEY=VALUE: a number, `null` or `unlimited`, `default` (drop the
    /// user's own value), `max_total_resources=cpu=4,mem=8g`, `allowed_node_groups=a,b`.
    /// Keys: max_concurrent_sessions, max_pending_sessions, max_total_resources,
    /// max_session_lifetime_s, idle_timeout_s, max_vfolders, vfolder_quota_bytes,
    /// allowed_node_groups, max_processes, idle_cpu_percent, home_quota_bytes.
    Set {
        /// Change the defaults instead of a user's policy
        #[arg(long)]
        default: bool,
        /// USER (unless --default), then KEY=VALUE settings
        #[arg(value_name = "[USER] KEY=VALUE", required = true, num_args = 1..)]
        args: Vec<String>,
        /// Print the server's JSON of the result
        #[arg(long)]
        json: bool,
    },
}

/// A user for `admin user add --data-dir`, checked, to be written straight into the database
/// of the data directory `dir`.
#[derive(Debug)]
pub struct LocalUser {
    /// The data directory whose database gets the user.
    pub dir: PathBuf,
    /// The checked username.
    pub username: String,
    /// The checked password.
    pub password: api::auth::Secret,
    /// The role (`USER` unless asked otherwise).
    pub role: api::auth::Role,
}

/// Runs an `admin` command. `create_local` writes a [`LocalUser`] into a data directory's
/// database (`admin user add --data-dir`); the `berth` binary supplies it, because this crate
/// does not depend on the gateway.
pub async fn run(
    cmd: AdminCmd,
    create_local: impl AsyncFnOnce(LocalUser) -> Result<()>,
) -> Result<()> {
    match cmd {
        AdminCmd::User {
            cmd:
                UserCmd::Add {
                    username,
                    role,
                    data_dir: Some(dir),
                },
        } => user_add_local(username, role, dir, create_local).await,
        AdminCmd::User { cmd } => user(&connect()?, cmd).await,
        AdminCmd::Project { cmd } => project(&connect()?, cmd).await,
        AdminCmd::Policy { cmd } => policy(&connect()?, cmd).await,
        AdminCmd::Usage {
            from,
            to,
            group_by,
            json,
            csv,
        } => usage(&connect()?, from, to, group_by, json, csv).await,
    }
}
