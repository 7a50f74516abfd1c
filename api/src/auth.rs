//! Users, roles and login on the wire.

use crate::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    User,
    Admin,
    Superadmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Admin => "ADMIN",
            Self::Superadmin => "SUPERADMIN",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "USER" => Some(Self::User),
            "ADMIN" => Some(Self::Admin),
            "SUPERADMIN" => Some(Self::Superadmin),
            _ => None,
        }
    }
    pub fn is_admin(self) -> bool {
        self >= Self::Admin
    }
}

/// A password that never prints.
#[derive(Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: Secret,
    #[serde(default)]
    pub role: Option<String>,
}

/// Usernames: 1–32 of `[a-z0-9._-]`.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 32 {
        return Err("A username is 1 to 32 characters long.".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(
            "A username may contain only lowercase letters, digits, '.', '_' and '-'.".into(),
        );
    }
    Ok(())
}

pub fn validate_password(pw: &str) -> Result<(), String> {
    if pw.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "A password needs at least {MIN_PASSWORD_LEN} characters."
        ));
    }
    if pw.len() > MAX_PASSWORD_LEN {
        return Err("A password may be at most 1024 bytes long.".into());
    }
    Ok(())
}

impl CreateUser {
    pub fn validate(&self) -> Result<Role, Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Err(m) = validate_username(&self.username) {
            errs.push(FieldError::new("username", m));
        }
        if let Err(m) = validate_password(&self.password.0) {
            errs.push(FieldError::new("password", m));
        }
        let role = match &self.role {
            None => Role::User,
            Some(r) => Role::parse(r).unwrap_or_else(|| {
                errs.push(FieldError::new(
                    "role",
                    format!(
                        "Role \"{}\" is unknown: use user, admin or superadmin.",
                        r.escape_default()
                    ),
                ));
                Role::User
            }),
        };
        if errs.is_empty() {
            Ok(role)
        } else {
            Err(errs)
        }
    }
}

/// `PATCH /api/v1/users/{id}` (admins): any subset of the fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

impl UpdateUser {
    /// Checks the fields; returns the parsed role, if one was given.
    pub fn validate(&self) -> Result<Option<Role>, Vec<FieldError>> {
        let mut errs = Vec::new();
        let role = match &self.role {
            None => None,
            Some(r) => match Role::parse(r) {
                Some(role) => Some(role),
                None => {
                    errs.push(FieldError::new(
                        "role",
                        format!(
                            "Role \"{}\" is unknown: use user, admin or superadmin.",
                            r.escape_default()
                        ),
                    ));
                    None
                }
            },
        };
        if let Some(p) = &self.password {
            if let Err(m) = validate_password(&p.0) {
                errs.push(FieldError::new("password", m));
            }
        }
        if self.role.is_none() && self.disabled.is_none() && self.password.is_none() {
            errs.push(FieldError::new(
                "",
                "Nothing to change: give role, disabled or password.",
            ));
        }
        if errs.is_empty() {
            Ok(role)
        } else {
            Err(errs)
        }
    }
}

/// `POST /api/v1/me/password`: a user changes their own password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: Secret,
    pub new_password: Secret,
}

/// `POST /api/v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
}

pub fn validate_key_name(name: &str) -> Result<(), String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 64 {
        return Err("A key name is 1 to 64 characters long.".into());
    }
    if n.chars().any(char::is_control) {
        return Err("A key name may not contain control characters.".into());
    }
    Ok(())
}

/// An API key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// The answer to `POST /api/v1/keys`: the only time the secret `key` is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub key: String,
    pub created_at: String,
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("key", &"***")
            .finish()
    }
}
