//! Start-up against a database that cannot be used: a sentence naming it, a non-zero exit,
//! no panic, no password.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `berth serve` with `--database-url url` on a fresh data dir; its exit status and
/// standard error. It must stop by itself, well within the deadline.
fn serve_with(url: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", url])
        .env("BERTH_CONSOLE_DIR", dir.path().join("no-console"))
        .env_remove("BERTH_DATABASE_URL")
        .env_remove("BERTH_TEST_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start berth");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth serve --database-url {url} did not stop within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_unreachable_or_wrong_database_url_stops_start_up_with_a_sentence() {
    // Nothing listens on port 1 of loopback.
    let (status, err) = serve_with("postgres://berth:pw-not-shown@127.0.0.1:1/berth");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot connect to the database postgres://127.0.0.1:1/berth: "),
        "{err}"
    );
    assert!(!err.contains("pw-not-shown"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let (status, err) = serve_with("mysql://berth:pw-not-shown@db.example/berth");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("the database URL mysql://db.example:5432/berth is not a postgres:// URL"),
        "{err}"
    );
    assert!(!err.contains("pw-not-shown"), "{err}");
}
