//! `berth admin user …`: add (over the API or straight into a data directory), list, passwd,
//! disable, enable, role.

use super::LocalUser;
use super::UserCmd;
use crate::client::{api_path, Client};
use crate::table::{self, Table};
use crate::{prompt, Error, Result};
use api::auth::{CreateUser, Secret, UpdateUser, User};
use std::path::PathBuf;

/// The user's role in lowercase, as the CLI takes it.
pub(super) fn role_word(u: &User) -> String {
    u.role.as_str().to_ascii_lowercase()
}

/// Runs `admin user …` over the API.
pub(super) async fn user(c: &Client, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add { username, role, .. } => {
            let password = prompt::new_password(&format!("Password for {username}: "))?;
            let body = CreateUser {
                username,
                password: Secret(password),
                role,
            };
            let v: User = c.post(&api_path(&["users"]), &body).await?;
            println!("Created user {} ({}).", v.username, role_word(&v));
        }
        UserCmd::List { json } => {
            let users: Vec<User> = c.get(&api_path(&["users"])).await?;
            if json {
                table::print_json(&users);
                return Ok(());
            }
            let mut t = Table::new(&["USERNAME", "ROLE", "STATE", "CREATED", "ID"]);
            for u in &users {
                t.row(vec![
                    u.username.clone(),
                    role_word(u),
                    if u.disabled { "disabled" } else { "active" }.to_string(),
                    u.created_at.clone(),
                    u.id.clone(),
                ]);
            }
            print!("{}", t.render());
        }
        UserCmd::Passwd { username } => {
            let password = prompt::new_password(&format!("New password for {username}: "))?;
            let change = UpdateUser {
                password: Some(Secret(password)),
                ..UpdateUser::default()
            };
            let v = patch_user(c, &username, &change).await?;
            println!("Changed the password of {}.", v.username);
        }
        UserCmd::Disable { username } => {
            let change = UpdateUser {
                disabled: Some(true),
                ..UpdateUser::default()
            };
            let v = patch_user(c, &username, &change).await?;
            println!("Disabled user {}.", v.username);
        }
        UserCmd::Enable { username } => {
            let change = UpdateUser {
                disabled: Some(false),
                ..UpdateUser::default()
            };
            let v = patch_user(c, &username, &change).await?;
            println!("Enabled user {}.", v.username);
        }
        UserCmd::Role { username, role } => {
            let change = UpdateUser {
                role: Some(role),
                ..UpdateUser::default()
            };
            let v = patch_user(c, &username, &change).await?;
            println!("{} is now {}.", v.username, role_word(&v));
        }
    }
    Ok(())
}

/// `PATCH /users/{user}`: the user as changed.
pub(super) async fn patch_user(c: &Client, user: &str, change: &UpdateUser) -> Result<User> {
    c.patch(&api_path(&["users", user]), change).await
}

/// The local variant: straight into the data directory's database.
pub(super) async fn user_add_local(
    username: String,
    role: Option<String>,
    dir: PathBuf,
    create_local: impl AsyncFnOnce(LocalUser) -> Result<()>,
) -> Result<()> {
    let password = prompt::new_password(&format!("Password for {username}: "))?;
    let req = api::auth::CreateUser {
        username: username.clone(),
        password: api::auth::Secret(password),
        role,
    };
    let role = req.validate().map_err(|errs| {
        Error::Other(
            errs.into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join(" "),
        )
    })?;
    create_local(LocalUser {
        dir,
        username: username.clone(),
        password: req.password,
        role,
    })
    .await?;
    println!(
        "Created user {username} ({}).",
        role.as_str().to_lowercase()
    );
    Ok(())
}
