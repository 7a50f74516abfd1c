//! `berth admin policy show|set`: the defaults and each user's overrides, as tables or JSON.

use super::PolicyCmd;
use crate::client::{api_path, Client};
use crate::table::{self, Table};
use crate::{Error, Result};
use api::policy::{Policy, UserPolicy};
use serde_json::{Map, Value};

/// One `KEY=VALUE` of `policy set` as JSON. `None` means "drop the user's own value".
pub fn policy_value(key: &str, raw: &str) -> Result<Option<Value>> {
    let v = raw.trim();
    if v.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    if v.eq_ignore_ascii_case("null") || v.eq_ignore_ascii_case("unlimited") {
        return Ok(Some(Value::Null));
    }
    if v.starts_with('{') || v.starts_with('[') {
        return serde_json::from_str(v)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{key}: \"{v}\" is not valid JSON ({e}).")));
    }
    let out = match key {
        "max_total_resources" => {
            let mut m = Map::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, val) = part.split_once('=').ok_or_else(|| {
                    Error::Usage(format!(
                        "{key}: \"{part}\" is not NAME=VALUE; write e.g. {key}=cpu=4,mem=8g."
                    ))
                })?;
                m.insert(k.trim().to_string(), Value::from(val.trim()));
            }
            Value::Object(m)
        }
        "allowed_node_groups" => Value::Array(
            v.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(Value::from)
                .collect(),
        ),
        _ => match v.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(v),
        },
    };
    Ok(Some(out))
}

/// Splits `KEY=VALUE` arguments into `(key, value)` pairs.
pub fn parse_settings(args: &[String]) -> Result<Vec<(String, Option<Value>)>> {
    if args.is_empty() {
        return Err(Error::Usage(
            "Give at least one KEY=VALUE setting, e.g. idle_timeout_s=3600.".into(),
        ));
    }
    args.iter()
        .map(|a| {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                Error::Usage(format!(
                    "\"{a}\" is not KEY=VALUE, e.g. max_concurrent_sessions=3."
                ))
            })?;
            let k = k.trim();
            if k.is_empty() {
                return Err(Error::Usage(format!("\"{a}\" names no setting.")));
            }
            Ok((k.to_string(), policy_value(k, v)?))
        })
        .collect()
}

/// A user's own overrides, from the answer of `GET /users/{u}/policy`, as the map a `PUT`
/// takes (the wire form of a policy request is a map of settings; `api::policy` parses it).
pub fn current_overrides(policy: &UserPolicy) -> Map<String, Value> {
    let mut all = as_map(&policy.policy);
    policy
        .overridden
        .iter()
        .map(|k| (k.clone(), all.remove(k).unwrap_or(Value::Null)))
        .collect()
}

/// A policy's settings as the map a `PUT` takes.
fn as_map(policy: &Policy) -> Map<String, Value> {
    match serde_json::to_value(policy) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// `/users/{user}/policy`, or the defaults' path when there is no user.
pub(super) fn policy_path(user: Option<&str>) -> String {
    match user {
        Some(u) => api_path(&["users", u, "policy"]),
        None => api_path(&["policies", "default"]),
    }
}

/// Runs `admin policy show|set`.
pub(super) async fn policy(c: &Client, cmd: PolicyCmd) -> Result<()> {
    match cmd {
        PolicyCmd::Show {
            user,
            default,
            json,
        } => match (user, default) {
            (Some(u), false) => {
                let p: UserPolicy = c.get(&policy_path(Some(&u))).await?;
                print_policy(&p.policy, Some(&p.overridden), &p, json);
            }
            (None, true) => {
                let p: Policy = c.get(&policy_path(None)).await?;
                print_policy(&p, None, &p, json);
            }
            (Some(_), true) => {
                return Err(Error::Usage("Give a user or --default, not both.".into()))
            }
            (None, false) => return Err(Error::Usage("Give a user, or --default.".into())),
        },
        PolicyCmd::Set {
            default,
            args,
            json,
        } => {
            let (user, settings) = if default {
                (None, &args[..])
            } else {
                (Some(args[0].as_str()), &args[1..])
            };
            let settings = parse_settings(settings)?;
            let path = policy_path(user);
            let mut body = match user {
                Some(_) => current_overrides(&c.get::<UserPolicy>(&path).await?),
                None => as_map(&c.get::<Policy>(&path).await?),
            };
            for (k, v) in settings {
                match v {
                    Some(v) => {
                        body.insert(k, v);
                    }
                    None if user.is_some() => {
                        body.remove(&k);
                    }
                    None => {
                        return Err(Error::Usage(format!(
                            "{k}=default means \"use the default\", which only a user's policy can; give a value."
                        )))
                    }
                }
            }
            // The answer is the policy as it now is.
            if user.is_some() {
                let p: UserPolicy = c.put(&path, &body).await?;
                print_policy(&p.policy, Some(&p.overridden), &p, json);
            } else {
                let p: Policy = c.put(&path, &body).await?;
                print_policy(&p, None, &p, json);
            }
        }
    }
    Ok(())
}

/// Prints `answer` for scripts, or `policy` as a table (with `own`, a user's own keys).
fn print_policy<T: serde::Serialize>(
    policy: &Policy,
    own: Option<&[String]>,
    answer: &T,
    json: bool,
) {
    if json {
        table::print_json(answer);
    } else {
        print!("{}", policy_table(policy, own).render());
    }
}

/// Each setting of a policy for people, in the order of `api::policy::KEYS`.
pub(super) fn policy_cells(p: &Policy) -> Vec<(&'static str, String)> {
    const UNLIMITED: &str = "unlimited";
    let count = |v: Option<u64>| v.map_or(UNLIMITED.into(), |n| n.to_string());
    let secs = |v: Option<u64>| {
        v.map_or(UNLIMITED.into(), |s| {
            format!("{s} ({})", table::duration(s))
        })
    };
    let bytes = |v: Option<u64>| {
        v.map_or(UNLIMITED.into(), |b| {
            format!("{b} ({})", api::Bytes(b).human())
        })
    };
    let groups = match &p.allowed_node_groups {
        None => UNLIMITED.into(),
        Some(g) if g.is_empty() => "(none)".into(),
        Some(g) => g.join(","),
    };
    vec![
        ("max_concurrent_sessions", count(p.max_concurrent_sessions)),
        ("max_pending_sessions", count(p.max_pending_sessions)),
        (
            "max_total_resources",
            p.max_total_resources
                .map_or(UNLIMITED.into(), |r| r.summary()),
        ),
        ("max_session_lifetime_s", secs(p.max_session_lifetime_s)),
        ("idle_timeout_s", secs(p.idle_timeout_s)),
        ("max_vfolders", count(p.max_vfolders)),
        ("vfolder_quota_bytes", bytes(p.vfolder_quota_bytes)),
        ("allowed_node_groups", groups),
        ("max_processes", count(p.max_processes)),
        (
            "idle_cpu_percent",
            p.idle_cpu_percent
                .map_or("traffic only".into(), |n| format!("{n} %")),
        ),
        ("home_quota_bytes", bytes(p.home_quota_bytes)),
    ]
}

/// `policy show`: every setting with its value, and for a user (`own`: the keys set for
/// them) whether it is their own.
pub fn policy_table(policy: &Policy, own: Option<&[String]>) -> Table {
    let mut t = if own.is_some() {
        Table::new(&["SETTING", "VALUE", "FROM"])
    } else {
        Table::new(&["SETTING", "VALUE"])
    };
    for (k, v) in policy_cells(policy) {
        let mut row = vec![k.to_string(), v];
        if let Some(own) = own {
            let from = if own.iter().any(|o| o == k) {
                "user"
            } else {
                "default"
            };
            row.push(from.into());
        }
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings_parse_into_json() {
        let got = parse_settings(&args(&[
            "max_concurrent_sessions=3",
            "idle_timeout_s=unlimited",
            "max_session_lifetime_s=NULL",
            "max_total_resources=cpu=4,mem=8g",
            "allowed_node_groups=a, b",
            "vfolder_quota_bytes=10g",
            "max_vfolders=default",
            "max_pending_sessions={\"x\":1}",
        ]))
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("max_concurrent_sessions".into(), Some(json!(3))),
                ("idle_timeout_s".into(), Some(Value::Null)),
                ("max_session_lifetime_s".into(), Some(Value::Null)),
                (
                    "max_total_resources".into(),
                    Some(json!({"cpu": "4", "mem": "8g"}))
                ),
                ("allowed_node_groups".into(), Some(json!(["a", "b"]))),
                ("vfolder_quota_bytes".into(), Some(json!("10g"))),
                ("max_vfolders".into(), None),
                ("max_pending_sessions".into(), Some(json!({"x": 1}))),
            ]
        );
        assert_eq!(
            parse_settings(&args(&["allowed_node_groups="])).unwrap()[0].1,
            Some(json!([]))
        );
        assert_eq!(
            parse_settings(&args(&["idle_timeout_s=-1"])).unwrap()[0].1,
            Some(json!("-1"))
        );
        for bad in [
            &["noequals"][..],
            &["=3"],
            &["max_total_resources=cpu"],
            &[],
        ] {
            let e = parse_settings(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn overrides_come_from_the_overridden_keys() {
        let p = json!({"max_concurrent_sessions": 3, "idle_timeout_s": null, "max_vfolders": 5,
            "overridden": ["max_concurrent_sessions", "idle_timeout_s"]});
        let m = current_overrides(&serde_json::from_value(p).unwrap());
        assert_eq!(
            Value::Object(m),
            json!({"max_concurrent_sessions": 3, "idle_timeout_s": null})
        );
    }

    #[test]
    fn policy_tables_mark_the_users_own_values() {
        let p = json!({"max_concurrent_sessions": 3, "max_pending_sessions": null,
            "max_total_resources": {"cpu": "4", "mem": 8589934592u64, "gpu": 0, "gpu_shares": "0"},
            "max_session_lifetime_s": 3600, "idle_timeout_s": null, "max_vfolders": null,
            "vfolder_quota_bytes": 1073741824, "allowed_node_groups": ["a", "b"],
            "overridden": ["max_concurrent_sessions"]});
        let p: UserPolicy = serde_json::from_value(p).unwrap();
        let out = policy_table(&p.policy, Some(&p.overridden)).render();
        assert!(out.starts_with("SETTING "), "{out}");
        assert!(out.contains("max_concurrent_sessions  3"), "{out}");
        assert!(out.contains("4 CPU, 8 GiB"), "{out}");
        assert!(out.contains("3600 (1h)"), "{out}");
        assert!(out.contains("1073741824 (1 GiB)"), "{out}");
        assert!(out.contains("a,b"), "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("max_concurrent_sessions"))
            .unwrap();
        assert!(line.ends_with("user"), "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("idle_timeout_s"))
            .unwrap();
        assert!(
            line.contains("unlimited") && line.ends_with("default"),
            "{out}"
        );
        assert!(!policy_table(&p.policy, None).render().contains("FROM"));
    }
}
