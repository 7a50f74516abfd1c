//! The network session containers join on each engine, and the firewall that keeps them apart.
//!
//! Every engine gets one bridge network, [`NETWORK`], created once with inter-container
//! traffic off (`com.docker.network.bridge.enable_icc=false`): Docker then drops traffic
//! between two containers of the bridge, and its isolation chains drop traffic between it and
//! every other bridge of the engine. Outbound traffic is masqueraded as Docker gives it, and
//! the proxy keeps reaching containers through ports published on the node's 127.0.0.1.
//!
//! One network per engine, not per session, keeps launch at one container create (a network
//! per session costs a create and a remove each time). Several berth instances (and parallel
//! tests) share it: creating is idempotent and race-safe (a duplicate made by a concurrent
//! creator is resolved to the lowest id, the others removed while empty), and berth never
//! removes it.
//!
//! Docker enforces ICC-off only where it manages iptables. Where the bridge is visible in the
//! gateway's network namespace (an engine on this host), berth checks Docker's drop rule and
//! says so in the node's state when it is missing, and installs one rule of its own: nothing
//! from the bridge reaches this host's services (INPUT dropped but for replies), so a session
//! cannot dial the gateway or anything listening on the host through the bridge's gateway
//! address or the host's own addresses.

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptionsBuilder;
use bollard::Docker;
use std::collections::HashMap;
use std::process::Command;

/// The sessions' network on every engine.
pub const NETWORK: &str = "berth-sessions";
const ICC: &str = "com.docker.network.bridge.enable_icc";
/// The comment on berth's INPUT rule (how an admin finds it).
pub const RULE_COMMENT: &str = "berth: sessions do not reach this host";

/// The sessions' network of one engine.
#[derive(Debug, Clone)]
pub struct SessionNetwork {
    pub id: String,
    /// The Linux bridge behind it (`br-` and the id's first 12 characters unless named).
    pub bridge: String,
}

fn docker_error(what: &str, e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            format!("Docker could not {what}: {}", message.trim())
        }
        other => format!("Docker could not {what}: {other}"),
    }
}

/// The networks named exactly `name` (the name filter matches substrings), by id.
async fn named(docker: &Docker, name: &str) -> Result<Vec<bollard::models::Network>, String> {
    let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
    let opts = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut list: Vec<_> = docker
        .list_networks(Some(opts))
        .await
        .map_err(|e| docker_error("list networks", e))?
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name))
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(list)
}

/// Finds or creates the sessions' network of an engine. Refuses a network of that name that
/// lets containers reach each other (made by hand, or by something else).
pub async fn ensure(docker: &Docker) -> Result<SessionNetwork, String> {
    ensure_named(docker, NETWORK).await
}

/// [`ensure`] for a network of any name (tests race it on a name of their own).
pub async fn ensure_named(docker: &Docker, name: &str) -> Result<SessionNetwork, String> {
    let mut list = named(docker, name).await?;
    if list.is_empty() {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            options: Some(HashMap::from([(ICC.to_string(), "false".to_string())])),
            labels: Some(HashMap::from([(
                "berth.network".to_string(),
                "sessions".to_string(),
            )])),
            ..Default::default()
        };
        // A concurrent creator may win (409 where the engine checks names) or make a
        // duplicate (where it does not): both are resolved below.
        if let Err(e) = docker.create_network(req).await {
            if !matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 409,
                    ..
                }
            ) {
                return Err(docker_error(&format!("create the network {name}"), e));
            }
        }
        list = named(docker, name).await?;
    }
    let Some(first) = list.first().cloned() else {
        return Err(format!(
            "The network {name} disappeared while it was being created."
        ));
    };
    // Duplicates from a race: every creator keeps the lowest id; the others are removed
    // while no container uses them (a refusal means someone does: left alone).
    for dup in list.iter().skip(1) {
        if let Some(id) = &dup.id {
            let _ = docker.remove_network(id).await;
        }
    }
    let options = first.options.clone().unwrap_or_default();
    if options.get(ICC).map(String::as_str) != Some("false") {
        return Err(format!(
            "The Docker network {name} exists but lets containers reach each other; remove it (docker network rm {name}) and berth creates it again with inter-container traffic off."
        ));
    }
    let id = first.id.clone().unwrap_or_default();
    let bridge = options
        .get("com.docker.network.bridge.name")
        .cloned()
        .unwrap_or_else(|| format!("br-{}", &id[..id.len().min(12)]));
    Ok(SessionNetwork { id, bridge })
}

fn iptables(args: &[&str]) -> std::io::Result<std::process::Output> {
    // -w: wait for the xtables lock Docker also takes.
    Command::new("iptables").arg("-w").args(args).output()
}

/// What berth knows about the isolation of an engine's bridge, from this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firewall {
    /// The bridge is on this host, Docker's inter-container drop rule is there, and berth's
    /// rule keeps sessions off this host's services.
    Enforced,
    /// The bridge is not in the gateway's network namespace (another host, another
    /// namespace): that engine's own firewall is what isolates it.
    NotVisible,
    /// A sentence for the node's state: what does not hold, and what to do.
    Broken(String),
}

/// Installs berth's INPUT rule for `bridge` and checks Docker's inter-container drop for it.
/// Blocking (runs `iptables`): call it from `spawn_blocking`.
pub fn secure_bridge(bridge: &str) -> Firewall {
    if !std::path::Path::new("/sys/class/net").join(bridge).exists() {
        return Firewall::NotVisible;
    }
    let mut broken = Vec::new();
    if let Err(why) = guard_host(bridge) {
        broken.push(format!(
            "Sessions on this node can reach services of its host: berth could not add its firewall rule ({why})."
        ));
    }
    match iptables(&["-S", "FORWARD"]) {
        Ok(o) if o.status.success() => {
            let forward = String::from_utf8_lossy(&o.stdout);
            let icc_drop = format!("-A FORWARD -i {bridge} -o {bridge} -j DROP");
            if !forward.lines().any(|l| l.trim() == icc_drop) {
                broken.push(format!(
                    "Sessions on this node can reach each other: its Docker engine does not manage iptables (started with --iptables=false?), so the network {NETWORK} ({bridge}) does not block traffic between containers."
                ));
            }
        }
        Ok(o) => broken.push(format!(
            "Sessions on this node may reach each other: berth cannot read the firewall ({}).",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => broken.push(format!(
            "Sessions on this node may reach each other: berth cannot run iptables ({e})."
        )),
    }
    if broken.is_empty() {
        Firewall::Enforced
    } else {
        Firewall::Broken(broken.join(" "))
    }
}

/// Drops new connections from `bridge` to this host (replies to the host's own connections,
/// such as the proxy's through published ports, pass). Idempotent: checked before inserted;
/// two instances inserting at once leave a harmless duplicate.
fn guard_host(bridge: &str) -> Result<(), String> {
    let rule = [
        "INPUT",
        "-i",
        bridge,
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-m",
        "comment",
        "--comment",
        RULE_COMMENT,
        "-j",
        "DROP",
    ];
    let present = iptables(&[&["-C"][..], &rule[..]].concat())
        .map(|o| o.status.success())
        .unwrap_or(false);
    if present {
        return Ok(());
    }
    match iptables(&[&["-I"][..], &rule[..]].concat()) {
        Ok(o) if o.status.success() => {
            tracing::info!(
                bridge,
                "sessions on {bridge} cannot reach this host's services"
            );
            Ok(())
        }
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}
