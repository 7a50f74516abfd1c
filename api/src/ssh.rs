//! SSH into sessions on the wire: a user's SSH public keys (`/api/v1/me/ssh-keys`), the rules
//! a key must pass, and what a session says about its SSH server.
//!
//! The cheap checks (a name's length, a private key pasted by mistake, one key per entry) are
//! plain code the console runs before submit; the full parse — algorithm, encoding, RSA size,
//! fingerprint — uses RustCrypto's `ssh-key` behind this crate's `ssh-key` feature, which only
//! the gateway enables ([`parse_public_key`]).

use serde::{Deserialize, Serialize};

/// The port berth's `sshd` listens on inside a session (in the helper range 2200..=2299).
pub const SSH_PORT: u16 = 2200;
/// The reserved app name of a session's SSH server on the tunnel endpoint
/// (`/api/v1/sessions/{id}/tunnel/ssh`); no image may declare an app of that name.
pub const SSH_APP: &str = "ssh";
/// The user SSH logs in as.
pub const SSH_USER: &str = "work";
/// At most this many SSH keys per user.
pub const MAX_SSH_KEYS: usize = 50;
/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// A key's text may not be longer than this (a 16384-bit RSA key is about 2.8 KB).
pub const MAX_KEY_TEXT: usize = 8 * 1024;

/// `POST /api/v1/me/ssh-keys` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSshKey {
    /// 1–64 characters; default: the key's comment (or its type when it has none).
    #[serde(default)]
    pub name: Option<String>,
    /// One public key as in `~/.ssh/id_ed25519.pub`: `TYPE BASE64 [COMMENT]`.
    pub key: String,
}

/// One of my SSH public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SshKey {
    pub id: String,
    pub name: String,
    /// The key without its comment: `TYPE BASE64`.
    pub key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub created_at: String,
}

/// What a session says about its SSH server (`Session::ssh`): present for sessions berth set
/// SSH up in (interactive ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionSsh {
    /// The session's host key, `ssh-ed25519 BASE64`, for a client's known hosts.
    pub host_key: String,
    /// Why SSH is not available in this session (an image without `sshd`), as a sentence.
    #[serde(default)]
    pub error: Option<String>,
}

/// The name a host has in `berth ssh-config`'s blocks: `berth-NAME`.
pub fn host_alias(session_name: &str) -> String {
    format!("berth-{session_name}")
}

/// A key's name: 1–64 characters, no control characters.
pub fn validate_key_name(name: &str) -> Result<(), String> {
    let n = name.trim().chars().count();
    if n == 0 || n > 64 {
        return Err("A key's name must be 1 to 64 characters.".into());
    }
    if name.chars().any(char::is_control) {
        return Err("A key's name may not contain control characters.".into());
    }
    Ok(())
}

/// The checks that need no parser: text present, not too long, not a private key, one line.
pub fn precheck_key(text: &str) -> Result<(), String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "Paste a public key, the one line of a file like ~/.ssh/id_ed25519.pub.".into(),
        );
    }
    if t.contains("PRIVATE KEY")
        || t.starts_with("-----BEGIN")
        || t.starts_with("PuTTY-User-Key-File")
    {
        return Err("This is a private key: never share it. Paste the public key instead, the one line of the file ending in .pub (e.g. ~/.ssh/id_ed25519.pub).".into());
    }
    if t.len() > MAX_KEY_TEXT {
        return Err(format!(
            "A public key is at most {MAX_KEY_TEXT} characters; this text is longer."
        ));
    }
    if t.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        return Err("Paste one key at a time: this text has several lines.".into());
    }
    Ok(())
}

/// A public key as berth keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// `TYPE BASE64`, without the comment.
    pub normalized: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    /// The key's comment (may be empty).
    pub comment: String,
    /// The key's type, as in the text (`ssh-ed25519`, …).
    pub algorithm: String,
}

/// Parses one OpenSSH public key line and checks it is of a kind berth accepts: ed25519,
/// ecdsa (nistp256/384/521), rsa of at least [`MIN_RSA_BITS`], and the security-key (`sk-`)
/// variants; every refusal is a sentence.
#[cfg(feature = "ssh-key")]
pub fn parse_public_key(text: &str) -> Result<ParsedKey, String> {
    use ssh_key::public::KeyData;
    precheck_key(text)?;
    let t = text.trim();
    let kind = t.split_whitespace().next().unwrap_or("");
    let key = ssh_key::PublicKey::from_openssh(t).map_err(|_| {
        if kind.contains("-cert-") {
            "SSH certificates are not accepted; paste the plain public key.".to_string()
        } else {
            "This is not an SSH public key: expected one line like \"ssh-ed25519 AAAAC3Nza… you@laptop\", as in ~/.ssh/id_ed25519.pub.".to_string()
        }
    })?;
    match key.key_data() {
        KeyData::Ed25519(_)
        | KeyData::Ecdsa(_)
        | KeyData::SkEd25519(_)
        | KeyData::SkEcdsaSha2NistP256(_) => {}
        KeyData::Rsa(r) => {
            let bytes = r.n.as_positive_bytes().unwrap_or(&[]);
            let bits = match bytes.first() {
                Some(b) => (bytes.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
                None => 0,
            };
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "This RSA key has {bits} bits; berth accepts RSA keys of at least {MIN_RSA_BITS} bits (or use ed25519: ssh-keygen -t ed25519)."
                ));
            }
        }
        _ => {
            return Err(format!(
                "Keys of type {} are not accepted; use ed25519, ecdsa, rsa (2048 bits or more) or a security key (sk-…).",
                kind.escape_default()
            ))
        }
    }
    let comment = key.comment().to_string();
    let mut bare = key.clone();
    bare.set_comment("");
    let normalized = bare
        .to_openssh()
        .map_err(|_| "This key could not be encoded again.".to_string())?
        .trim()
        .to_string();
    Ok(ParsedKey {
        fingerprint: key.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
        algorithm: key.algorithm().as_str().to_string(),
        normalized,
        comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prechecks() {
        assert!(validate_key_name("laptop").is_ok());
        assert!(validate_key_name("").is_err());
        assert!(validate_key_name(&"x".repeat(65)).is_err());
        assert!(validate_key_name("a\nb").is_err());
        assert!(precheck_key(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blb\n-----END OPENSSH PRIVATE KEY-----"
        )
        .unwrap_err()
        .contains("private key"));
        assert!(precheck_key("ssh-ed25519 AAAA a\nssh-ed25519 AAAA b").is_err());
        assert!(precheck_key("  ").is_err());
    }

    #[cfg(feature = "ssh-key")]
    #[test]
    fn keys_parse_normalize_and_fingerprint() {
        // From ssh-keygen -t ed25519; fingerprint as `ssh-keygen -lf` prints it.
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti foo@bar.com\n";
        let p = parse_public_key(k).unwrap();
        assert_eq!(
            p.normalized,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti"
        );
        assert_eq!(p.comment, "foo@bar.com");
        assert!(p.fingerprint.starts_with("SHA256:"));
        assert!(parse_public_key("ssh-ed25519 AAAAnotbase64!").is_err());
        assert!(parse_public_key("hello world").is_err());
        // The text's type must match the encoded one.
        assert!(parse_public_key(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti"
        )
        .is_err());
    }
}
