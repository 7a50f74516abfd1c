//! VFolders: persistent data folders, their files, sharing, and mounts into sessions.
//!
//! The rules here (folder names, file paths, permissions, mount points) are the ones the
//! gateway enforces and the console checks before it sends anything.

use crate::FieldError;
use serde::{Deserialize, Serialize};

/// The longest file path inside a folder, in bytes, and the longest single component.
pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_COMPONENT_BYTES: usize = 255;

/// A folder name: 1–64 of `[A-Za-z0-9._-]`, not starting with `.` (a folder is mounted
/// under `~/NAME` by default, and one named `.local` or `.ssh` would shadow the user's own).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Give the folder a name.".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "A folder name has at most 64 characters; this one has {}.",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "A folder name may use letters, digits, '.', '_' and '-' only, not {:?}.",
            c
        ));
    }
    if name.starts_with('.') {
        return Err(format!(
            "A folder name cannot start with '.' (\"{name}\" would hide a file of the home directory it is mounted in)."
        ));
    }
    Ok(())
}

/// A path inside a folder, checked and normalised to components joined by `/` (empty for
/// the folder itself). `..`, absolute paths, NUL and over-long names are refused; `.` and
/// empty components (`a//b`, a trailing `/`) are dropped.
pub fn normalize_path(path: &str) -> Result<String, String> {
    if path.contains('\0') {
        return Err("A path cannot contain a NUL character.".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "A path has at most {MAX_PATH_BYTES} bytes; this one has {}.",
            path.len()
        ));
    }
    if path.starts_with('/') {
        return Err(format!(
            "\"{}\" is an absolute path; give a path inside the folder, like \"data/train.csv\".",
            path.escape_default()
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "\"{}\" leaves the folder; \"..\" is not allowed in a path.",
                    path.escape_default()
                ))
            }
            p if p.len() > MAX_COMPONENT_BYTES => {
                return Err(format!(
                    "A file name has at most {MAX_COMPONENT_BYTES} bytes; one here has {}.",
                    p.len()
                ))
            }
            p if p.chars().any(char::is_control) => {
                return Err("A path cannot contain control characters.".into())
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Like [`normalize_path`] but the path must name something inside the folder, not the
/// folder itself.
pub fn normalize_entry_path(path: &str) -> Result<String, String> {
    let p = normalize_path(path)?;
    if p.is_empty() {
        return Err("Name a file or directory inside the folder.".into());
    }
    Ok(p)
}

/// What a user may do with a folder. Ordered: each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read: list, download, mount read-only.
    Ro,
    /// Read and write: also upload, make directories, move and rename files.
    Rw,
    /// Write and delete: also delete files.
    Wd,
    /// The owner (or an admin for a project folder): also rename, share, delete the folder.
    Owner,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ro => "RO",
            Self::Rw => "RW",
            Self::Wd => "WD",
            Self::Owner => "OWNER",
        }
    }

    /// A permission one can grant (`ro`, `rw`, `wd`, any case); `OWNER` cannot be granted.
    pub fn parse_grant(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ro" => Ok(Self::Ro),
            "rw" => Ok(Self::Rw),
            "wd" => Ok(Self::Wd),
            _ => Err(format!(
                "\"{}\" is not a permission; use ro (read), rw (read and write) or wd (write and delete).",
                s.escape_default()
            )),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("owner") {
            Some(Self::Owner)
        } else {
            Self::parse_grant(s).ok()
        }
    }

    pub fn can_write(self) -> bool {
        self >= Self::Rw
    }

    pub fn can_delete(self) -> bool {
        self >= Self::Wd
    }

    /// A sentence for a person, e.g. "read-only".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Ro => "read-only",
            Self::Rw => "read and write",
            Self::Wd => "read, write and delete",
            Self::Owner => "owner",
        }
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown permission {s}")))
    }
}

/// How strongly a folder name binds for a user, lower first: their own folder (their home
/// included), then one shared with them, then a project folder (mounts and the CLI resolve
/// names this way).
pub fn name_rank(kind: &str, permission: Permission) -> u8 {
    match (kind, permission) {
        ("user" | "home", Permission::Owner) => 0,
        ("user", _) => 1,
        _ => 2,
    }
}

/// The name of every user's home folder (type `home`). It is unique per owner apart from
/// their own folders' names, and new personal folders may not take it ([`check_not_home_name`]).
pub const HOME_NAME: &str = "home";

/// Refuses the home folder's name for a folder a user creates, renames or clones into.
pub fn check_not_home_name(name: &str) -> Result<(), String> {
    if name == HOME_NAME {
        return Err(format!(
            "The name \"{HOME_NAME}\" belongs to your home folder (mounted at /home/work in your sessions); choose another name."
        ));
    }
    Ok(())
}

/// A folder as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VFolder {
    pub id: String,
    pub name: String,
    /// `user`, `project` or `home` (the owner's home folder, mounted at `/home/work`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The owner's username, or the project's name for a project folder.
    pub owner: String,
    /// The project's id for a project folder.
    #[serde(default)]
    pub project: Option<String>,
    /// What the asking user may do with it.
    pub permission: Permission,
    /// Bytes the folder's files take.
    pub bytes: u64,
    /// The owner's per-folder quota; `null` means unlimited.
    pub quota_bytes: Option<u64>,
    pub created_at: String,
    /// Set while the folder is in the trash.
    #[serde(default)]
    pub deleted_at: Option<String>,
    /// `READY`, or `CLONING` while a clone job fills it.
    pub state: String,
}

/// `POST /api/v1/vfolders`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateVFolder {
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// The kinds of folder: a user's own, a project's, and each user's home (made by berth, one
/// per user, never shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    User,
    Project,
    Home,
}

impl FolderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Project => "project",
            Self::Home => "home",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" => Some(Self::User),
            "project" => Some(Self::Project),
            "home" => Some(Self::Home),
            _ => None,
        }
    }
}

impl CreateVFolder {
    /// Checks the request; a project folder must name its project.
    pub fn validate(&self) -> Result<FolderKind, Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Err(m) = validate_name(&self.name).and_then(|()| check_not_home_name(&self.name)) {
            errs.push(FieldError::new("name", m));
        }
        let kind = match self.kind.as_deref().map(|k| k.trim().to_ascii_lowercase()) {
            None => FolderKind::User,
            Some(k) if k == "user" => FolderKind::User,
            Some(k) if k == "project" => FolderKind::Project,
            Some(k) if k == "home" => {
                errs.push(FieldError::new(
                    "type",
                    "Berth makes your home folder itself (one per user); create a user or project folder.",
                ));
                FolderKind::User
            }
            Some(k) => {
                errs.push(FieldError::new(
                    "type",
                    format!(
                        "\"{}\" is not a folder type; use user or project.",
                        k.escape_default()
                    ),
                ));
                FolderKind::User
            }
        };
        match (kind, &self.project) {
            (FolderKind::Project, None) => errs.push(FieldError::new(
                "project",
                "A project folder needs the project it belongs to.",
            )),
            (FolderKind::User, Some(_)) => errs.push(FieldError::new(
                "project",
                "Only a project folder names a project; leave it out or set type to project.",
            )),
            _ => {}
        }
        if errs.is_empty() {
            Ok(kind)
        } else {
            Err(errs)
        }
    }
}

/// `PATCH /api/v1/vfolders/{id}`: rename.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateVFolder {
    pub name: String,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileEntry {
    pub name: String,
    /// The entry's path inside the folder.
    pub path: String,
    /// `file`, `dir`, `symlink`, `fifo`, `socket` or `device` (only files and directories are
    /// downloaded; links are never followed).
    pub kind: String,
    pub size: u64,
    /// Last modification, RFC 3339 UTC.
    pub modified: String,
}

/// `GET /api/v1/vfolders/{id}/files?path=P&offset=N&limit=M`: directories first, then by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileList {
    pub path: String,
    pub entries: Vec<FileEntry>,
    /// Entries in the directory in all (the page is `entries`).
    pub total: u64,
    pub offset: u64,
}

/// `POST /api/v1/vfolders/{id}/mkdir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MkdirRequest {
    pub path: String,
}

/// `POST /api/v1/vfolders/{id}/move`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    pub from: String,
    pub to: String,
}

/// `POST /api/v1/vfolders/{id}/delete-files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteFilesRequest {
    pub paths: Vec<String>,
}

/// `POST /api/v1/vfolders/{id}/delete-files` answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletedFiles {
    /// How many of the named paths were removed (a path inside a directory removed just
    /// before it is not counted).
    pub deleted: u64,
}

/// The most paths one delete request may name.
pub const MAX_DELETE_PATHS: usize = 1000;

/// `POST /api/v1/vfolders/{id}/invitations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// A username or user id.
    pub user: String,
    pub permission: String,
}

/// An invitation to a folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: String,
    pub vfolder: String,
    pub vfolder_name: String,
    pub inviter: String,
    pub invitee: String,
    pub permission: Permission,
    /// `PENDING`, `ACCEPTED`, `DECLINED` or `CANCELLED`.
    pub state: String,
    pub created_at: String,
}

/// Someone a folder is shared with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: String,
    pub username: String,
    pub permission: Permission,
}

/// `POST /api/v1/vfolders/{id}/clone`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    pub name: String,
}

/// A background job (a clone), `GET /api/v1/jobs/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// `RUNNING`, `DONE` or `FAILED`.
    pub state: String,
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// The new folder's id (a clone).
    pub vfolder: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

/// Where the mounts of a session live and what may not be covered.
pub const HOME: &str = "/home/work";

const SYSTEM_PATHS: [&str; 14] = [
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    // Where berth mounts folders meant for inside a persistent home (linked into it).
    "/mnt/berth",
    "/opt/berth",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
];

/// The mount point of folder `name` with the optional alias: default `/home/work/NAME`, a
/// relative alias under `/home/work/`, an absolute one as given except system paths.
pub fn mount_point(alias: Option<&str>, name: &str) -> Result<String, String> {
    let Some(alias) = alias else {
        return Ok(format!("{HOME}/{name}"));
    };
    if alias.contains('\0') || alias.chars().any(char::is_control) {
        return Err("A mount path cannot contain control characters.".into());
    }
    if alias.len() > 255 {
        return Err("A mount path has at most 255 bytes.".into());
    }
    let absolute = alias.starts_with('/');
    let mut parts = Vec::new();
    for p in alias.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "Mount path \"{}\" may not use \"..\".",
                    alias.escape_default()
                ))
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(if absolute {
            "A folder cannot be mounted on \"/\".".into()
        } else {
            "The mount path is empty; leave it out for the default.".into()
        });
    }
    let path = if absolute {
        format!("/{}", parts.join("/"))
    } else {
        format!("{HOME}/{}", parts.join("/"))
    };
    if path == HOME {
        return Err(format!(
            "A folder cannot be mounted on {HOME} itself; mount it under it."
        ));
    }
    if path.starts_with(&format!("{HOME}/"))
        || path.starts_with("/opt/") && !under("/opt/berth", &path)
    {
        return Ok(path);
    }
    // `/home` and `/opt` themselves would cover the home and berth's own tools.
    let system = path == "/opt"
        || path == "/home"
        || SYSTEM_PATHS
            .iter()
            .any(|s| under(s, &path) || (*s == "/lib" && path.starts_with("/lib")));
    if system {
        return Err(format!(
            "The path {path} is a system path; mount under {HOME}/ or /opt/ or another path of your own, like /data."
        ));
    }
    Ok(path)
}

/// Whether `path` is `root` or inside it.
fn under(root: &str, path: &str) -> bool {
    path == root || path.starts_with(&format!("{root}/"))
}

/// Checks a session's resolved mounts, `(label, mount point)` each: no two on the same point
/// and none inside another.
pub fn check_mount_points(mounts: &[(String, String)]) -> Vec<String> {
    let mut errs = Vec::new();
    for (i, (a, pa)) in mounts.iter().enumerate() {
        for (b, pb) in &mounts[..i] {
            if pa == pb {
                errs.push(format!(
                    "Folders {a} and {b} are both mounted on {pa}; give one a different path."
                ));
            } else if under(pa, pb) || under(pb, pa) {
                errs.push(format!(
                    "Folders {b} at {pb} and {a} at {pa} overlap; one mount point may not contain another."
                ));
            }
        }
    }
    errs
}

/// A mount mode (`ro` or `rw`, any case); `None` when absent.
pub fn parse_mount_mode(mode: Option<&str>) -> Result<Option<bool>, String> {
    match mode.map(|m| m.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(m) if m == "ro" => Ok(Some(true)),
        Some(m) if m == "rw" => Ok(Some(false)),
        Some(m) => Err(format!(
            "\"{}\" is not a mount mode; use ro or rw.",
            m.escape_default()
        )),
    }
}

/// A mount of a session as stored and shown: the folder, where, and whether read-only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mount {
    pub vfolder: String,
    pub name: String,
    pub path: String,
    /// `ro` or `rw`.
    pub mode: String,
}

/// The `Upload-Metadata` header of a tus creation for `path` (and the browser's file name).
/// Values are standard base64 with padding, as tus writes them.
pub fn upload_metadata(path: &str, filename: Option<&str>) -> String {
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
    let mut m = format!("path {}", b64(path));
    if let Some(f) = filename {
        m.push_str(&format!(",filename {}", b64(f)));
    }
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn upload_metadata_is_padded_standard_base64() {
        assert_eq!(
            super::upload_metadata("a", Some("b")),
            "path YQ==,filename Yg=="
        );
        assert_eq!(
            super::upload_metadata("data/a.txt", None),
            "path ZGF0YS9hLnR4dA=="
        );
        assert_eq!(super::upload_metadata("?>", None), "path Pz4=");
    }

    use super::*;

    #[test]
    fn names() {
        for ok in ["datasets", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(65), "a\0"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for hidden in [".local", ".ssh", ".bashrc", "..x"] {
            let e = validate_name(hidden).unwrap_err();
            assert!(e.starts_with("A folder name cannot start with '.'"), "{e}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("").unwrap(), "");
        assert_eq!(normalize_path("a//b/./c/").unwrap(), "a/b/c");
        for bad in ["../x", "/etc/passwd", "a/../../x", "a/..", "a\0b", "/"] {
            assert!(normalize_path(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_path(&"x".repeat(300)).is_err());
        assert!(normalize_entry_path(".").is_err());
        assert!(normalize_path("dir/ünïcode name.txt").is_ok());
    }

    #[test]
    fn permissions() {
        assert!(Permission::Ro < Permission::Rw && Permission::Wd < Permission::Owner);
        assert_eq!(Permission::parse_grant("RW").unwrap(), Permission::Rw);
        assert!(Permission::parse_grant("owner").is_err());
        assert!(Permission::Wd.can_delete() && !Permission::Rw.can_delete());
        assert_eq!(serde_json::to_string(&Permission::Ro).unwrap(), "\"RO\"");
    }

    #[test]
    fn mount_points() {
        assert_eq!(mount_point(None, "data").unwrap(), "/home/work/data");
        assert_eq!(mount_point(Some("x/y"), "data").unwrap(), "/home/work/x/y");
        assert_eq!(mount_point(Some("/data"), "d").unwrap(), "/data");
        assert_eq!(
            mount_point(Some("/opt/models"), "d").unwrap(),
            "/opt/models"
        );
        assert_eq!(
            mount_point(Some("/home/work/d"), "d").unwrap(),
            "/home/work/d"
        );
        assert_eq!(
            mount_point(Some("/home/other"), "d").unwrap(),
            "/home/other"
        );
        for bad in [
            "/",
            "/etc",
            "/etc/x",
            "/usr/local",
            "/lib64",
            "/opt/berth",
            "/opt/berth/x",
            "/mnt/berth",
            "/mnt/berth/x",
            "/home/work",
            "/home",
            "/var/tmp",
            "/proc",
            "../x",
            "/opt",
        ] {
            assert!(mount_point(Some(bad), "d").is_err(), "{bad}");
        }
        let errs = check_mount_points(&[
            ("a".into(), "/home/work/a".into()),
            ("b".into(), "/home/work/a".into()),
            ("c".into(), "/home/work/a/c".into()),
            ("d".into(), "/data".into()),
        ]);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(parse_mount_mode(Some("RO")).unwrap(), Some(true));
        assert!(parse_mount_mode(Some("rx")).is_err());
    }
}
