// Your environment follows you: a user adds an SSH key and a dotfile in Settings, launches a
// session from the launcher, the terminal shows the dotfile's alias, the session page gives the
// one SSH line to paste, a file written in the home is there in the next session, and the home
// folder shows it in the file manager.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBerth, launchBrowser, shot, logIn, waitForScreen } from "../lib.mjs";

let berth, browser, keyDir;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
  keyDir = mkdtempSync(join(tmpdir(), "berth-e2e-key-"));
});
after(async () => {
  await browser?.close();
  await berth?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

const PASSWORD = "dana-password-for-e2e";

/** Launches a session named `name` of berth/base from the launcher; waits for its terminal. */
async function launch(page, name) {
  await page.goto(`${berth.url}/#/sessions`);
  await page.waitForSelector("#launch-image option[value='berth/base']", { state: "attached" });
  await page.fill("#launch-name", name);
  await page.fill("#launch-cpu", "0.25");
  await page.fill("#launch-mem", "256m");
  assert.equal(await page.isChecked("#launch-clean-home"), false, "the home is kept by default");
  await page.click("#launch-submit");
  await page.waitForSelector(".session-head .badge[data-status='RUNNING']", { timeout: 60000 });
  await page.waitForSelector("#terminal-state:text('Connected')", { timeout: 20000 });
  await page.click("#terminal");
}

test("an SSH key, a dotfile and a home that keeps a file across two sessions", async () => {
  const admin = await browser.newPage();
  await logIn(admin, "admin", berth.adminPassword, berth.url);
  const made = await admin.evaluate(async (password) => {
    const r = await fetch("/api/v1/users", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "dana", password, role: "user" }),
    });
    return r.status;
  }, PASSWORD);
  assert.equal(made, 201);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await logIn(page, "dana", PASSWORD, berth.url);

  // Settings: a real OpenSSH public key, refused first when mangled.
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dana@laptop", "-f", join(keyDir, "id")]);
  const pub = readFileSync(join(keyDir, "id.pub"), "utf8").trim();
  await page.goto(`${berth.url}/#/settings`);
  await page.locator("#ssh-keys-card").waitFor();
  await page.fill("#ssh-key-text", pub.replace("AAAA", "!!!!"));
  await page.click("#ssh-key-add");
  await page.locator("#ssh-keys-card .field-error, #ssh-key-error").first().waitFor();
  await page.fill("#ssh-key-text", pub);
  await page.click("#ssh-key-add");
  const keyRow = page.locator("#ssh-keys tr.ssh-key-row");
  await keyRow.waitFor({ timeout: 5000 }).catch(async (e) => { await shot(page, "workspace-debug"); throw e; });
  assert.match(await keyRow.locator(".fingerprint").textContent(), /^SHA256:/);
  assert.match(await keyRow.textContent(), /dana@laptop/);

  // And a dotfile: my alias in every session.
  const mine = page.locator(".dotfiles[data-level='user']");
  await mine.locator(".dotfile-path").fill("~/.bash_aliases");
  await mine.locator(".dotfile-content").fill("alias hi='echo hi-from-danas-dotfile'\n");
  await mine.locator(".dotfile-save").click();
  await mine.locator(".dotfile-row[data-path='~/.bash_aliases']").waitFor();
  await mine.locator(".dotfile-path").fill("~/.bashrc");
  await mine.locator(".dotfile-content").fill("[ -f ~/.bash_aliases ] && . ~/.bash_aliases\nPS1='dana\\$ '\n");
  await mine.locator(".dotfile-save").click();
  await mine.locator(".dotfile-row[data-path='~/.bashrc']").waitFor();
  await shot(page, "workspace-01-settings");

  // The first session: the alias works, a file goes into the home, SSH is one line away.
  await launch(page, "first");
  await page.keyboard.type("hi; echo kept-$((6*7)) > ~/kept.txt; echo made\n");
  await waitForScreen(page, /^hi-from-danas-dotfile$/m);
  await waitForScreen(page, /^made$/m);
  const line = page.locator("#ssh-command");
  await line.waitFor({ timeout: 30000 });
  assert.match(await line.textContent(), /ssh berth-first/);
  await shot(page, "workspace-02-first-session");
  await page.click("#terminate");
  await page.click("#terminate");
  await page.waitForSelector(".session-head .badge[data-status='TERMINATED']", { timeout: 30000 });

  // The second session sees what the first left in the home.
  await launch(page, "second");
  await page.keyboard.type("cat ~/kept.txt; hi\n");
  await waitForScreen(page, /^kept-42$/m);
  await waitForScreen(page, /^hi-from-danas-dotfile$/m);
  await shot(page, "workspace-03-second-session");

  // The home folder, in the file manager, holds the file.
  await page.goto(`${berth.url}/#/folders`);
  const home = page.locator("#folders-mine tr.folder-row[data-name='home']");
  await home.waitFor();
  await home.locator(".home-tag").waitFor();
  await home.locator("a.folder-link").click();
  await page.locator("#files tr.file-row[data-name='kept.txt']").waitFor();
  await shot(page, "workspace-04-home-folder");
  assert.deepEqual(errors, []);
});
