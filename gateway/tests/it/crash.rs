//! kill -9 at any moment loses no launch: sessions are launched and others terminated, the
//! real `berth` binary is SIGKILLed at a random point 0–600 ms later and restarted on the same
//! data dir, again and again. Every launch must reach RUNNING (or the TERMINATED/CANCELLED
//! its termination asked for), never ERROR; no container of this instance may be left without
//! a live session; no session may ever have two containers.
//!
//! The randomness is seeded and the seed printed: `BERTH_CRASH_SEED=N` replays a run.

use crate::common::{docker_ok, small_session, wait_status, Client, TestApp, USER_PASSWORD};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Kill-and-restart rounds; each launches three sessions and terminates up to two.
const ROUNDS: usize = 10;
/// The longest wait between the last request of a round and the kill.
const MAX_KILL_AFTER_MS: u64 = 600;
/// Launches left running at once (0.1 CPU each).
const MAX_OPEN: usize = 15;
const SETTLE: Duration = Duration::from_secs(90);

/// A small seeded generator (splitmix64): enough to vary kill points reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// `(container id, session label, state)` of every container of the instance.
pub(crate) fn containers(app: &TestApp) -> Vec<(String, String, String)> {
    docker_ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("label=berth.instance={}", app.instance),
        "--format",
        "{{.ID}} {{.Label \"berth.session\"}} {{.State}}",
    ])
    .lines()
    .filter_map(|l| {
        let mut parts = l.split_whitespace();
        Some((
            parts.next()?.to_string(),
            parts.next()?.to_string(),
            parts.next().unwrap_or_default().to_string(),
        ))
    })
    .collect()
}

/// No session has two containers.
#[track_caller]
fn assert_one_container_per_session(app: &TestApp, when: &str) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (id, session, _) in containers(app) {
        if let Some(other) = seen.insert(session.clone(), id.clone()) {
            panic!("{when}: session {session} has two containers, {other} and {id}");
        }
    }
}

/// Waits until the session has ended as its termination asked (never ERROR).
async fn wait_ended(client: &Client, id: &str) -> Value {
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = client.session(id).await;
        match s["status"].as_str().unwrap_or("") {
            "TERMINATED" | "CANCELLED" => return s,
            "ERROR" => panic!("session {id} was terminated but ended in ERROR: {s}"),
            now => assert!(
                Instant::now() < deadline,
                "session {id} is still {now} ({}), waited for its termination",
                s["status_reason"]
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn kill_nine_at_any_moment_loses_no_launch() {
    let seed = std::env::var("BERTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash test seed: {seed} (replay with BERTH_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let mut app = TestApp::spawn().await;
    app.create_user("alice", USER_PASSWORD, "user").await;
    // Session id → whether a termination was asked for it.
    let mut launched: Vec<(String, bool)> = Vec::new();
    for round in 0..ROUNDS {
        let alice = app.login("alice", USER_PASSWORD).await;
        // Terminate up to two earlier launches, whatever state they are in by now.
        let open: Vec<usize> = (0..launched.len()).filter(|&i| !launched[i].1).collect();
        // At most MAX_OPEN are left open, so every launch fits on a 2-core node at once.
        let must = (open.len() + 3).saturating_sub(MAX_OPEN);
        let ends = must + if round == 0 { 0 } else { rng.upto(2) as usize };
        let mut ended = BTreeSet::new();
        while ended.len() < ends.min(open.len()) {
            ended.insert(open[rng.upto(open.len() as u64 - 1) as usize]);
        }
        for &i in &ended {
            let r = alice
                .delete(&format!("/api/v1/sessions/{}", launched[i].0))
                .await;
            assert_eq!(r.status, 200, "terminating: {}", r.text());
            launched[i].1 = true;
        }
        for n in 0..3 {
            let s = alice
                .create_session(small_session(&format!("r{round}-s{n}")))
                .await;
            launched.push((s["id"].as_str().expect("id").to_string(), false));
        }
        let after = rng.upto(MAX_KILL_AFTER_MS);
        tokio::time::sleep(Duration::from_millis(after)).await;
        app.kill();
        eprintln!(
            "round {round}: terminated {} and launched 3, killed {after} ms later",
            ended.len()
        );
        assert_one_container_per_session(&app, &format!("after the kill of round {round}"));
        app.restart().await;
    }

    // What the restarts found, for whoever reads a failure (or a pass).
    let log = app.log();
    for what in [
        "preparing again",
        "adopting",
        "old container",
        "found running",
    ] {
        eprintln!("gateway log: {what}: {}", log.matches(what).count());
    }
    let alice = app.login("alice", USER_PASSWORD).await;
    let mut running: BTreeMap<String, String> = BTreeMap::new();
    for (id, terminated) in &launched {
        if *terminated {
            wait_ended(&alice, id).await;
        } else {
            let s = wait_status(&alice, id, "RUNNING", SETTLE).await;
            let cid = s["container_id"]
                .as_str()
                .expect("container_id")
                .to_string();
            running.insert(id.clone(), cid);
        }
    }
    for (id, _) in &launched {
        let history = alice.history(id).await;
        assert!(
            history.iter().all(|h| h["status"] != "ERROR"),
            "session {id} passed through ERROR: {history:?}"
        );
    }

    // Docker agrees: exactly one running container per RUNNING session, the one recorded,
    // and nothing else of this instance.
    let found = containers(&app);
    let mut by_session: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (cid, session, state) in found {
        by_session.entry(session).or_default().push((cid, state));
    }
    for (session, cs) in &by_session {
        let Some(cid) = running.get(session) else {
            panic!("orphan container(s) {cs:?} of session {session}, which is not running");
        };
        assert_eq!(cs.len(), 1, "session {session} has containers {cs:?}");
        assert_eq!(&cs[0].0, cid, "session {session} records another container");
        assert_eq!(cs[0].1, "running", "session {session}'s container");
    }
    for (session, cid) in &running {
        assert!(
            by_session.contains_key(session),
            "RUNNING session {session} has no container (recorded {cid})"
        );
    }
}
