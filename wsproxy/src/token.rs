//! Proxy tokens: what the gateway signs so that a node's `berth wsproxy` (see [`crate::remote`])
//! opens one terminal, one app login or one tunnel of one session, for its owner, and nothing
//! else. The proxy has no database: the token is all it knows about the request.
//!
//! A token is `BASE64URL(JSON claims) "." BASE64URL(HMAC-SHA256(key, "berth-proxy-v1." +
//! first part))`, the key being the node's proxy key (made when an admin registered the proxy,
//! shown once, kept by the gateway and given to the proxy). [`verify`] checks, in this order:
//! the size and shape, the MAC (constant time, [`hmac::Mac::verify_slice`]), the expiry, the
//! node (a token for another proxy's node is refused even if that node shares the key), and
//! the target (a terminal token opens no tunnel). Tokens live [`TOKEN_TTL`]; each carries a
//! random `jti` so that the proxy can spend it once ([`Spent`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token the gateway signs opens something.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// The longest token accepted (claims are small; anything longer is not ours).
const MAX_TOKEN: usize = 4096;
/// Domain separation: the MAC covers this prefix, so no other use of the key can mint tokens.
const CONTEXT: &[u8] = b"berth-proxy-v1.";

/// A node's proxy key: the HMAC key of its tokens and the bearer secret of the gateway's
/// calls to the proxy. Printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// A fresh random key (64 hex digits).
    pub fn generate() -> Self {
        Self(crate::secret::random_hex(crate::secret::TOKEN_BYTES))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.0.as_bytes()).expect("HMAC takes keys of any size")
    }

    /// Whether `offered` (a bearer secret) is this key, in constant time.
    pub fn matches(&self, offered: &str) -> bool {
        // MACs of both under a fixed key, compared by `verify_slice` (constant time).
        let mut a = Hmac::<Sha256>::new_from_slice(b"berth-key-compare").expect("any size");
        a.update(self.0.as_bytes());
        let mut b = Hmac::<Sha256>::new_from_slice(b"berth-key-compare").expect("any size");
        b.update(offered.as_bytes());
        a.verify_slice(&b.finalize().into_bytes()).is_ok()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The terminal handle named in `handle`.
    Terminal,
    /// A login into the HTTP app `app` (container port `port`): one use.
    App,
    /// One TCP connection to the app `app` (container port `port`): one use.
    Tunnel,
}

/// What the gateway vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The node whose proxy may accept it.
    pub node: String,
    pub target: Target,
    pub session: String,
    /// The session's owner, as the gateway checked them (revocations name them).
    pub owner: String,
    /// The session's container on that node.
    pub container: String,
    /// The app's name (apps and tunnels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The app's port inside the container (apps and tunnels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The terminal handle's id (terminals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Issued at, milliseconds since the epoch on the gateway's clock.
    pub iat: u64,
    /// Expires at, milliseconds since the epoch.
    pub exp: u64,
    /// Random: names this token in the proxy's spent set.
    pub jti: String,
}

impl Claims {
    /// Claims for `target` of a session, valid for [`TOKEN_TTL`] from now.
    pub fn new(node: &str, target: Target, session: &str, owner: &str, container: &str) -> Self {
        let now = now_ms();
        Self {
            node: node.into(),
            target,
            session: session.into(),
            owner: owner.into(),
            container: container.into(),
            app: None,
            port: None,
            handle: None,
            iat: now,
            exp: now + TOKEN_TTL.as_millis() as u64,
            jti: crate::secret::random_hex(16),
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why a token was refused; [`Refusal::status`] and [`Refusal::sentence`] say it to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token of ours, or its MAC does not check out.
    Forged,
    Expired,
    /// Signed for another node.
    OtherNode,
    /// A token for something else (a terminal token used for a tunnel, another handle, app).
    WrongTarget,
    /// A one-use token used again.
    Spent,
    /// Its owner's access was revoked after it was issued.
    Revoked,
}

impl Refusal {
    /// 401 for tokens that prove nothing (forged, expired, spent, revoked), 403 for good
    /// tokens that do not open this.
    pub fn status(self) -> u16 {
        match self {
            Self::OtherNode | Self::WrongTarget => 403,
            _ => 401,
        }
    }

    pub fn sentence(self) -> &'static str {
        match self {
            Self::Forged => "This proxy token is not valid; open it again from berth.",
            Self::Expired => {
                "This proxy token has expired (they work for a minute); open it again from berth."
            }
            Self::OtherNode => "This proxy token is for another node's proxy.",
            Self::WrongTarget => "This proxy token does not open this.",
            Self::Spent => "This proxy link was already used; open it again from berth.",
            Self::Revoked => "Access was revoked; log in to berth again.",
        }
    }
}

/// Signs `claims` with `key`.
pub fn sign(key: &Key, claims: &Claims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let mut mac = key.mac();
    mac.update(CONTEXT);
    mac.update(body.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{body}.{tag}")
}

/// The claims of `token` if `key` signed it, it has not expired at `now_ms`, it is for `node`
/// and opens `target`.
pub fn verify(
    key: &Key,
    token: &str,
    node: &str,
    target: Target,
    now_ms: u64,
) -> Result<Claims, Refusal> {
    if token.len() > MAX_TOKEN {
        return Err(Refusal::Forged);
    }
    let (body, tag) = token.split_once('.').ok_or(Refusal::Forged)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refusal::Forged)?;
    let mut mac = key.mac();
    mac.update(CONTEXT);
    mac.update(body.as_bytes());
    mac.verify_slice(&tag).map_err(|_| Refusal::Forged)?;
    // Only a body we signed is parsed.
    let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| Refusal::Forged)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| Refusal::Forged)?;
    if claims.exp <= now_ms {
        return Err(Refusal::Expired);
    }
    if claims.node != node {
        return Err(Refusal::OtherNode);
    }
    if claims.target != target {
        return Err(Refusal::WrongTarget);
    }
    Ok(claims)
}

/// The `jti`s of one-use tokens already used, kept until they expire (after that the token is
/// refused as expired anyway).
#[derive(Default)]
pub struct Spent {
    used: Mutex<HashMap<String, u64>>,
}

impl Spent {
    /// Marks `claims` used; false when it already was.
    pub fn spend(&self, claims: &Claims) -> bool {
        let mut used = self.used.lock().expect("spent lock");
        let now = now_ms();
        if used.len() > 1024 {
            used.retain(|_, exp| *exp > now);
        }
        if used.contains_key(&claims.jti) {
            return false;
        }
        used.insert(claims.jti.clone(), claims.exp);
        true
    }

    /// Gives a token back (what it opened refused it for a reason of its own, e.g. a bad
    /// `next`), so a good copy still works.
    pub fn unspend(&self, claims: &Claims) {
        self.used.lock().expect("spent lock").remove(&claims.jti);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        let mut c = Claims::new("node2", Target::Terminal, "s1", "u1", "c1");
        c.handle = Some("h1".into());
        c
    }

    #[test]
    fn a_signed_token_verifies_for_its_node_and_target_only() {
        let key = Key::generate();
        let c = claims();
        let t = sign(&key, &c);
        let now = now_ms();
        assert_eq!(verify(&key, &t, "node2", Target::Terminal, now), Ok(c));
        assert_eq!(
            verify(&key, &t, "node3", Target::Terminal, now),
            Err(Refusal::OtherNode)
        );
        assert_eq!(
            verify(&key, &t, "node2", Target::Tunnel, now),
            Err(Refusal::WrongTarget)
        );
        let later = now + TOKEN_TTL.as_millis() as u64 + 1;
        assert_eq!(
            verify(&key, &t, "node2", Target::Terminal, later),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_forged_or_altered_token_is_refused() {
        let key = Key::generate();
        let t = sign(&key, &claims());
        let now = now_ms();
        // Another key (another proxy's node).
        assert_eq!(
            verify(&Key::generate(), &t, "node2", Target::Terminal, now),
            Err(Refusal::Forged)
        );
        // A body changed to name another session, MAC kept.
        let (_, tag) = t.split_once('.').unwrap();
        let mut other = claims();
        other.session = "s2".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            verify(
                &key,
                &format!("{body}.{tag}"),
                "node2",
                Target::Terminal,
                now
            ),
            Err(Refusal::Forged)
        );
        for bad in ["", ".", "abc", "a.b", &format!("{t}x"), &"a".repeat(5000)] {
            assert_eq!(
                verify(&key, bad, "node2", Target::Terminal, now),
                Err(Refusal::Forged),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_one_use_token_is_spent_once() {
        let spent = Spent::default();
        let c = claims();
        assert!(spent.spend(&c));
        assert!(!spent.spend(&c));
        spent.unspend(&c);
        assert!(spent.spend(&c));
    }

    #[test]
    fn keys_print_as_stars_and_compare_whole() {
        let k = Key::new("abc123");
        assert_eq!(format!("{k:?}"), "***");
        assert!(k.matches("abc123"));
        assert!(!k.matches("abc12"));
        assert!(!k.matches("abc1234"));
        assert!(!k.matches(""));
    }
}
