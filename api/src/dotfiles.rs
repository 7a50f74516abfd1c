//! Dotfiles on the wire: configuration files berth writes into every session's container
//! before it starts, kept at three levels — the domain's (everyone's, administrators keep
//! them), a project's (its members', administrators keep them) and a user's own. At start the
//! levels are laid over each other in that order, so for one path the user's file wins over
//! the project's, which wins over the domain's.
//!
//! A path is home-relative (`~/.bashrc`, `~/.config/git/config`) at every level, or under
//! `/etc/` (`/etc/profile.d/team.sh`, `/etc/pip.conf`) at the domain and project levels only.

use crate::FieldError;
use serde::{Deserialize, Serialize};

/// The most bytes one dotfile's content may have (64 KiB).
pub const MAX_CONTENT: usize = 64 * 1024;
/// The most dotfiles one level (the domain, a project, a user) may keep.
pub const MAX_PER_LEVEL: usize = 100;
/// The most bytes a dotfile's path may have, `~/` or `/etc/` included.
pub const MAX_PATH: usize = 255;
/// The mode a dotfile gets when the request names none.
pub const DEFAULT_MODE: &str = "0644";

/// Which set of dotfiles: the domain's, a project's or a user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Domain,
    Project,
    User,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Project => "project",
            Self::User => "user",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "domain" => Some(Self::Domain),
            "project" => Some(Self::Project),
            "user" => Some(Self::User),
            _ => None,
        }
    }
    /// Whether this level may write under `/etc/` (the administrators' levels).
    pub fn may_write_etc(self) -> bool {
        !matches!(self, Self::User)
    }
}

/// A dotfile as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dotfile {
    /// `~/REL` (in the session user's home) or `/etc/REL`.
    pub path: String,
    /// The file's content (UTF-8 text, at most 64 KiB).
    pub content: String,
    /// Permission bits as four octal digits (`0644`).
    pub mode: String,
    pub updated_at: String,
}

/// `PUT /api/v1/dotfiles` (and the project's and domain's): creates the dotfile at `path`, or
/// replaces the one there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutDotfile {
    /// `~/REL` at every level; `/etc/REL` at the domain and project levels only.
    pub path: String,
    /// UTF-8 text, at most 65,536 bytes.
    pub content: String,
    /// Permission bits in octal, at most `0777` (no set-id or sticky bits); `0644` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

impl PutDotfile {
    /// Checks the request against the rules of `level`; every complaint names its field.
    pub fn validate(&self, level: Level) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Err(m) = validate_path(&self.path, level) {
            errs.push(FieldError::new("path", m));
        }
        if let Err(m) = validate_content(&self.content) {
            errs.push(FieldError::new("content", m));
        }
        if let Some(mode) = &self.mode {
            if let Err(m) = parse_mode(mode) {
                errs.push(FieldError::new("mode", m));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// The mode asked for (the default when none), as bits; call after [`Self::validate`].
    pub fn mode_bits(&self) -> u32 {
        self.mode
            .as_deref()
            .and_then(|m| parse_mode(m).ok())
            .unwrap_or(0o644)
    }
}

/// Where a valid dotfile path puts the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// Relative to the session user's home (`~/` stripped).
    Home(&'a str),
    /// Relative to `/etc` (`/etc/` stripped).
    Etc(&'a str),
}

/// Where a path that passed [`validate_path`] puts its file.
pub fn place(path: &str) -> Option<Place<'_>> {
    if let Some(rel) = path.strip_prefix("~/") {
        Some(Place::Home(rel))
    } else {
        path.strip_prefix("/etc/").map(Place::Etc)
    }
}

/// Refused in the home: berth's SSH access keeps its own list of keys, so a dotfile may not
/// stand in for (or fight over) the user's `authorized_keys`.
const HOME_REFUSED: [&str; 2] = [".ssh/authorized_keys", ".ssh/authorized_keys2"];

/// A dotfile path: `~/REL` at every level, or `/etc/REL` at the domain and project levels;
/// REL is one or more names separated by single `/`, none of them `.` or `..`, without control
/// characters; at most [`MAX_PATH`] bytes in all.
pub fn validate_path(path: &str, level: Level) -> Result<(), String> {
    let shown = path.escape_default();
    if path.is_empty() {
        return Err("A dotfile needs a path, such as ~/.bashrc.".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("A dotfile path has at most {MAX_PATH} bytes."));
    }
    if path.chars().any(char::is_control) {
        return Err(
            "A dotfile path cannot contain control characters (NUL, newlines, tabs).".into(),
        );
    }
    let rel = match place(path) {
        Some(Place::Home(rel)) => rel,
        Some(Place::Etc(rel)) if level.may_write_etc() => rel,
        Some(Place::Etc(_)) => {
            return Err(format!(
                "\"{shown}\" is under /etc, which only administrators' levels (the domain's and projects' dotfiles) may write; your own dotfiles are home-relative, such as ~/.bashrc."
            ))
        }
        None if path == "~" || path == "/etc" => {
            return Err(format!(
                "\"{shown}\" is a folder, not a file: name a file in it, such as ~/.bashrc."
            ))
        }
        None => {
            return Err(if level.may_write_etc() {
                format!("\"{shown}\" is neither in the home (~/…) nor under /etc/; a dotfile goes in one of those.")
            } else {
                format!("\"{shown}\" is not in your home: a dotfile path starts with ~/, such as ~/.bashrc.")
            })
        }
    };
    for part in rel.split('/') {
        match part {
            "" => {
                return Err(format!(
                    "\"{shown}\" has an empty name in it (a doubled or trailing /); name a file."
                ))
            }
            "." | ".." => {
                return Err(format!(
                    "\"{shown}\" may not use \".\" or \"..\"; write the path out in full."
                ))
            }
            _ => {}
        }
    }
    if matches!(place(path), Some(Place::Home(_))) && HOME_REFUSED.contains(&rel) {
        return Err(format!(
            "\"{shown}\" is managed by berth's SSH access; add your public keys under SSH keys instead."
        ));
    }
    if matches!(place(path), Some(Place::Etc(_))) && (rel == "berth" || rel.starts_with("berth/")) {
        return Err(format!(
            "\"{shown}\" is under /etc/berth, where berth keeps a session's own configuration (its SSH server's); choose another path."
        ));
    }
    Ok(())
}

/// Content: UTF-8 text (the type guarantees it) of at most [`MAX_CONTENT`] bytes.
pub fn validate_content(content: &str) -> Result<(), String> {
    if content.contains('\0') {
        return Err(
            "A dotfile is text and cannot contain NUL bytes; upload binary files to a folder instead."
                .into(),
        );
    }
    if content.len() > MAX_CONTENT {
        return Err(format!(
            "A dotfile holds at most 64 KiB ({MAX_CONTENT} bytes); this one has {} bytes.",
            content.len()
        ));
    }
    Ok(())
}

/// A mode in octal (`644`, `0644`), at most `0777`: permission bits only, no set-id or sticky.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let shown = s.escape_default();
    let digits = s.strip_prefix('0').filter(|d| d.len() == 3).unwrap_or(s);
    if digits.len() != 3 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        if s.len() == 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(format!(
                "Mode \"{shown}\" sets a set-uid, set-gid or sticky bit; a dotfile's mode is at most 0777."
            ));
        }
        return Err(format!(
            "Mode \"{shown}\" is not a file mode: write three or four octal digits, such as 0644 or 0600."
        ));
    }
    Ok(u32::from_str_radix(digits, 8).unwrap_or(0o644))
}

/// A mode as four octal digits (`0644`).
pub fn format_mode(bits: u32) -> String {
    format!("{:04o}", bits & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_paths_at_every_level_and_etc_for_administrators_only() {
        for level in [Level::User, Level::Project, Level::Domain] {
            for ok in [
                "~/.bashrc",
                "~/.config/git/config",
                "~/.local/bin/tool",
                "~/a b",
            ] {
                assert_eq!(validate_path(ok, level), Ok(()), "{ok}");
            }
        }
        for level in [Level::Project, Level::Domain] {
            for ok in ["/etc/pip.conf", "/etc/profile.d/team.sh"] {
                assert_eq!(validate_path(ok, level), Ok(()), "{ok}");
            }
        }
        let e = validate_path("/etc/pip.conf", Level::User).unwrap_err();
        assert!(e.contains("only administrators"), "{e}");
        assert_eq!(place("~/.bashrc"), Some(Place::Home(".bashrc")));
        assert_eq!(place("/etc/pip.conf"), Some(Place::Etc("pip.conf")));
    }

    #[test]
    fn bad_paths_are_sentences() {
        let long = format!("~/{}", "a".repeat(254));
        for (bad, level, says) in [
            ("", Level::User, "needs a path"),
            ("~", Level::User, "is a folder"),
            ("~/", Level::User, "empty name"),
            ("/etc", Level::Domain, "is a folder"),
            ("/etc/", Level::Domain, "empty name"),
            ("~/../etc/passwd", Level::User, "\"..\""),
            ("~/a/../../x", Level::User, "\"..\""),
            ("~/./x", Level::User, "\"..\""),
            ("~/a//b", Level::User, "empty name"),
            ("~/a/", Level::User, "empty name"),
            ("/etc/../root/x", Level::Domain, "\"..\""),
            (".bashrc", Level::User, "starts with ~/"),
            ("/home/work/.bashrc", Level::User, "starts with ~/"),
            ("/usr/bin/x", Level::Domain, "neither in the home"),
            ("/etcx/y", Level::Domain, "neither in the home"),
            ("~user/x", Level::User, "starts with ~/"),
            ("~/a\0b", Level::User, "control characters"),
            ("~/a\nb", Level::User, "control characters"),
            ("~/.ssh/authorized_keys", Level::User, "SSH"),
            ("~/.ssh/authorized_keys2", Level::Domain, "SSH"),
            (
                "/etc/berth/ssh/authorized_keys",
                Level::Domain,
                "/etc/berth",
            ),
            ("/etc/berth", Level::Project, "/etc/berth"),
            (long.as_str(), Level::User, "at most 255 bytes"),
        ] {
            let e = validate_path(bad, level).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(e.ends_with('.'), "{e}");
        }
        assert_eq!(validate_path("~/.ssh/config", Level::User), Ok(()));
        assert_eq!(
            validate_path(&format!("~/{}", "a".repeat(253)), Level::User),
            Ok(())
        );
    }

    #[test]
    fn modes_are_permission_bits_only() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert_eq!(parse_mode("0777"), Ok(0o777));
        assert_eq!(parse_mode("0000"), Ok(0));
        for bad in [
            "4755",
            "1777",
            "2755",
            "0x644",
            "rw-r--r--",
            "",
            "06440",
            "0648",
            "64",
        ] {
            let e = parse_mode(bad).expect_err(bad);
            assert!(e.starts_with("Mode "), "{e}");
        }
        assert!(parse_mode("4755").unwrap_err().contains("set-uid"));
        assert_eq!(format_mode(0o600), "0600");
        assert_eq!(format_mode(0o4755), "0755");
    }

    #[test]
    fn a_request_names_each_bad_field_and_sizes_are_counted_in_bytes() {
        let ok = PutDotfile {
            path: "~/.vimrc".into(),
            content: "x".repeat(MAX_CONTENT),
            mode: None,
        };
        assert_eq!(ok.validate(Level::User), Ok(()));
        assert_eq!(ok.mode_bits(), 0o644);
        let bad = PutDotfile {
            path: "/etc/x".into(),
            // 32,769 two-byte characters: fewer characters than the limit, more bytes.
            content: "é".repeat(MAX_CONTENT / 2 + 1),
            mode: Some("4755".into()),
        };
        let errs = bad.validate(Level::User).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["path", "content", "mode"]);
        assert!(errs[1].message.contains("64 KiB"), "{}", errs[1].message);
        // PostgreSQL's text cannot hold NUL: refused with a sentence, not a database error.
        let e = validate_content("a\0b").unwrap_err();
        assert!(e.contains("NUL"), "{e}");
    }

    #[test]
    fn levels_round_trip_their_names() {
        for l in [Level::Domain, Level::Project, Level::User] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("admin"), None);
    }
}
