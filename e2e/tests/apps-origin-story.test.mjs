// The apps-origin story: alice has her JupyterLab open. Mallory, another user, serves a page
// from an app of her own session and gets alice to open it (an app link is a plain URL). In
// alice's browser that page's JavaScript tries to drive alice's JupyterLab with alice's app
// cookie: "simple" POSTs (no preflight) to JupyterLab's contents and kernels APIs, and the
// websocket of alice's kernel to run code. berth's proxy refuses all of it before JupyterLab
// sees it, and alice, looking with her own access, finds no new file, no new kernel, no code run.
//
// Apps live under a real-looking wildcard domain (apps.berth.test, mapped to loopback in
// Chromium): Chromium makes every *.localhost host a site of its own and would not send the
// SameSite=Lax app cookie across them, while sibling hosts of a real domain are one site —
// which is what makes the attack possible in a real deployment.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startBerth, launchBrowser, shot, logIn } from "../lib.mjs";

const BASE_DOMAIN = "apps.berth.test";
const PASSWORD = "story-password-1";

let berth, browser;
before(async () => {
  process.env.BERTH_APP_BASE_DOMAIN = BASE_DOMAIN;
  berth = await startBerth();
  browser = await launchBrowser({ args: ["--host-resolver-rules=MAP *.berth.test 127.0.0.1"] });
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

/** Logs in over HTTP; the `Cookie` header value for later calls. */
async function cookieOf(username, password) {
  const r = await fetch(`${berth.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, `login of ${username}`);
  return r.headers.getSetCookie().find((c) => c.startsWith("berth_session=")).split(";")[0];
}

/** One API call as the holder of `cookie`; `{status, json}`. */
async function api(cookie, method, path, body) {
  const r = await fetch(`${berth.url}${path}`, {
    method,
    headers: { cookie, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

/** Creates a session and polls until it runs; its JSON. */
async function running(cookie, body) {
  const created = await api(cookie, "POST", "/api/v1/sessions", body);
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const end = Date.now() + 120000;
  for (;;) {
    const s = (await api(cookie, "GET", `/api/v1/sessions/${created.json.id}`)).json;
    if (s.status === "RUNNING") return s;
    assert.ok(!["ERROR", "TERMINATED", "CANCELLED"].includes(s.status), `${s.status}: ${s.status_reason}`);
    assert.ok(Date.now() < end, `session ${body.name} never ran (${s.status})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Mallory's app: one page whose script attacks TARGET (alice's JupyterLab) and KERNEL.
const TRAP = String.raw`
import http.server, json, sys
TARGET, KERNEL = sys.argv[1], sys.argv[2]
PAGE = """<!doctype html><meta charset=utf-8><title>Cat pictures</title><h1>Cat pictures</h1><script>
const T = %s, KID = %s;
const post = (path, body) => fetch(T + path, {method: "POST", mode: "no-cors", credentials: "include",
  headers: {"Content-Type": "text/plain"}, body: JSON.stringify(body)}).then(() => "sent", (e) => "failed: " + e);
(async () => {
  const out = {};
  out.contents = await post("/api/contents", {type: "file", ext: ".txt"});
  out.kernels = await post("/api/kernels", {name: "python3"});
  out.websocket = await new Promise((resolve) => {
    const ws = new WebSocket(T.replace(/^http/, "ws") + "/api/kernels/" + KID + "/channels");
    ws.onopen = () => ws.send(JSON.stringify({header: {msg_id: "evil-1", username: "m", session: "m",
      msg_type: "execute_request", version: "5.3", date: ""}, parent_header: {}, metadata: {},
      channel: "shell", buffers: [], content: {code: "open('/home/work/pwned.txt', 'w').write('owned')",
      silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true}}));
    ws.onmessage = (m) => { if (JSON.parse(m.data).msg_type === "execute_reply") resolve("opened and ran code"); };
    ws.onerror = () => resolve("refused");
    ws.onclose = (e) => resolve("closed " + e.code);
  });
  window.attackDone = out;
})();
</script>""" % (json.dumps(TARGET), json.dumps(KERNEL))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
`;

test("a page on another user's app cannot drive alice's JupyterLab", async () => {
  const admin = await cookieOf("admin", berth.adminPassword);
  for (const username of ["alice", "mallory"]) {
    const r = await api(admin, "POST", "/api/v1/users", { username, password: PASSWORD, role: "user" });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  const alice = await cookieOf("alice", PASSWORD);
  const mallory = await cookieOf("mallory", PASSWORD);
  const lab = await running(alice, { name: "lab", image: "berth/jupyter", resources: { cpu: "0.5", mem: "512m" } });
  const trap = await running(mallory, {
    name: "trap", image: "berth/base", resources: { cpu: "0.1", mem: "128m" }, preopen_ports: [8000],
  });

  // Alice, in the console, opens her JupyterLab; it works on its own origin.
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await logIn(page, "alice", PASSWORD, berth.url);
  const labUrl = await page.evaluate(async (id) => (await (await fetch(`/api/v1/sessions/${id}/apps/jupyter`, {
    method: "POST", headers: { "content-type": "application/json" }, body: "{}",
  })).json()).url, lab.id);
  const target = new URL(labUrl).origin;
  assert.match(new URL(labUrl).host, new RegExp(`^jupyter--${lab.id}\\.${BASE_DOMAIN.replaceAll(".", "\\.")}:\\d+$`));
  const jl = await context.newPage();
  // JupyterLab's first load (all its scripts) can pass 30 s on two busy cores: the page is
  // waited for by its launcher, within the same two minutes as the other stories give it.
  await jl.goto(labUrl, { waitUntil: "commit", timeout: 120000 });
  await jl.waitForSelector(".jp-LauncherCard", { timeout: 120000 });
  // JupyterLab itself refuses to be framed by another origin (no clickjacking from the trap).
  const csp = await jl.evaluate(async () => (await fetch("/lab")).headers.get("content-security-policy"));
  assert.match(csp ?? "", /frame-ancestors 'self'/, `JupyterLab's own framing rule: ${csp}`);
  // Her own page writes through the proxy (Origin: her app's origin): a kernel for her work.
  const mine = await jl.evaluate(async () => (await fetch("/api/kernels", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "python3" }),
  })).json());
  assert.ok(mine.id, `alice starts a kernel: ${JSON.stringify(mine)}`);
  const look = () => jl.evaluate(async () => ({
    files: (await (await fetch("/api/contents")).json()).content.map((f) => f.name).sort(),
    kernels: (await (await fetch("/api/kernels")).json()).map((k) => k.id),
    pwned: (await fetch("/api/contents/pwned.txt")).status,
  }));
  const before = await look();
  assert.deepEqual(before.kernels, [mine.id]);
  assert.equal(before.pwned, 404);

  // Mallory's app serves the trap; she hands alice its link, and alice opens it.
  execFileSync("docker", ["exec", "-d", "-u", "1000:1000", trap.container_id, "python3", "-c", TRAP, target, mine.id]);
  const trapUrl = (await api(mallory, "POST", `/api/v1/sessions/${trap.id}/apps/port-8000`, {})).json.url;
  const evil = await context.newPage();
  await evil.goto(trapUrl);
  // The "starting…" page retries by itself until the trap answers.
  await evil.waitForFunction(() => window.attackDone, null, { timeout: 60000, polling: 200 });
  const attack = await evil.evaluate(() => window.attackDone);
  await shot(evil, "60-trap-page");
  assert.equal(new URL(evil.url()).origin !== target, true, "the trap is on another origin");
  assert.equal(attack.contents, "sent", "the browser sent the write (the proxy answers it)");
  assert.notEqual(attack.websocket, "opened and ran code", `the kernel websocket must be refused: ${attack.websocket}`);
  assert.ok(["refused", "closed 1006"].includes(attack.websocket), attack.websocket);

  // Alice, with her own access, finds nothing new: no file, no kernel, no code run.
  const after = await look();
  assert.deepEqual(after, before, "alice's JupyterLab is unchanged");
  // And her JupyterLab still runs code for her, over its websocket.
  const out = await jl.evaluate(async (kid) => new Promise((resolve) => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + `/api/kernels/${kid}/channels`);
    ws.onopen = () => ws.send(JSON.stringify({ header: { msg_id: "mine-1", username: "a", session: "a",
      msg_type: "execute_request", version: "5.3", date: "" }, parent_header: {}, metadata: {}, channel: "shell",
      buffers: [], content: { code: "print(6*7)", silent: false, store_history: false, user_expressions: {},
        allow_stdin: false, stop_on_error: true } }));
    ws.onmessage = (m) => {
      const v = JSON.parse(m.data);
      if (v.msg_type === "stream" && v.parent_header.msg_id === "mine-1") { resolve(v.content.text.trim()); ws.close(); }
    };
    ws.onerror = () => resolve("websocket failed");
  }), mine.id);
  assert.equal(out, "42");
  await shot(jl, "61-jupyterlab-untouched");
  await context.close();
});
