//! Resource policies: limits per user, as defaults plus per-user overrides. `None` (JSON
//! `null`) means unlimited. A fresh install starts from [`Policy::builtin`], which is not
//! unlimited where that would let one user exhaust the node or the disk.

use crate::{FieldError, Resources, ResourcesRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The policy object of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    pub max_concurrent_sessions: Option<u64>,
    pub max_pending_sessions: Option<u64>,
    pub max_total_resources: Option<Resources>,
    pub max_session_lifetime_s: Option<u64>,
    pub idle_timeout_s: Option<u64>,
    pub max_vfolders: Option<u64>,
    pub vfolder_quota_bytes: Option<u64>,
    pub allowed_node_groups: Option<Vec<String>>,
    /// Processes (and threads) one session's container may hold at once: Docker's
    /// `pids_limit`, so a fork bomb stays inside its session.
    pub max_processes: Option<u64>,
    /// With an idle timeout: a session whose CPU (and each GPU it holds) stays below this
    /// percent of its allocation for the whole idle timeout is ended as idle too, traffic or
    /// not (1–100; `null`: only traffic counts).
    #[serde(default)]
    pub idle_cpu_percent: Option<u64>,
    /// Bytes the user's home folder (mounted at `/home/work`) may hold; it takes the place of
    /// `vfolder_quota_bytes` for the home.
    #[serde(default)]
    pub home_quota_bytes: Option<u64>,
}

/// The built-in size limit of a user's home folder: 10 GiB.
pub const DEFAULT_HOME_QUOTA_BYTES: u64 = 10 << 30;

/// The built-in process limit per session.
pub const DEFAULT_MAX_PROCESSES: u64 = 1024;
/// The smallest process limit accepted: a shell, the init, JupyterLab and its kernels need some.
pub const MIN_PROCESSES: u64 = 32;

/// A user's effective policy and which keys their own override sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPolicy {
    #[serde(flatten)]
    pub policy: Policy,
    /// Keys set for this user; the others come from the defaults.
    pub overridden: Vec<String>,
}

pub const KEYS: [&str; 11] = [
    "max_concurrent_sessions",
    "max_pending_sessions",
    "max_total_resources",
    "max_session_lifetime_s",
    "idle_timeout_s",
    "max_vfolders",
    "vfolder_quota_bytes",
    "allowed_node_groups",
    "max_processes",
    "idle_cpu_percent",
    "home_quota_bytes",
];

/// The largest count or duration accepted (about 31 years in seconds).
const MAX_NUMBER: u64 = 1_000_000_000;

fn count(key: &str, v: &Value, max: u64) -> Result<Option<u64>, FieldError> {
    let bad = |m: String| FieldError::new(key, m);
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(x) if x <= max => Ok(Some(x)),
            Some(_) => Err(bad(format!("Policy setting {key} is too large: at most {max}."))),
            None => Err(bad(format!(
                "Policy setting {key} must be a whole number of 0 or more, or null for unlimited."
            ))),
        },
        Value::String(s) => match s.trim().parse::<u64>() {
            Ok(x) if x <= max => Ok(Some(x)),
            Ok(_) => Err(bad(format!("Policy setting {key} is too large: at most {max}."))),
            Err(_)
                if s.trim().eq_ignore_ascii_case("unlimited")
                    || s.trim().eq_ignore_ascii_case("null") =>
            {
                Ok(None)
            }
            Err(_) => Err(bad(format!(
                "Policy setting {key} (\"{}\") must be a whole number of 0 or more, or null for unlimited.",
                s.escape_default()
            ))),
        },
        _ => Err(bad(format!(
            "Policy setting {key} must be a whole number of 0 or more, or null for unlimited."
        ))),
    }
}

/// One parsed policy key: `Some(value)` or `None` for unlimited.
fn parse_key(key: &str, v: &Value) -> Result<Value, FieldError> {
    let out = match key {
        "max_total_resources" => match v {
            Value::Null => Value::Null,
            Value::Object(_) => {
                let req: ResourcesRequest = serde_json::from_value(v.clone()).map_err(|e| {
                    FieldError::new(key, format!("Policy setting max_total_resources is not a resources object: {e}."))
                })?;
                let r = req.validate().map_err(|errs| {
                    FieldError::new(
                        key,
                        errs.into_iter().map(|e| e.message).collect::<Vec<_>>().join(" "),
                    )
                })?;
                serde_json::to_value(r).unwrap_or(Value::Null)
            }
            _ => return Err(FieldError::new(key, "Policy setting max_total_resources must be an object like {\"cpu\":\"4\",\"mem\":\"8g\"}, or null.")),
        },
        "allowed_node_groups" => match v {
            Value::Null => Value::Null,
            Value::Array(items) if items.iter().all(|i| i.as_str().is_some_and(|s| (1..=64).contains(&s.len()))) => v.clone(),
            _ => return Err(FieldError::new(key, "Policy setting allowed_node_groups must be a list of group names, or null.")),
        },
        "vfolder_quota_bytes" | "home_quota_bytes" => match v {
            Value::String(s) if s.trim().parse::<u64>().is_err() && !s.trim().eq_ignore_ascii_case("unlimited") && !s.trim().eq_ignore_ascii_case("null") => {
                let what = if key == "home_quota_bytes" { "The home quota" } else { "The folder quota" };
                let b = crate::Bytes::parse_size(s, what).map_err(|m| FieldError::new(key, m))?;
                Value::from(b.0)
            }
            _ => count(key, v, u64::MAX >> 1)?.map(Value::from).unwrap_or(Value::Null),
        },
        "idle_cpu_percent" => match count(key, v, 100)? {
            Some(0) => {
                return Err(FieldError::new(
                    key,
                    "Policy setting idle_cpu_percent must be 1 to 100 (percent of the session's CPU), or null to count only traffic.",
                ))
            }
            n => n.map(Value::from).unwrap_or(Value::Null),
        },
        "max_processes" => match count(key, v, MAX_NUMBER)? {
            Some(n) if n < MIN_PROCESSES => {
                return Err(FieldError::new(
                    key,
                    format!("Policy setting max_processes must be at least {MIN_PROCESSES}: a session's shell, init and apps need some; use null for unlimited."),
                ))
            }
            n => n.map(Value::from).unwrap_or(Value::Null),
        },
        _ => count(key, v, MAX_NUMBER)?.map(Value::from).unwrap_or(Value::Null),
    };
    Ok(out)
}

/// Checks a policy object (or a part of one) and returns it normalised: unknown keys,
/// negative, unparsable or absurd values are field errors. Only the keys present are kept.
pub fn parse_policy_map(map: &Map<String, Value>) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut out = Map::new();
    let mut errs = Vec::new();
    for (k, v) in map {
        if !KEYS.contains(&k.as_str()) {
            errs.push(FieldError::new(
                k,
                format!("Field \"{k}\" is not a policy setting; remove it."),
            ));
            continue;
        }
        match parse_key(k, v) {
            Ok(v) => {
                out.insert(k.clone(), v);
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

impl Policy {
    /// What every user gets where neither the default policy nor their own sets a value: at
    /// most 10 sessions waiting, 100 folders of at most 100 GiB each, a home of at most
    /// 10 GiB, 1024 processes per session. Sessions, resources, lifetimes and node groups stay unlimited (the nodes'
    /// size bounds them). An administrator who wants unlimited sets `null` explicitly.
    pub fn builtin() -> Policy {
        Policy {
            max_pending_sessions: Some(10),
            max_vfolders: Some(100),
            vfolder_quota_bytes: Some(100 << 30),
            home_quota_bytes: Some(DEFAULT_HOME_QUOTA_BYTES),
            max_processes: Some(DEFAULT_MAX_PROCESSES),
            ..Default::default()
        }
    }

    /// Whether a session asking for `want` may start now, given what its owner already holds
    /// (`running` live sessions past the queue, `held` their resources). The error is the
    /// sentence a waiting session shows.
    pub fn admits(&self, running: u64, held: &Resources, want: &Resources) -> Result<(), String> {
        if let Some(max) = self.max_concurrent_sessions {
            if running >= max {
                return Err(format!(
                    "Waiting: your policy allows {max} concurrent session{} and {running} {} running.",
                    if max == 1 { "" } else { "s" },
                    if running == 1 { "is" } else { "are" }
                ));
            }
        }
        if let Some(total) = &self.max_total_resources {
            if !held.add(want).fits_in(&Self::unlimited_where_zero(total)) {
                return Err(format!(
                    "Waiting: your policy allows {} in all; your running sessions hold {} and this one needs {}.",
                    total.summary(),
                    held.summary(),
                    want.summary()
                ));
            }
        }
        Ok(())
    }

    /// Whether `want` could ever start under this policy (nothing else running).
    pub fn could_ever_admit(&self, want: &Resources) -> Result<(), String> {
        if self.max_concurrent_sessions == Some(0) {
            return Err("Your policy allows no sessions; ask an administrator.".into());
        }
        if let Some(total) = &self.max_total_resources {
            if !want.fits_in(&Self::unlimited_where_zero(total)) {
                return Err(format!(
                    "This session needs {}, more than your policy allows in all ({}).",
                    want.summary(),
                    total.summary()
                ));
            }
        }
        Ok(())
    }

    /// A total where GPU slots left at zero mean "not limited" (policies name CPU and memory).
    fn unlimited_where_zero(total: &Resources) -> Resources {
        Resources {
            gpu: if total.gpu == 0 { u32::MAX } else { total.gpu },
            gpu_shares: if total.gpu_shares.0 == 0 {
                crate::Shares(u32::MAX)
            } else {
                total.gpu_shares
            },
            ..*total
        }
    }

    /// Lays normalised `overrides` over `self`.
    pub fn with_overrides(&self, overrides: &Map<String, Value>) -> Policy {
        let mut base = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(m) = &mut base {
            for (k, v) in overrides {
                m.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap_or_else(|_| self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(j: &str) -> Map<String, Value> {
        serde_json::from_str(j).unwrap()
    }

    #[test]
    fn parses_and_overrides() {
        let m = parse_policy_map(&map(r#"{"idle_timeout_s": 600, "max_total_resources": {"cpu": "4", "mem": "8g"}, "max_vfolders": null, "vfolder_quota_bytes": "10g"}"#)).unwrap();
        let p = Policy {
            max_vfolders: Some(3),
            ..Default::default()
        }
        .with_overrides(&m);
        assert_eq!(p.idle_timeout_s, Some(600));
        assert_eq!(p.max_vfolders, None);
        assert_eq!(p.vfolder_quota_bytes, Some(10 << 30));
        assert_eq!(p.max_total_resources.unwrap().cpu.0, 4000);
    }

    #[test]
    fn admission_follows_the_policy() {
        use crate::{Bytes, Millicores};
        let r = |m: u64, mb: u64| Resources {
            cpu: Millicores(m),
            mem: Bytes(mb << 20),
            ..Default::default()
        };
        let p = Policy {
            max_concurrent_sessions: Some(2),
            max_total_resources: Some(r(1000, 1024)),
            ..Default::default()
        };
        assert!(p.admits(1, &r(500, 512), &r(500, 512)).is_ok());
        let e = p.admits(2, &r(200, 256), &r(100, 128)).unwrap_err();
        assert!(e.contains("2 concurrent sessions and 2 are running"), "{e}");
        let e = p.admits(1, &r(600, 512), &r(500, 128)).unwrap_err();
        assert!(e.contains("1 CPU, 1 GiB in all"), "{e}");
        assert!(p.could_ever_admit(&r(1500, 128)).is_err());
        assert!(p.could_ever_admit(&r(1000, 1024)).is_ok());
        assert!(Policy::default()
            .admits(100, &r(9000, 9000), &r(9000, 9000))
            .is_ok());
    }

    #[test]
    fn builtin_defaults_are_bounded_and_null_overrides_them() {
        let b = Policy::builtin();
        assert_eq!(b.max_pending_sessions, Some(10));
        assert_eq!(b.vfolder_quota_bytes, Some(100 << 30));
        assert_eq!(b.max_processes, Some(DEFAULT_MAX_PROCESSES));
        assert_eq!(b.home_quota_bytes, Some(10 << 30));
        let m = parse_policy_map(&map(
            r#"{"max_processes": null, "vfolder_quota_bytes": "unlimited", "max_pending_sessions": 3}"#,
        ))
        .unwrap();
        let p = b.with_overrides(&m);
        assert_eq!(p.max_processes, None);
        assert_eq!(p.vfolder_quota_bytes, None);
        assert_eq!(p.max_pending_sessions, Some(3));
        assert_eq!(p.max_vfolders, Some(100), "left out: the built-in value");
    }

    #[test]
    fn process_limits_have_a_floor() {
        let m = parse_policy_map(&map(r#"{"max_processes": "256"}"#)).unwrap();
        assert_eq!(m["max_processes"], 256);
        for bad in [
            r#"{"max_processes": 0}"#,
            r#"{"max_processes": 31}"#,
            r#"{"max_processes": -1}"#,
        ] {
            let e = parse_policy_map(&map(bad)).unwrap_err();
            assert_eq!(e[0].field, "max_processes", "{bad}");
        }
    }

    #[test]
    fn small_quotas_are_sizes_not_memory() {
        let m = parse_policy_map(&map(r#"{"vfolder_quota_bytes": "1m"}"#)).unwrap();
        assert_eq!(m["vfolder_quota_bytes"], 1 << 20);
        let e = parse_policy_map(&map(r#"{"vfolder_quota_bytes": "0k"}"#)).unwrap_err();
        assert!(e[0].message.starts_with("The folder quota"), "{e:?}");
        let m = parse_policy_map(&map(r#"{"home_quota_bytes": "2g"}"#)).unwrap();
        assert_eq!(m["home_quota_bytes"], 2u64 << 30);
        let m = parse_policy_map(&map(r#"{"home_quota_bytes": null}"#)).unwrap();
        assert!(m["home_quota_bytes"].is_null());
        let e = parse_policy_map(&map(r#"{"home_quota_bytes": "lots"}"#)).unwrap_err();
        assert_eq!(e[0].field, "home_quota_bytes", "{e:?}");
    }

    #[test]
    fn an_idle_cpu_threshold_is_a_percent() {
        let m = parse_policy_map(&map(r#"{"idle_cpu_percent": 5}"#)).unwrap();
        assert_eq!(m["idle_cpu_percent"], 5);
        let m = parse_policy_map(&map(r#"{"idle_cpu_percent": null}"#)).unwrap();
        assert!(m["idle_cpu_percent"].is_null());
    }

    #[test]
    fn refuses_bad_values() {
        for bad in [
            r#"{"idle_timeout_s": -1}"#,
            r#"{"idle_timeout_s": "soon"}"#,
            r#"{"idle_timeout_s": 1.5}"#,
            r#"{"colour": 1}"#,
            r#"{"max_total_resources": {"cpu": "0", "mem": "1g"}}"#,
            r#"{"allowed_node_groups": "gpu"}"#,
            r#"{"idle_cpu_percent": 0}"#,
            r#"{"idle_cpu_percent": 101}"#,
            r#"{"idle_cpu_percent": "busy"}"#,
        ] {
            assert!(parse_policy_map(&map(bad)).is_err(), "{bad}");
        }
    }
}
