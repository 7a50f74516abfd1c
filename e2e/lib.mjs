// Helpers for berth's end-to-end stories: start a real `berth serve`, drive Debian's
// Chromium through playwright-core, and small find/action/check helpers.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..");
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

const target = process.env.CARGO_TARGET_DIR || join(process.env.HOME, ".cache/berth/target");
export const berthBin = process.env.BERTH_BIN || join(target, "debug/berth");
export const consoleDir = process.env.BERTH_CONSOLE_DIR || join(root, "frontend/dist");

/** Starts `berth serve` on a free port with a fresh data dir; resolves once it listens. */
export async function startBerth({ adminPassword = "e2e-admin-password" } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-e2e-"));
  const proc = spawn(berthBin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: { ...process.env, BERTH_ADMIN_PASSWORD: adminPassword, BERTH_CONSOLE_DIR: consoleDir, BERTH_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("berth did not start within 30 s")), 30000);
    let buf = "";
    proc.stdout.on("data", (d) => {
      buf += d.toString();
      const m = buf.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on("exit", (code) => reject(new Error(`berth exited with ${code}`)));
  });
  return {
    url, dataDir, adminPassword,
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
      const id = instanceContainers(dataDir);
      if (id.length) execFileSync("docker", ["rm", "-f", ...id]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Containers of the berth instance that owns `dataDir` (its sessions' labels). */
function instanceContainers(dataDir) {
  try {
    const id = execFileSync("python3", ["-c",
      "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM meta WHERE key='instance_id'\").fetchone()[0])",
      join(dataDir, "berth.db")]).toString().trim();
    return docker(["ps", "-aq", "--filter", `label=berth.instance=${id}`]);
  } catch {
    return [];
  }
}

export function docker(args) {
  return execFileSync("docker", args).toString().split("\n").map((s) => s.trim()).filter(Boolean);
}

/** Debian's Chromium, headless; `args` adds flags (e.g. `--host-resolver-rules`). */
export async function launchBrowser({ args = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", ...args],
    headless: true,
  });
}

export async function shot(page, name) {
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Logs in through the console's form (going to `url` first when given) and waits for it. */
export async function logIn(page, username, password, url) {
  if (url) await page.goto(url);
  await page.fill("#login-username", username);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("#logout");
}

/** The xterm screen's text. */
export const screen = (page) => page.evaluate(() => {
  const t = window.berthTerminal?.term;
  if (!t) return "";
  const b = t.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? "");
  return lines.join("\n");
});

/** Polls the terminal until its text matches `re`; fails with the screen after `timeout`. */
export async function waitForScreen(page, re, timeout = 20000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const s = await screen(page);
    if (re.test(s)) return s;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${re}; screen:\n${await screen(page)}`);
}
