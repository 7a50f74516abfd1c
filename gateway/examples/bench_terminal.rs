//! Terminal throughput: the same command's output streamed through berth's terminal
//! websocket and through `docker exec -t` directly, in the same run, on the same container.
//!
//! Run: `scripts/bench-terminal.sh [MB]` (builds `berth` and this example in release) (Docker and the
//! `berth/base` image must be there; `scripts/setup.sh` or `scripts/test.sh` installs them).
//! Prints both rates and their ratio.

use futures_util::{SinkExt, StreamExt};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

const MARK: &str = "BENCH-DONE";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let raw = mb * 1_000_000;
    let cmd = format!(
        "head -c {raw} /dev/zero | base64 -w 76; echo {}-$((1+1))",
        MARK
    );
    let data = tempfile::tempdir()?;
    // The berth binary built beside this example (target/<profile>/berth), or BERTH_BIN.
    let bin = match std::env::var_os("BERTH_BIN") {
        Some(b) => std::path::PathBuf::from(b),
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("berth"))
            .ok_or_else(|| anyhow::anyhow!("cannot locate the berth binary; set BERTH_BIN"))?,
    };
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("BERTH_ADMIN_PASSWORD", "bench-password")
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .ok_or_else(|| anyhow::anyhow!("berth exited"))??;
        if let Some(rest) = line.strip_prefix("berth: listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    let result = run(&base, &cmd, raw).await;
    let _ = child.kill();
    let _ = child.wait();
    if let Ok(sid) = &result {
        let _ = Command::new("docker")
            .args(["rm", "-f", &format!("berth-{sid}")])
            .output();
    }
    result.map(|_| ())
}

async fn run(base: &str, cmd: &str, raw: u64) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    http.post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": "bench-password"}))
        .send()
        .await?
        .error_for_status()?;
    let s: serde_json::Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"image": "berth/base", "name": "bench", "resources": {"cpu": "1", "mem": "512m"}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let sid = s["id"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let container = loop {
        let s: serde_json::Value = http
            .get(format!("{base}/api/v1/sessions/{sid}"))
            .send()
            .await?
            .json()
            .await?;
        if s["status"] == "RUNNING" {
            break s["container_id"].as_str().unwrap_or_default().to_string();
        }
        anyhow::ensure!(Instant::now() < deadline, "session never ran: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expected = raw.div_ceil(3) * 4 + raw.div_ceil(57); // base64 text and its newlines

    let mut rates = Vec::new();
    for round in 0..2 {
        // Through berth: terminal websocket.
        let t: serde_json::Value = http
            .post(format!("{base}/api/v1/sessions/{sid}/terminal"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let (mut ws, _) =
            tokio_tungstenite::connect_async(t["url"].as_str().unwrap_or_default()).await?;
        ws.send(Message::Text(
            r#"{"type":"resize","cols":200,"rows":50}"#.into(),
        ))
        .await?;
        ws.send(Message::Binary(
            format!("stty -echo; {cmd}\r").into_bytes().into(),
        ))
        .await?;
        let mark = format!("{MARK}-2");
        let mut tail: Vec<u8> = Vec::new();
        let mut bytes = 0u64;
        let mut start = None;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(120), ws.next()).await?;
            let Some(msg) = msg else {
                anyhow::bail!("terminal closed early")
            };
            if let Message::Binary(b) = msg? {
                start.get_or_insert_with(Instant::now);
                bytes += b.len() as u64;
                tail.extend_from_slice(&b);
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 4096);
                }
                if String::from_utf8_lossy(&tail).contains(&mark) {
                    break;
                }
            }
        }
        let berth_secs = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(1.0);
        let _ = ws.close(None).await;

        // Direct: docker exec -t on the same container.
        let start = Instant::now();
        let mut direct = tokio::process::Command::new("docker")
            .args(["exec", "-t", "-u", "1000:1000", &container, "sh", "-c", cmd])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = direct.stdout.take().expect("piped");
        let mut buf = vec![0u8; 1 << 16];
        let mut direct_bytes = 0u64;
        loop {
            let n = out.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            direct_bytes += n as u64;
        }
        direct.wait().await?;
        let direct_secs = start.elapsed().as_secs_f64();
        let b = bytes as f64 / berth_secs / 1e6;
        let d = direct_bytes as f64 / direct_secs / 1e6;
        println!(
            "round {round}: berth terminal websocket {:.1} MB in {berth_secs:.2} s = {b:.1} MB/s | docker exec -t {:.1} MB in {direct_secs:.2} s = {d:.1} MB/s | ratio {:.2}",
            bytes as f64 / 1e6,
            direct_bytes as f64 / 1e6,
            b / d
        );
        anyhow::ensure!(
            bytes >= expected,
            "berth streamed {bytes} bytes, expected at least {expected}"
        );
        rates.push((b, d));
    }
    let (b, d) = rates
        .iter()
        .fold((0.0, 0.0), |acc, r| (acc.0 + r.0, acc.1 + r.1));
    println!(
        "mean: berth {:.1} MB/s, docker exec -t {:.1} MB/s, ratio {:.2}",
        b / rates.len() as f64,
        d / rates.len() as f64,
        b / d
    );
    Ok(sid)
}
