//! `berth login URL`: password login, then an API key named `cli@HOSTNAME` kept in the
//! config file. The login cookie is used for nothing else and ended right away.

use super::client::{api_path, Auth, Client};
use super::config::{self, FileConfig};
use super::{prompt, Error, Result};
use api::auth::{CreateKey, CreatedKey, LoginRequest, Secret, User};
use reqwest::Method;

#[derive(Debug, clap::Args)]
/// `berth login URL`.
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:8080
    pub url: String,
    /// Your username (asked for when not given)
    #[arg(long, short)]
    pub username: Option<String>,
}

/// This machine's name, for the key's name.
fn hostname() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// `cli@HOST`, cut to the 64 characters a key name may have.
pub fn key_name(host: &str) -> String {
    let host: String = host.chars().filter(|c| !c.is_control()).collect();
    format!("cli@{host}").chars().take(64).collect()
}

/// The `berth_session` cookie a login answer sets.
fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?.trim();
            first
                .strip_prefix("berth_session=")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        })
}

/// Runs `berth login`: password login, a new API key, the config file.
pub async fn login(args: LoginArgs) -> Result<()> {
    let url = config::normalize_url(&args.url)?;
    let username = match args.username {
        Some(u) => u,
        None => prompt::line("Username: ", "username")?,
    };
    let username = username.trim().to_string();
    if username.is_empty() {
        return Err(Error::Usage("Give a username.".into()));
    }
    let password = prompt::secret(&format!("Password for {username}: "), "password")?;

    let anon = Client::new(&url, Auth::None)?;
    let login = LoginRequest {
        username: username.clone(),
        password: Secret(password),
    };
    let answer = anon
        .call(Method::POST, &api_path(&["auth", "login"]), Some(&login))
        .await?;
    let cookie = session_cookie(&answer.headers).ok_or_else(|| {
        Error::Other(format!(
            "{url} accepted the login but set no berth_session cookie; is it a berth server?"
        ))
    })?;
    let username = answer.json::<User>()?.username;

    let with_cookie = Client::new(&url, Auth::Cookie(cookie))?;
    let result = create_key(&with_cookie, &username).await;
    // The cookie was only for this; end its server-side session whatever happened.
    let _ = with_cookie
        .call(Method::POST, &api_path(&["auth", "logout"]), None::<&()>)
        .await;
    let (key, path) = result?;
    println!(
        "Logged in to {url} as {}. API key \"{}\" ({}…) saved in {}.",
        username,
        key.name,
        key.prefix,
        path.display()
    );
    Ok(())
}

/// Creates the key, revokes the one it replaces (same server and user), writes the file.
async fn create_key(client: &Client, username: &str) -> Result<(CreatedKey, std::path::PathBuf)> {
    let url = client.base().to_string();
    let name = CreateKey {
        name: key_name(&hostname()),
    };
    let key: CreatedKey = client.post(&api_path(&["keys"]), &name).await?;
    let old = config::load().ok().flatten();
    if let Some(FileConfig {
        url: Some(old_url),
        username: Some(old_user),
        key_id: Some(old_id),
        ..
    }) = &old
    {
        if *old_url == url && old_user == username && *old_id != key.id {
            let _ = client
                .call(Method::DELETE, &api_path(&["keys", old_id]), None::<&()>)
                .await;
        }
    }
    let path = config::save(&FileConfig {
        url: Some(url),
        key: Some(key.key.clone()),
        username: Some(username.to_string()),
        key_id: Some(key.id.clone()),
    })?;
    Ok((key, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_fit() {
        assert_eq!(key_name("laptop"), "cli@laptop");
        assert_eq!(key_name(&"h".repeat(100)).chars().count(), 64);
    }

    #[test]
    fn finds_the_session_cookie() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(
            reqwest::header::SET_COOKIE,
            "other=1; Path=/".parse().unwrap(),
        );
        h.append(
            reqwest::header::SET_COOKIE,
            "berth_session=abc; HttpOnly; Path=/".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
    }
}
