//! `TestApp`: the real `berth serve` binary as a child process on its own data dir and a
//! port the kernel picked, with typed helpers for the API, Docker and problem+json.
//!
//! Every `TestApp` is its own berth instance (its own `berth.instance` id), so tests run in
//! parallel on one Docker engine; on drop it kills its gateway and removes exactly the
//! containers carrying its instance label, never anybody else's.
//!
//! With `BERTH_TEST_DATABASE_URL` naming a PostgreSQL server (as `scripts/test.sh` sets it for
//! the PostgreSQL pass), every `TestApp` runs on a fresh database of its own on that server,
//! created at spawn and dropped on drop; without it, on SQLite in its data dir.

use reqwest::header::{HeaderMap, CONTENT_TYPE, SET_COOKIE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// The password every user made by [`TestApp::user`] gets.
pub const USER_PASSWORD: &str = "user-password-for-tests";
pub const IMAGE: &str = "berth/base";
/// How long a gateway may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestApp {
    /// Holds the data dir and the gateway's log; removed on drop.
    root: tempfile::TempDir,
    child: Option<Child>,
    pub addr: SocketAddr,
    /// `http://ADDR`, the console's own origin.
    pub base: String,
    /// This data dir's `berth.instance` label value.
    pub instance: String,
    /// The PostgreSQL database this instance runs on, when the suite runs on PostgreSQL.
    pg: Option<PgDatabase>,
}

/// A throwaway database on the server `BERTH_TEST_DATABASE_URL` names.
struct PgDatabase {
    /// The server's URL (its maintenance database), to drop this one from.
    server: String,
    name: String,
    /// The URL berth connects to.
    url: String,
}

impl PgDatabase {
    /// Creates a fresh database when the suite runs on PostgreSQL.
    async fn create() -> Option<PgDatabase> {
        use sqlx::Connection;
        let server = std::env::var("BERTH_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let name = format!("berth_it_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .expect("connect to BERTH_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&server).expect("BERTH_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Some(PgDatabase {
            server,
            name,
            url: url.to_string(),
        })
    }

    /// Drops the database (after its gateway was killed), on a runtime of its own: `Drop`
    /// runs outside async code.
    fn drop_now(&self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            })
        })
        .join();
    }
}

impl TestApp {
    /// Starts `berth serve` on a fresh data dir and waits until it listens.
    pub async fn spawn() -> TestApp {
        Self::spawn_with_config("").await
    }

    /// Like [`TestApp::spawn`], with `berth.toml` in the data dir holding `toml`.
    pub async fn spawn_with_config(toml: &str) -> TestApp {
        let root = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(root.path().join("data")).expect("data dir");
        std::fs::write(root.path().join("data/berth.toml"), toml).expect("berth.toml");
        let pg = PgDatabase::create().await;
        let db_url = pg.as_ref().map(|p| p.url.clone());
        let (child, addr) = start_gateway(root.path(), db_url.as_deref()).await;
        let instance = read_instance_id(&root.path().join("data"), db_url.as_deref()).await;
        TestApp {
            root,
            child: Some(child),
            base: format!("http://{addr}"),
            addr,
            instance,
            pg,
        }
    }

    /// The PostgreSQL database this instance runs on; `None` on SQLite in its data dir.
    pub fn database_url(&self) -> Option<String> {
        self.pg.as_ref().map(|p| p.url.clone())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The gateway's process id, while it runs.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("gateway running").id()
    }

    /// SIGKILLs the gateway (no graceful shutdown); the data dir and containers stay.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the gateway the signal `name` (`TERM`, `INT`, …), as an operator would.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -s {name} {}", self.pid());
    }

    /// Waits at most `timeout` for the gateway to exit; its exit status, or `None` while it
    /// still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().expect("wait for the gateway") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a new gateway on the same data dir (after [`TestApp::kill`]). The address
    /// changes: make new clients.
    pub async fn restart(&mut self) {
        self.kill();
        let db_url = self.database_url();
        let (child, addr) = start_gateway(self.root.path(), db_url.as_deref()).await;
        self.child = Some(child);
        self.addr = addr;
        self.base = format!("http://{addr}");
        let instance = read_instance_id(&self.data_dir(), db_url.as_deref()).await;
        assert_eq!(
            instance, self.instance,
            "the instance id must survive a restart"
        );
    }

    /// A client without a login.
    pub fn anon(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                // Below the gateway's idle close (its header timeout), as the CLI does.
                .pool_idle_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            base: self.base.clone(),
            token: None,
        }
    }

    /// The raw login call.
    pub async fn try_login(&self, client: &Client, user: &str, pw: &str) -> Reply {
        client
            .post(
                "/api/v1/auth/login",
                &json!({"username": user, "password": pw}),
            )
            .await
    }

    /// Logs in (panicking if it fails) and returns a client carrying the cookie.
    pub async fn login(&self, user: &str, pw: &str) -> Client {
        self.login_at(&self.base.clone(), user, pw).await
    }

    /// Logs in through the gateway at `base` (a replica, a proxy in front).
    pub async fn login_at(&self, base: &str, user: &str, pw: &str) -> Client {
        let mut c = self.anon();
        c.base = base.to_string();
        let r = self.try_login(&c, user, pw).await;
        r.expect::<api::auth::User>(200);
        c.token = Some(
            session_cookie(&r.headers)
                .expect("login sets the berth_session cookie")
                .0,
        );
        c
    }

    pub async fn admin(&self) -> Client {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user through `POST /api/v1/users` as the admin; returns the user JSON.
    pub async fn create_user(&self, name: &str, pw: &str, role: &str) -> Value {
        let admin = self.admin().await;
        admin
            .post(
                "/api/v1/users",
                &json!({"username": name, "password": pw, "role": role}),
            )
            .await
            .expect_json_as::<api::auth::User>(201)
    }

    /// A new plain user, logged in.
    pub async fn user(&self, name: &str) -> Client {
        self.create_user(name, USER_PASSWORD, "user").await;
        self.login(name, USER_PASSWORD).await
    }

    /// Sets `user`'s policy keys (`policy`, a JSON object) as the admin, asserting 200.
    pub async fn set_policy(&self, user: &str, policy: Value) {
        self.admin()
            .await
            .put(&format!("/api/v1/users/{user}/policy"), &policy)
            .await
            .expect::<api::policy::UserPolicy>(200);
    }

    /// Ids of all containers (running or not) of this instance.
    pub fn instance_containers(&self) -> Vec<String> {
        containers_labelled(&format!("berth.instance={}", self.instance))
    }

    /// The gateway's log so far (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("gateway.log")).unwrap_or_default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
        // Twice: a create the killed gateway had in flight may land just after the first
        // listing (tests end their sessions with `end_session` to avoid relying on it).
        for _ in 0..2 {
            let ids = self.instance_containers();
            if !ids.is_empty() {
                let mut cmd = Command::new("docker");
                cmd.args(["rm", "-f", "-v"]).args(&ids);
                let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
        }
        if let Some(pg) = &self.pg {
            pg.drop_now();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- gateway log (last lines) ----");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Another `berth serve` of a [`TestApp`] on PostgreSQL: the same database and data dir, its
/// own address; its log goes to the same file. Killed on drop (before the `TestApp`'s
/// clean-up, when declared after it).
pub struct Replica {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// `http://ADDR`.
    pub base: String,
    root: PathBuf,
    url: String,
}

impl TestApp {
    /// Starts a replica of this instance; `None` on SQLite, which serves one process.
    pub async fn start_replica(&self) -> Option<Replica> {
        let url = self.database_url()?;
        let (child, addr) = start_gateway(self.root.path(), Some(&url)).await;
        Some(Replica {
            child: Some(child),
            base: format!("http://{addr}"),
            addr,
            root: self.root.path().to_path_buf(),
            url,
        })
    }
}

impl Replica {
    /// The replica's process id, while it runs.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("replica running").id()
    }

    /// SIGKILLs the replica.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (after [`Replica::kill`]); the address changes.
    pub async fn restart(&mut self) {
        self.kill();
        let (child, addr) = start_gateway(&self.root, Some(&self.url)).await;
        self.child = Some(child);
        self.addr = addr;
        self.base = format!("http://{addr}");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `berth serve` on `root/data`, logging to `root/gateway.log`, and reads its stdout
/// until it says where it listens.
async fn start_gateway(root: &Path, database_url: Option<&str>) -> (Child, SocketAddr) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("gateway.log"))
        .expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    match database_url {
        Some(url) => cmd.env("BERTH_DATABASE_URL", url),
        None => cmd.env_remove("BERTH_DATABASE_URL"),
    };
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("data"))
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_CONSOLE_DIR", root.join("no-console"))
        .env("BERTH_LOG", "info,sqlx=warn,tower_http=warn")
        .env_remove("BERTH_PUBLIC_URL")
        .env_remove("BERTH_LISTEN")
        .env_remove("BERTH_DATA_DIR")
        .env_remove("BERTH_TEST_DATABASE_URL")
        .env_remove("BERTH_DOCKER_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start the berth binary");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    // Reads the address, then keeps draining stdout so the child never blocks on it.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("berth: listening on http://") {
                let addr = rest.split_whitespace().next().unwrap_or("");
                if let (Some(tx), Ok(addr)) = (tx.take(), addr.parse()) {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    match tokio::time::timeout(START_TIMEOUT, rx).await {
        Ok(Ok(addr)) => (child, addr),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(root.join("gateway.log")).unwrap_or_default();
            panic!("berth did not say where it listens within {START_TIMEOUT:?}; its log:\n{log}");
        }
    }
}

async fn read_instance_id(data_dir: &Path, database_url: Option<&str>) -> String {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::Connection;
    if let Some(url) = database_url {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to the test database");
        let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'instance_id'")
            .fetch_one(&mut conn)
            .await
            .expect("instance_id in meta");
        let _ = conn.close().await;
        return id;
    }
    let opts = SqliteConnectOptions::new()
        .filename(data_dir.join("berth.db"))
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .expect("open berth.db");
    let (id,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = 'instance_id'")
        .fetch_one(&mut conn)
        .await
        .expect("instance_id in meta");
    let _ = conn.close().await;
    id
}

/// `(token, whole Set-Cookie value)` of the `berth_session` cookie a response sets.
pub fn session_cookie(headers: &HeaderMap) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?.trim();
            let token = first.strip_prefix("berth_session=")?;
            Some((token.to_string(), v.to_string()))
        })
}

/// The `name=value` of a response's first `Set-Cookie` (an app login's cookie, say).
#[track_caller]
pub fn set_cookie_pair(r: &reqwest::Response) -> String {
    let set = r.headers()[SET_COOKIE]
        .to_str()
        .expect("a Set-Cookie header");
    set.split(';').next().unwrap_or_default().to_string()
}

/// A logged-in (or anonymous) API client bound to one gateway address.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    /// The `berth_session` token, when logged in.
    pub token: Option<String>,
}

/// A whole response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    async fn read(r: reqwest::Response) -> Reply {
        Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.expect("response body").to_vec(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the status and decodes the body into the api type `T` strictly (see
    /// [`decode_strict`]): what the server sent must be exactly a `T`.
    #[track_caller]
    pub fn expect<T: DeserializeOwned + Serialize>(&self, status: u16) -> T {
        self.expect_json(status);
        decode_strict(&self.body)
    }

    /// Like [`Reply::expect_json`], and checks that the body is exactly a `T` on the way: for
    /// helpers whose callers read the JSON.
    #[track_caller]
    pub fn expect_json_as<T: DeserializeOwned + Serialize>(&self, status: u16) -> Value {
        let v = self.expect_json(status);
        decode_strict::<T>(&self.body);
        v
    }

    /// Asserts an `application/problem+json` answer with `status` and decodes it strictly
    /// into [`api::Problem`].
    #[track_caller]
    pub fn problem(&self, status: u16) -> api::Problem {
        assert_eq!(
            (self.status, self.content_type()),
            (status, "application/problem+json"),
            "expected a {status} problem: {}",
            self.text()
        );
        decode_strict(&self.body)
    }

    /// Asserts the status and returns the body as JSON.
    #[track_caller]
    pub fn expect_json(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected HTTP {status}, got {}: {}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Decodes `body` into the api type `T` and checks that encoding the decoded value gives back
/// the same JSON: a field the type lacks (or one it adds, or spells differently) fails, so the
/// `api` crate stays the whole contract.
#[track_caller]
pub fn decode_strict<T: DeserializeOwned + Serialize>(body: &[u8]) -> T {
    let what = std::any::type_name::<T>();
    let text = String::from_utf8_lossy(body);
    let sent: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}"));
    let typed: T = serde_json::from_value(sent.clone())
        .unwrap_or_else(|e| panic!("the body does not decode as {what} ({e}): {text}"));
    let again = serde_json::to_value(&typed).expect("encode again");
    assert_eq!(
        again, sent,
        "{what} re-encodes differently from what the server sent (left: re-encoded, right: sent)"
    );
    typed
}

impl Client {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `Cookie: berth_session=…` as a header value, for requests made outside this client.
    pub fn cookie_header(&self) -> String {
        format!(
            "berth_session={}",
            self.token.as_deref().expect("logged in")
        )
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        Reply::read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(self.url(path))).await
    }

    /// POST `body` as JSON: a `json!` value, or an api request type.
    pub async fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Reply {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// PATCH `body` as JSON.
    pub async fn patch<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Reply {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    /// PUT `body` as JSON.
    pub async fn put<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Reply {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    /// POST with a raw body and content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .header(CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }

    /// Creates a session, asserting 201; returns its JSON.
    #[track_caller]
    pub fn create_session(&self, body: Value) -> impl std::future::Future<Output = Value> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let r = self.post("/api/v1/sessions", &body).await;
            assert_eq!(
                r.status,
                201,
                "{caller}: creating a session gave {}: {}",
                r.status,
                r.text()
            );
            r.expect_json_as::<api::session::Session>(201)
        }
    }

    pub async fn session(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/sessions/{id}"))
            .await
            .expect_json_as::<api::session::Session>(200)
    }

    pub async fn sessions(&self) -> Vec<Value> {
        match self
            .get("/api/v1/sessions")
            .await
            .expect_json_as::<Vec<api::session::Session>>(200)
        {
            Value::Array(v) => v,
            other => panic!("the session list is not an array: {other}"),
        }
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        match self
            .get(&format!("/api/v1/sessions/{id}/history"))
            .await
            .expect_json_as::<Vec<api::session::HistoryEntry>>(200)
        {
            Value::Array(v) => v,
            other => panic!("the history is not an array: {other}"),
        }
    }

    /// `POST /terminal` on a session; returns the websocket URL.
    pub async fn terminal_url(&self, id: &str) -> String {
        self.post(&format!("/api/v1/sessions/{id}/terminal"), &json!({}))
            .await
            .expect::<api::session::TerminalUrl>(200)
            .url
    }
}

/// Launches the smallest session with `ports` preopened and waits until it runs; returns its
/// id and container id.
pub async fn running_with_ports(client: &Client, name: &str, ports: &[u16]) -> (String, String) {
    let mut body = small_session(name);
    body["preopen_ports"] = json!(ports);
    let s = client.create_session(body).await;
    let id = s["id"].as_str().expect("session id").to_string();
    let s = wait_status(client, &id, "RUNNING", Duration::from_secs(60)).await;
    let container = s["container_id"]
        .as_str()
        .expect("container id")
        .to_string();
    (id, container)
}

/// Starts a Python program in the background inside `container`, as the `work` user.
pub fn run_python(container: &str, program: &str) {
    docker_ok(&[
        "exec",
        "-d",
        "-u",
        "1000:1000",
        container,
        "python3",
        "-c",
        program,
    ]);
}

/// A Python program for [`run_python`]: a TCP echo server on `0.0.0.0:PORT`, a thread per
/// connection.
pub fn tcp_echo(port: u16) -> String {
    format!(
        r#"
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(65536)
            if not b:
                break
            self.request.sendall(b)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("0.0.0.0", {port}), H).serve_forever()
"#
    )
}

/// Logs in to a session's app through its one-use link, as a browser would: the link is
/// followed on the gateway's address with the app's `Host` (glibc cannot resolve
/// `*.localhost`). Returns a client that does not follow redirects, the app's `Host` and the
/// app cookie (`name=value`).
pub async fn app_login(
    app: &TestApp,
    c: &Client,
    id: &str,
    name: &str,
) -> (reqwest::Client, String, String) {
    let v = c
        .post(&format!("/api/v1/sessions/{id}/apps/{name}"), &json!({}))
        .await
        .expect_json(200);
    let u = reqwest::Url::parse(v["url"].as_str().unwrap()).unwrap();
    let host = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let login = format!("{}{}?{}", app.base, u.path(), u.query().unwrap_or(""));
    let r = http
        .get(login)
        .header(reqwest::header::HOST, &host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the app link logs in");
    assert_eq!(r.headers()[reqwest::header::LOCATION], "/");
    let cookie = set_cookie_pair(&r);
    (http, host, cookie)
}

/// The smallest session the suite launches. Its home is clean: most tests are not about the
/// home and also run on nodes that do not see the folder storage, where a persistent home
/// cannot go (`home.rs` tests the persistent one, the default).
pub fn small_session(name: &str) -> Value {
    json!({"name": name, "image": IMAGE, "resources": {"cpu": "0.1", "mem": "128m"}, "home": "clean"})
}

/// Polls the session every 100 ms until it has `status`. Fails at once if it reaches a
/// different final status, and after `timeout` with the last status and reason.
#[track_caller]
pub fn wait_status<'a>(
    client: &'a Client,
    id: &'a str,
    status: &'a str,
    timeout: Duration,
) -> impl std::future::Future<Output = Value> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let deadline = Instant::now() + timeout;
        loop {
            let s = client.session(id).await;
            let now = s["status"].as_str().unwrap_or("").to_string();
            if now == status {
                return s;
            }
            let is_final = matches!(now.as_str(), "TERMINATED" | "CANCELLED" | "ERROR");
            if is_final || Instant::now() > deadline {
                panic!(
                    "{caller}: session {id} is {now} ({}), waited for {status}",
                    s["status_reason"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Terminates a session and waits until it has ended (TERMINATED or CANCELLED), so no
/// container creation or removal is still in flight when the test's gateway is killed.
#[track_caller]
pub fn end_session<'a>(
    client: &'a Client,
    id: &'a str,
) -> impl std::future::Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let r = client.delete(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(r.status, 200, "{caller}: DELETE {id}: {}", r.text());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = client.session(id).await;
            match s["status"].as_str() {
                Some("TERMINATED" | "CANCELLED") => return,
                Some("ERROR") => panic!("{caller}: session {id} ended in ERROR: {s}"),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "{caller}: session {id} did not end: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Polls `check` every 100 ms until it is true; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_until<'a, F, Fut>(
    what: &'a str,
    timeout: Duration,
    mut check: F,
) -> impl std::future::Future<Output = ()> + 'a
where
    F: FnMut() -> Fut + 'a,
    Fut: std::future::Future<Output = bool> + 'a,
{
    let caller = std::panic::Location::caller();
    async move {
        let deadline = Instant::now() + timeout;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "{caller}: timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Asserts an `application/problem+json` reply with `status` and type
/// `/problems/{type_suffix}`, whose `detail` is a sentence; returns the problem JSON.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: u16, type_suffix: &str) -> Value {
    let kind = format!("/problems/{}", type_suffix.trim_start_matches("/problems/"));
    assert_eq!(
        reply.status,
        status,
        "expected a {status} {kind} problem, got {}: {}",
        reply.status,
        reply.text()
    );
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "a problem must be application/problem+json: {}",
        reply.text()
    );
    let p: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("problem body is not JSON ({e}): {}", reply.text()));
    decode_strict::<api::Problem>(&reply.body);
    assert_eq!(p["type"], kind, "problem type: {p}");
    assert_eq!(p["status"], status, "problem status field: {p}");
    assert!(
        p["title"].as_str().is_some_and(|t| !t.is_empty()),
        "problem title: {p}"
    );
    let detail = p["detail"].as_str().unwrap_or("");
    assert!(
        detail.len() > 3
            && detail.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit() || c == '"')
            && detail.trim_end().ends_with(['.', '!', '?']),
        "problem detail must be a sentence for people, got {detail:?}"
    );
    p
}

/// Asserts a 400 validation problem with an entry in `errors` for `field`.
#[track_caller]
pub fn assert_field_error(reply: &Reply, field: &str) -> Value {
    let p = assert_problem(reply, 400, "validation");
    let errors = p["errors"].as_array().cloned().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "expected an error naming field {field:?}, got {p}"
    );
    p
}

/// Runs `docker ARGS`, returning (success, stdout).
pub fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `docker ARGS`, panicking if it fails; returns stdout.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker inspect ID` as JSON, or `None` if there is no such container.
pub fn inspect(id: &str) -> Option<Value> {
    let (ok, out) = docker(&["container", "inspect", id]);
    if !ok {
        return None;
    }
    let v: Value = serde_json::from_str(&out).ok()?;
    v.as_array()?.first().cloned()
}

pub fn containers_labelled(label: &str) -> Vec<String> {
    docker_ok(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}"),
    ])
    .lines()
    .map(|l| l.trim().to_string())
    .filter(|l| !l.is_empty())
    .collect()
}

/// A container this test started by hand, removed on drop whatever happens.
pub struct ContainerGuard(pub String);

impl ContainerGuard {
    /// `docker run -d` of the base image with `labels`, sleeping forever.
    pub fn run(labels: &[String]) -> ContainerGuard {
        let mut args: Vec<String> = vec!["run".into(), "-d".into()];
        for l in labels {
            args.push("--label".into());
            args.push(l.clone());
        }
        args.extend(["--memory".into(), "32m".into(), IMAGE.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ContainerGuard(docker_ok(&args).trim().to_string())
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// True if `s` is an RFC 3339 time in UTC.
pub fn is_rfc3339_utc(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .is_ok_and(|t| t.offset().is_utc())
}

/// Runs `cmd` with `sh -c`: (success, stdout and stderr).
pub fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A test CA, a server certificate for the address `ip` and a client certificate signed by it, and
/// an unrelated CA, made with the `openssl` CLI in `dir`.
pub fn make_certs(dir: &std::path::Path, ip: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca-key.pem
openssl req -x509 -new -key ca-key.pem -days 2 -subj /CN=berth-test-ca -out ca.pem
key other-ca-key.pem
openssl req -x509 -new -key other-ca-key.pem -days 2 -subj /CN=berth-other-ca -out other-ca.pem
for who in server client; do
  key $who-key.pem
  openssl req -new -key $who-key.pem -subj /CN=$who -out $who.csr
done
printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$BERTH_CERT_IP" > server.ext
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' > client.ext
for who in server client; do
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile $who.ext -out $who.pem 2>/dev/null
done
"#;
    let (ok, out) = sh(&format!(
        "cd {} && BERTH_CERT_IP={ip} && {script}",
        dir.display()
    ));
    assert!(ok, "making test certificates: {out}");
}

/// A `dockerd` in a network namespace of its own, with iptables on (its rules are the
/// namespace's, not the host's), reached over a unix socket and, when started with TLS, over
/// TCP with mutual TLS at its own address (`NODE_IP:2376`), as another host would be. The
/// namespace has a veth pair to the host (10.231.N.1 on the host, .2 inside) and routes out
/// through it. Killed, its state and namespace removed on drop, whatever the test did.
pub struct NetnsEngine {
    dir: PathBuf,
    pub ns: String,
    veth: String,
    child: Option<Child>,
    /// The host's end of the veth pair: outside the node, as the world is to it.
    pub host_ip: String,
    /// The namespace's end: the node's own address.
    pub node_ip: String,
    tls: bool,
}

impl NetnsEngine {
    /// Starts it with `images` loaded (from the local engine).
    pub async fn start(tls: bool, images: &[&str]) -> NetnsEngine {
        let pid = std::process::id();
        let n = 10 + pid % 240;
        let dir = PathBuf::from(format!("/tmp/bn4-{pid}"));
        let ns = format!("berth-it-{pid}");
        let veth = format!("bv{pid}");
        let host_ip = format!("10.231.{n}.1");
        // Built before anything can fail, so Drop cleans whatever got made.
        let mut engine = NetnsEngine {
            dir: dir.clone(),
            ns: ns.clone(),
            veth: veth.clone(),
            child: None,
            host_ip: host_ip.clone(),
            node_ip: format!("10.231.{n}.2"),
            tls,
        };
        std::fs::create_dir_all(&dir).unwrap();
        let setup = format!(
            "set -e
ip netns add {ns}
ip link add {veth} type veth peer name {veth}n
ip link set {veth}n netns {ns}
ip addr add {host_ip}/30 dev {veth}
ip link set {veth} up
ip netns exec {ns} ip link set lo up
ip netns exec {ns} ip addr add 10.231.{n}.2/30 dev {veth}n
ip netns exec {ns} ip link set {veth}n up
ip netns exec {ns} ip route add default via {host_ip}"
        );
        let (ok, out) = sh(&setup);
        assert!(ok, "setting up the namespace: {out}");
        let d = dir.display();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let mut tls_args = Vec::new();
        if tls {
            let certs = dir.join("tls");
            make_certs(&certs, &engine.node_ip);
            let c = certs.display();
            tls_args = vec![
                "-H".to_string(),
                format!("tcp://{}:2376", engine.node_ip),
                "--tlsverify".to_string(),
                format!("--tlscacert={c}/ca.pem"),
                format!("--tlscert={c}/server.pem"),
                format!("--tlskey={c}/server-key.pem"),
            ];
        }
        // nsenter switches the network namespace only (`ip netns exec` would also remount
        // /sys, hiding the cgroup hierarchy dockerd needs).
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{ns}"))
            .arg("dockerd")
            .args([
                "--data-root".to_string(),
                format!("{d}/data"),
                "--exec-root".to_string(),
                format!("{d}/x"),
                "--pidfile".to_string(),
                format!("{d}/docker.pid"),
                "-H".to_string(),
                format!("unix://{d}/docker.sock"),
                "--cgroup-parent".to_string(),
                format!("/bn4-{pid}"),
            ])
            .args(&tls_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a dockerd in its namespace");
        engine.child = Some(child);
        wait_until(
            "the namespaced engine to answer",
            Duration::from_secs(60),
            || async { sh(&format!("docker -H {} info >/dev/null 2>&1", engine.url())).0 },
        )
        .await;
        for image in images {
            let (ok, out) = sh(&format!(
                "docker save {image} | docker -H {} load",
                engine.url()
            ));
            assert!(ok, "loading {image} into the namespaced engine: {out}");
        }
        engine
    }

    /// Its unix socket (on this machine's file system).
    pub fn url(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    /// `tcp://NODE_IP:2376`, with mutual TLS.
    pub fn tls_url(&self) -> String {
        assert!(self.tls, "started with TLS");
        format!("tcp://{}:2376", self.node_ip)
    }

    /// The PEM text of one of its generated TLS files (`ca.pem`, `client.pem`, …).
    pub fn pem(&self, file: &str) -> String {
        std::fs::read_to_string(self.tls_file(file)).expect("a generated PEM file")
    }

    /// The path of one of its generated TLS files.
    pub fn tls_file(&self, file: &str) -> PathBuf {
        self.dir.join("tls").join(file)
    }

    /// A command run inside the node's network namespace (not its mounts).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/var/run/netns/{}", self.ns))
            .arg(program);
        c
    }
}

impl Drop for NetnsEngine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = sh(&format!(
                "docker -H {u} ps -aq | xargs -r docker -H {u} rm -f >/dev/null 2>&1",
                u = self.url()
            ));
            // nsenter execs dockerd in its own process, so this is dockerd.
            let _ = sh(&format!("kill -TERM {}", c.id()));
            let _ = c.wait();
        }
        let _ = sh(&format!(
            "ip link del {} 2>/dev/null; ip netns del {} 2>/dev/null",
            self.veth, self.ns
        ));
        let _ = sh(&format!(
            "umount -R {d}/x 2>/dev/null; umount -R {d}/data 2>/dev/null; rm -rf {d}",
            d = self.dir.display()
        ));
    }
}
