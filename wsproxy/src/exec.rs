//! TTY execs done by hand: bollard creates and resizes them, but its TTY decoder mistakes
//! output bytes 0x00–0x02 for multiplex headers, so the start/attach upgrade is done here
//! on the raw socket (`POST /exec/{id}/start` with `Upgrade: tcp`, then raw bytes).

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How to reach a node's Docker engine for execs.
#[derive(Clone)]
pub struct ExecEndpoint {
    pub docker: Docker,
    pub socket: PathBuf,
}

/// A sequence nobody types; Docker's default (Ctrl-P Ctrl-Q) holds back every Ctrl-P.
const DETACH_KEYS: &str = "ctrl-^,ctrl-],ctrl-^,ctrl-]";

/// A started TTY exec: its id and the raw byte stream (output in, input out).
pub struct TtyExec {
    pub exec_id: String,
    pub stream: UnixStream,
    /// Output bytes that arrived with the upgrade response.
    pub initial: Vec<u8>,
}

fn pid_file(tag: &str) -> String {
    format!("/tmp/.berth-term-{tag}.pid")
}

impl ExecEndpoint {
    /// Starts a login shell (bash, else sh) as `work` on a TTY in `container`. The shell's
    /// PID is recorded so [`ExecEndpoint::hangup`] can end it: Docker cannot kill an exec.
    pub async fn start_shell(&self, container: &str, tag: &str) -> anyhow::Result<TtyExec> {
        let script = format!(
            "echo $$ > {pid}; if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi",
            pid = pid_file(tag)
        );
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    detach_keys: Some(DETACH_KEYS.to_string()),
                    env: Some(vec![
                        "TERM=xterm-256color".to_string(),
                        "LANG=C.UTF-8".to_string(),
                    ]),
                    cmd: Some(vec!["sh".to_string(), "-c".to_string(), script]),
                    user: Some("1000:1000".to_string()),
                    working_dir: Some("/home/work".to_string()),
                    ..Default::default()
                },
            )
            .await?;
        let mut stream = UnixStream::connect(&self.socket).await?;
        let body = r#"{"Detach":false,"Tty":true}"#;
        let req = format!(
            "POST /exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len}\r\n\r\n{body}",
            id = created.id,
            len = body.len()
        );
        stream.write_all(req.as_bytes()).await?;
        // Read the response head; anything after it is already terminal output.
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        let end = loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                anyhow::bail!("Docker closed the exec connection before answering");
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if head.len() > 16 * 1024 {
                anyhow::bail!("Docker sent an oversized response head");
            }
        };
        let status_line =
            String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap_or(0)])
                .to_string();
        if !status_line.contains(" 101 ") {
            anyhow::bail!("Docker refused to attach the exec: {status_line}");
        }
        let initial = head[end..].to_vec();
        Ok(TtyExec {
            exec_id: created.id,
            stream,
            initial,
        })
    }

    pub async fn resize(&self, exec_id: &str, cols: u16, rows: u16) -> anyhow::Result<()> {
        self.docker
            .resize_exec(
                exec_id,
                bollard::exec::ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await?;
        Ok(())
    }

    /// The exit code of an ended exec, if Docker knows it.
    pub async fn exit_code(&self, exec_id: &str) -> Option<i64> {
        for _ in 0..20 {
            match self.docker.inspect_exec(exec_id).await {
                Ok(i) if i.running == Some(false) => return i.exit_code,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                Err(_) => return None,
            }
        }
        None
    }

    /// Hangs up the shell started with `tag` (SIGHUP, as a closing terminal would), by a
    /// side exec; the container's init reaps what is left.
    pub async fn hangup(&self, container: &str, tag: &str) {
        let pid = pid_file(tag);
        let cmd = format!("p=$(cat {pid} 2>/dev/null) && kill -HUP -$p 2>/dev/null; kill -HUP $p 2>/dev/null; rm -f {pid}");
        let res = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["sh".to_string(), "-c".to_string(), cmd]),
                    user: Some("1000:1000".to_string()),
                    ..Default::default()
                },
            )
            .await;
        let Ok(created) = res else { return };
        if let Ok(StartExecResults::Attached { mut output, .. }) =
            self.docker.start_exec(&created.id, None).await
        {
            while output.next().await.is_some() {}
        }
    }
}
