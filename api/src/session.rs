//! Sessions on the wire: the lifecycle, the create request and its rules, the session JSON.

use crate::{FieldError, Resources, ResourcesRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_ENV_ENTRIES: usize = 64;
pub const MAX_ENV_BYTES: usize = 32 * 1024;
pub const MAX_COMMAND_BYTES: usize = 4 * 1024;
pub const MAX_IMAGE_LEN: usize = 255;

/// `PENDING → SCHEDULED → PREPARING → RUNNING → TERMINATING → TERMINATED`, plus
/// `CANCELLED` and `ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum SessionStatus {
    Pending,
    Scheduled,
    Preparing,
    Running,
    Terminating,
    Terminated,
    Cancelled,
    Error,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 8] = [
        Self::Pending,
        Self::Scheduled,
        Self::Preparing,
        Self::Running,
        Self::Terminating,
        Self::Terminated,
        Self::Cancelled,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Scheduled => "SCHEDULED",
            Self::Preparing => "PREPARING",
            Self::Running => "RUNNING",
            Self::Terminating => "TERMINATING",
            Self::Terminated => "TERMINATED",
            Self::Cancelled => "CANCELLED",
            Self::Error => "ERROR",
        }
    }

    /// Accepts any case, as the contract says.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// A session that still holds (or waits for) resources and may own a container.
    pub fn is_live(self) -> bool {
        !self.is_final()
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Terminated | Self::Cancelled | Self::Error)
    }

    /// The one place that says which moves are allowed: forward only, and any live state
    /// may fail into ERROR.
    pub fn can_move_to(self, to: SessionStatus) -> bool {
        use SessionStatus::*;
        matches!(
            (self, to),
            (Pending, Scheduled | Cancelled | Error)
                | (Scheduled, Preparing | Terminating | Error)
                | (Preparing, Running | Terminating | Error)
                | (Running, Terminating | Terminated | Error)
                | (Terminating, Terminated | Error)
        )
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SessionType {
    #[default]
    Interactive,
    Batch,
}

impl SessionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Batch => "batch",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "interactive" => Some(Self::Interactive),
            "batch" => Some(Self::Batch),
            _ => None,
        }
    }
}

/// Which `/home/work` a session gets: the owner's persistent home folder (the default; seeded
/// from the image's own `/home/work` the first time it is used), or the image's own, clean
/// and thrown away with the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HomeMode {
    #[default]
    Persistent,
    Clean,
}

impl HomeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Persistent => "persistent",
            Self::Clean => "clean",
        }
    }
    /// Accepts any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "persistent" => Some(Self::Persistent),
            "clean" => Some(Self::Clean),
            _ => None,
        }
    }
}

/// A vfolder mount as requested at launch (vfolders arrive with their own issue).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MountRequest {
    pub vfolder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// `POST /api/v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub image: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub resources: ResourcesRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<MountRequest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preopen_ports: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `persistent` (default: the owner's home folder at `/home/work`) or `clean` (the
    /// image's own `/home/work`, nothing kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
}

/// A create request that passed every rule that needs no database or Docker.
#[derive(Debug, Clone)]
pub struct ValidSession {
    pub name: Option<String>,
    pub image: String,
    pub kind: SessionType,
    pub project: Option<String>,
    pub resources: Resources,
    pub env: BTreeMap<String, String>,
    pub command: Option<String>,
    pub preopen_ports: Vec<u16>,
    pub mounts: Vec<ValidMount>,
    pub home: HomeMode,
}

/// The most folders one session may mount.
pub const MAX_MOUNTS: usize = 32;

/// A mount request that passed the rules needing no database: the folder (name or id), the
/// alias if any, and the asked mode (`None`: as the permission allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidMount {
    pub vfolder: String,
    pub alias: Option<String>,
    pub read_only: Option<bool>,
}

/// Session names: 1–64 of `[a-z0-9-]`, starting with a letter.
pub fn validate_session_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("The session name is empty.".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "The session name is {} characters long; at most {MAX_NAME_LEN} are allowed.",
            name.chars().count()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("The session name must start with a lowercase letter.".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("The session name may contain only lowercase letters, digits and '-'.".into());
    }
    Ok(())
}

/// Image references: what Docker accepts as a local name, without whitespace or control bytes.
pub fn validate_image_ref(image: &str) -> Result<(), String> {
    if image.trim().is_empty() {
        return Err("Choose an image.".into());
    }
    if image.len() > MAX_IMAGE_LEN {
        return Err(format!(
            "The image name is too long: at most {MAX_IMAGE_LEN} characters."
        ));
    }
    if !image
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
    {
        return Err(format!(
            "\"{}\" is not a valid image name.",
            image.escape_default()
        ));
    }
    Ok(())
}

/// Environment names a session may not set, matched without regard to case: berth's own
/// (`BERTH_*`, and `HOME`, `USER`, `PATH`, which it sets for the `work` user), what the GPU
/// runtime and MPS read on the host or in the container to choose and limit devices
/// (`NVIDIA_*`, `CUDA_VISIBLE_DEVICES`, `CUDA_MPS_*`, and the AMD/Intel equivalents), and the
/// loader's code-injection hooks (`LD_PRELOAD`, `LD_AUDIT`), which would run in every process
/// berth starts in the session.
pub const RESERVED_ENV_PREFIXES: [&str; 3] = ["BERTH_", "NVIDIA_", "CUDA_MPS_"];
pub const RESERVED_ENV_NAMES: [&str; 10] = [
    "HOME",
    "USER",
    "PATH",
    "CUDA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "ZE_AFFINITY_MASK",
    "LD_PRELOAD",
    "LD_AUDIT",
];

/// Why `name` is reserved, as a sentence, or `None` when a session may set it.
pub fn reserved_env(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if let Some(p) = RESERVED_ENV_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
        return Some(format!(
            "{name} cannot be set: names starting with {p} belong to berth or the GPU runtime."
        ));
    }
    if !RESERVED_ENV_NAMES.contains(&upper.as_str()) {
        return None;
    }
    Some(if upper.starts_with("LD_") {
        format!("{name} cannot be set: it would load code into every program of the session.")
    } else {
        format!("{name} cannot be set: berth or the GPU runtime sets it for the session.")
    })
}

pub fn validate_env(env: &BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if env.len() > MAX_ENV_ENTRIES {
        errs.push(FieldError::new(
            "env",
            format!(
                "{} environment variables given; at most {MAX_ENV_ENTRIES} are allowed.",
                env.len()
            ),
        ));
    }
    let total: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ENV_BYTES {
        errs.push(FieldError::new(
            "env",
            format!("The environment is {total} bytes; at most 32 KiB are allowed."),
        ));
    }
    for (k, v) in env {
        let ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            let shown: String = k.chars().take(40).collect();
            errs.push(FieldError::new(
                format!("env.{shown}"),
                format!(
                    "Environment variable name \"{}\" must match [A-Za-z_][A-Za-z0-9_]*.",
                    shown.escape_default()
                ),
            ));
        } else if let Some(m) = reserved_env(k) {
            errs.push(FieldError::new(format!("env.{k}"), m));
        } else if v.contains('\0') {
            errs.push(FieldError::new(
                format!("env.{k}"),
                format!("The value of {k} contains a NUL byte."),
            ));
        }
    }
    errs
}

impl CreateSession {
    /// Checks every rule that needs neither the database nor Docker.
    pub fn validate(&self) -> Result<ValidSession, Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Some(name) = &self.name {
            if let Err(m) = validate_session_name(name) {
                errs.push(FieldError::new("name", m));
            }
        }
        if let Err(m) = validate_image_ref(&self.image) {
            errs.push(FieldError::new("image", m));
        }
        let kind = match &self.kind {
            None => SessionType::Interactive,
            Some(k) => SessionType::parse(k).unwrap_or_else(|| {
                errs.push(FieldError::new(
                    "type",
                    format!(
                        "Session type \"{}\" is unknown: use interactive or batch.",
                        k.escape_default()
                    ),
                ));
                SessionType::Interactive
            }),
        };
        let resources = match self.resources.validate() {
            Ok(r) => Some(r),
            Err(e) => {
                errs.extend(e);
                None
            }
        };
        let env = self.env.clone().unwrap_or_default();
        errs.extend(validate_env(&env));
        if let Some(c) = &self.command {
            if c.len() > MAX_COMMAND_BYTES {
                errs.push(FieldError::new(
                    "command",
                    "The command is longer than 4 KiB.",
                ));
            } else if c.contains('\0') {
                errs.push(FieldError::new(
                    "command",
                    "The command contains a NUL byte.",
                ));
            } else if c.trim().is_empty() {
                errs.push(FieldError::new(
                    "command",
                    "The command is empty; leave it out instead.",
                ));
            }
        }
        let home = match &self.home {
            None => HomeMode::Persistent,
            Some(h) => HomeMode::parse(h).unwrap_or_else(|| {
                errs.push(FieldError::new(
                    "home",
                    format!(
                        "Home \"{}\" is unknown: use persistent (your home folder) or clean (the image's own, nothing kept).",
                        h.chars().take(40).collect::<String>().escape_default()
                    ),
                ));
                HomeMode::Persistent
            }),
        };
        if kind == SessionType::Batch && self.command.is_none() {
            errs.push(FieldError::new(
                "command",
                "A batch session needs a command to run.",
            ));
        }
        let mut mounts = Vec::new();
        let requested = self.mounts.as_deref().unwrap_or(&[]);
        if requested.len() > MAX_MOUNTS {
            errs.push(FieldError::new(
                "mounts",
                format!(
                    "A session mounts at most {MAX_MOUNTS} folders; this asks for {}.",
                    requested.len()
                ),
            ));
        }
        for (i, m) in requested.iter().enumerate().take(MAX_MOUNTS) {
            let field = format!("mounts[{i}]");
            let folder = m.vfolder.trim();
            if folder.is_empty() || folder.len() > 64 {
                errs.push(FieldError::new(
                    format!("{field}.vfolder"),
                    "Name the folder to mount by its name or id.",
                ));
                continue;
            }
            if let Some(alias) = &m.path {
                if let Err(e) = crate::vfolders::mount_point(Some(alias), folder) {
                    errs.push(FieldError::new(format!("{field}.path"), e));
                    continue;
                }
            }
            match crate::vfolders::parse_mount_mode(m.mode.as_deref()) {
                Ok(read_only) => mounts.push(ValidMount {
                    vfolder: folder.to_string(),
                    alias: m.path.clone(),
                    read_only,
                }),
                Err(e) => errs.push(FieldError::new(format!("{field}.mode"), e)),
            }
        }
        let preopen_ports = match crate::images::validate_preopen_ports(
            self.preopen_ports.as_deref().unwrap_or(&[]),
        ) {
            Ok(p) => p,
            Err(e) => {
                errs.extend(e.into_iter().map(|m| FieldError::new("preopen_ports", m)));
                Vec::new()
            }
        };
        if let Some(p) = &self.project {
            if p.trim().is_empty() || p.len() > 64 {
                errs.push(FieldError::new(
                    "project",
                    "Name a project by its name or id, or leave it out.",
                ));
            }
        }
        match (errs.is_empty(), resources) {
            (true, Some(resources)) => Ok(ValidSession {
                name: self.name.clone(),
                image: self.image.trim().to_string(),
                kind,
                project: self.project.as_ref().map(|p| p.trim().to_string()),
                resources,
                env,
                command: self.command.clone(),
                preopen_ports,
                mounts,
                home,
            }),
            _ => Err(errs),
        }
    }
}

/// One status change with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub status: SessionStatus,
    pub reason: String,
    pub at: String,
}

/// A session as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub owner_name: String,
    /// The project's name, when the session names one.
    pub project: Option<String>,
    #[serde(rename = "type")]
    pub kind: SessionType,
    pub status: SessionStatus,
    pub status_reason: String,
    pub image: String,
    pub resources: Resources,
    pub node: Option<String>,
    pub queue_position: Option<u32>,
    pub container_id: Option<String>,
    pub exit_code: Option<i64>,
    /// The apps this session offers (image apps and preopened ports).
    #[serde(default)]
    pub apps: Vec<crate::images::ServicePort>,
    /// The folders mounted into the session.
    #[serde(default)]
    pub mounts: Vec<crate::vfolders::Mount>,
    /// `persistent`: the owner's home folder is mounted at `/home/work`; `clean`: the image's own.
    #[serde(default)]
    pub home: HomeMode,
    pub created_at: String,
    pub started_at: Option<String>,
    pub terminated_at: Option<String>,
    /// The session's SSH server (interactive sessions): its host key, or why it is not
    /// available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<crate::ssh::SessionSsh>,
}

/// `POST /api/v1/sessions/{id}/terminal` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalUrl {
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves_forward_only() {
        use SessionStatus::*;
        assert!(Pending.can_move_to(Scheduled));
        assert!(Running.can_move_to(Terminating));
        assert!(!Running.can_move_to(Pending));
        assert!(!Terminated.can_move_to(Running));
        assert!(!Error.can_move_to(Error));
        for s in SessionStatus::ALL {
            assert!(!s.can_move_to(s), "{s} to itself");
        }
        assert_eq!(SessionStatus::parse("running"), Some(Running));
    }

    #[test]
    fn names() {
        assert!(validate_session_name("my-session-1").is_ok());
        for bad in ["", "1abc", "Abc", "a_b", "a b", &"a".repeat(65)] {
            assert!(validate_session_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_rules() {
        let ok: CreateSession = serde_json::from_str(
            r#"{"image":"berth/base","resources":{"cpu":"0.1","mem":"128m"}}"#,
        )
        .unwrap();
        assert!(ok.validate().is_ok());
        let mut env = BTreeMap::new();
        env.insert("1BAD".to_string(), "x".to_string());
        let bad = CreateSession {
            name: Some("Bad Name".into()),
            image: "".into(),
            env: Some(env),
            resources: ResourcesRequest::new("0", "1x"),
            ..Default::default()
        };
        let errs = bad.validate().unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"name"));
        assert!(fields.contains(&"image"));
        assert!(fields.contains(&"resources.cpu"));
        assert!(fields.contains(&"resources.mem"));
        assert!(fields.contains(&"env.1BAD"));
    }

    #[test]
    fn home_is_persistent_unless_asked_clean() {
        let parse = |j: &str| serde_json::from_str::<CreateSession>(j).unwrap().validate();
        let base = r#""image":"berth/base","resources":{"cpu":"0.1","mem":"128m"}"#;
        assert_eq!(
            parse(&format!("{{{base}}}")).unwrap().home,
            HomeMode::Persistent
        );
        assert_eq!(
            parse(&format!(r#"{{{base},"home":"CLEAN"}}"#))
                .unwrap()
                .home,
            HomeMode::Clean
        );
        let errs = parse(&format!(r#"{{{base},"home":"tmp"}}"#)).unwrap_err();
        assert_eq!(errs[0].field, "home");
        assert!(errs[0].message.contains("persistent"), "{errs:?}");
        assert_eq!(serde_json::to_value(HomeMode::Clean).unwrap(), "clean");
    }

    #[test]
    fn reserved_environment_names_are_refused() {
        for name in [
            "BERTH_SESSION_ID",
            "BERTH_JUPYTER_TOKEN",
            "NVIDIA_VISIBLE_DEVICES",
            "nvidia_driver_capabilities",
            "CUDA_VISIBLE_DEVICES",
            "CUDA_MPS_PIPE_DIRECTORY",
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
            "LD_PRELOAD",
            "HOME",
            "PATH",
        ] {
            let env = BTreeMap::from([(name.to_string(), "x".to_string())]);
            let errs = validate_env(&env);
            assert_eq!(errs.len(), 1, "{name}: {errs:?}");
            assert_eq!(errs[0].field, format!("env.{name}"));
            assert!(
                errs[0]
                    .message
                    .starts_with(&format!("{name} cannot be set")),
                "{errs:?}"
            );
        }
        for ok in [
            "CUDA_HOME",
            "LD_LIBRARY_PATH",
            "MY_BERTH",
            "PYTHONPATH",
            "OMP_NUM_THREADS",
        ] {
            let env = BTreeMap::from([(ok.to_string(), "x".to_string())]);
            assert!(validate_env(&env).is_empty(), "{ok}");
        }
    }
}
