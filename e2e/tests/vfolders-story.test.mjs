// The vfolders story: the admin creates the folder `datasets` in the console, uploads a file
// with the picker and watches its progress bar reach 100%, makes a directory, renames the
// file, shares the folder read-only with bob, launches a session with `datasets` mounted from
// the launcher, sees the file with `ls` in the terminal and writes one from the session, ends
// the session and finds that file in the file manager. bob accepts the invitation, sees the
// folder read-only (no upload, no delete), clones it into a folder of his own and leaves it. Then an upload cut off by closing the
// tab resumes from where it stopped when the same file is added again.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBerth, launchBrowser, shot, screen, waitForScreen, logIn as logInAt } from "../lib.mjs";

let berth, browser;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

const BOB_PASSWORD = "bob-password-123";

const logIn = (page, username, password) => logInAt(page, username, password, berth.url);

const fileRow = (page, name) => page.locator(`#files tr.file-row[data-name='${name}']`);

test("a folder is created, filled, mounted into a session, shared and left", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await logIn(page, "admin", berth.adminPassword);
  // bob, the teammate (created through the API with the admin's cookie).
  const created = await page.evaluate(async (password) => {
    const r = await fetch("/api/v1/users", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "bob", password, role: "user" }),
    });
    return r.status;
  }, BOB_PASSWORD);
  assert.equal(created, 201);
  // A per-folder quota, so usage shows against it.
  const policy = await page.evaluate(async () => (await fetch("/api/v1/policies/default", {
    method: "PUT", headers: { "content-type": "application/json" },
    body: JSON.stringify({ vfolder_quota_bytes: "1g" }),
  })).status);
  assert.equal(policy, 200);

  // Create `datasets`; the name is checked with the api crate before anything is sent.
  await page.click("#nav-folders");
  await page.waitForSelector("#create-folder");
  await page.fill("#new-folder-name", "my data");
  await page.getByText("A folder name may use letters, digits, '.', '_' and '-' only").waitFor();
  await page.fill("#new-folder-name", "datasets");
  await page.click("#create-folder-submit");
  const row = page.locator("#folders-mine tr.folder-row[data-name='datasets']");
  await row.waitFor();
  await page.locator("#folders-notice", { hasText: "Folder datasets created." }).waitFor();
  assert.equal(await row.locator(".usage-text").textContent(), "0 B of 1 GiB");
  assert.equal(await row.locator(".badge[data-permission]").textContent(), "OWNER");
  await shot(page, "40-folders");
  // A second folder of the same name is refused with the server's sentence.
  await page.fill("#new-folder-name", "datasets");
  await page.click("#create-folder-submit");
  await page.locator("#create-folder .field-error, #create-folder .error").first().waitFor();

  // The file manager: upload with the picker and watch the bar reach 100%.
  await row.locator("a.folder-link").click();
  await page.waitForSelector("#folder-name:text('datasets')");
  await page.waitForSelector("#files-empty");
  await page.setInputFiles("#upload-input", {
    name: "hello.txt", mimeType: "text/plain", buffer: Buffer.from("hello from berth\n"),
  });
  const upload = page.locator(".upload-item[data-name='hello.txt']");
  await upload.waitFor();
  await page.waitForSelector(".upload-item[data-name='hello.txt'][data-state='DONE']", { timeout: 20000 });
  assert.equal((await upload.locator(".upload-percent").textContent()).trim(), "100%");
  assert.equal(await upload.locator("[role='progressbar']").getAttribute("aria-valuenow"), "100");
  await fileRow(page, "hello.txt").waitFor();
  assert.equal((await fileRow(page, "hello.txt").locator("td").nth(1).textContent()).trim(), "17 B");

  // A bigger file on a throttled link, to see the bar move (and for the screenshot).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 40, downloadThroughput: -1, uploadThroughput: 1.5 * 1024 * 1024,
  });
  await page.setInputFiles("#upload-input", {
    name: "weights.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(6 * 1024 * 1024, 7),
  });
  const big = page.locator(".upload-item[data-name='weights.bin']");
  await page.waitForFunction(() => {
    const el = document.querySelector(".upload-item[data-name='weights.bin'] [role='progressbar']");
    const v = Number(el?.getAttribute("aria-valuenow"));
    return v >= 30;
  }, null, { timeout: 30000 });
  await shot(page, "41-file-manager-uploading");
  await page.waitForSelector(".upload-item[data-name='weights.bin'][data-state='DONE']", { timeout: 60000 });
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  assert.match(await big.locator(".upload-detail").textContent(), /Uploaded 6 MiB/);
  await fileRow(page, "weights.bin").waitFor();
  await page.locator(".folder-head .usage-text", { hasText: "6 MiB of 1 GiB" }).waitFor();

  // Drag and drop: files dropped anywhere on the page upload into the directory shown.
  const dropped = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["dropped\n"], "dropped.txt", { type: "text/plain" }));
    return dt;
  });
  await page.dispatchEvent(".folder-page", "dragenter", { dataTransfer: dropped });
  await page.locator("#drop-overlay", { hasText: "Drop to upload into datasets" }).waitFor();
  await page.dispatchEvent("#drop-overlay", "drop", { dataTransfer: dropped });
  await page.waitForSelector("#drop-overlay", { state: "detached" });
  await page.waitForSelector(".upload-item[data-name='dropped.txt'][data-state='DONE']", { timeout: 20000 });
  await fileRow(page, "dropped.txt").waitFor();

  // A directory, then rename the file; directories are navigable with breadcrumbs.
  await page.click("#mkdir-button");
  await page.fill("#mkdir-name", "../x");
  await page.locator("#mkdir-dialog .field-error", { hasText: "leaves the folder" }).waitFor();
  await page.fill("#mkdir-name", "raw");
  await page.click("#mkdir-submit");
  await page.waitForSelector("#files tr.file-row[data-name='raw'][data-kind='dir']");
  await fileRow(page, "hello.txt").locator("button.rename").click();
  await page.fill("#rename-path", "hello-berth.txt");
  await page.click("#rename-submit");
  await fileRow(page, "hello-berth.txt").waitFor();
  assert.equal(await fileRow(page, "hello.txt").count(), 0);
  await fileRow(page, "raw").locator("a.file-link").click();
  await page.waitForSelector("#breadcrumbs .crumb.current:text('raw')");
  await page.waitForSelector("#files-empty");
  await page.locator("#breadcrumbs a.crumb", { hasText: "datasets" }).click();
  await fileRow(page, "hello-berth.txt").waitFor();
  // Downloads are plain links to the API.
  const href = await fileRow(page, "hello-berth.txt").locator("a.download").getAttribute("href");
  const got = await page.evaluate(async (u) => (await fetch(u)).text(), href);
  assert.equal(got, "hello from berth\n");
  await shot(page, "41b-file-manager");

  // Share read-only with bob.
  await page.click("#share-button");
  await page.waitForSelector("#share-dialog");
  await page.waitForSelector("#share-none");
  await page.fill("#invite-user", "bob");
  await page.selectOption("#invite-permission", "ro");
  await page.click("#invite-submit");
  await page.locator("#share-dialog .success", { hasText: "bob is invited" }).waitFor();
  await page.locator("#share-pending", { hasText: "bob" }).waitFor();
  await shot(page, "42-share-dialog");
  await page.click("#share-close");
  await page.waitForSelector("#share-dialog", { state: "detached" });

  // Launch a session with `datasets` mounted, from the launcher.
  await page.click("#nav-sessions");
  const mount = page.locator(".mount-choice[data-name='datasets']");
  await mount.waitFor();
  await mount.locator("input.mount-pick").check();
  await mount.locator(".mount-point", { hasText: "/home/work/datasets" }).waitFor();
  await mount.locator("input.mount-alias").fill("/etc");
  await mount.getByText("/etc is a system path").waitFor();
  assert.equal(await page.isDisabled("#launch-submit"), true);
  await mount.locator("input.mount-alias").fill("");
  await mount.locator(".mount-point", { hasText: "/home/work/datasets" }).waitFor();
  await page.fill("#launch-cpu", "0.5");
  await page.fill("#launch-mem", "512m");
  await page.fill("#launch-name", "e2e-vfolders");
  await shot(page, "43-launcher-mounts");
  await page.click("#launch-submit");
  await page.waitForSelector(".session-head .badge[data-status='RUNNING']", { timeout: 60000 });
  await page.locator("#session-mounts .session-mount[data-name='datasets']", { hasText: "/home/work/datasets" }).waitFor();

  // The file is there in the terminal; a file written in the session stays in the folder.
  await page.waitForSelector("#terminal-state:text('Connected')", { timeout: 20000 });
  await page.click("#terminal");
  await page.keyboard.type("ls /home/work/datasets\n");
  await waitForScreen(page, /hello-berth\.txt/);
  await waitForScreen(page, /weights\.bin/);
  // A hostile session also leaves a link to / and a FIFO: shown as what they are, never opened.
  await page.keyboard.type("echo made-in-session > /home/work/datasets/raw/from-session.txt && ln -s / /home/work/datasets/raw/escape && mkfifo /home/work/datasets/raw/pipe && echo wrote-$((40+2))\n");
  await waitForScreen(page, /^wrote-42$/m);
  await shot(page, "44-terminal-ls");
  await page.click("#terminate");
  await page.click("#terminate");
  await page.waitForSelector(".session-head .badge[data-status='TERMINATED']", { timeout: 30000 });

  await page.click("#nav-folders");
  await page.locator("#folders-mine tr.folder-row[data-name='datasets'] a.folder-link").click();
  await fileRow(page, "raw").locator("a.file-link").click();
  await fileRow(page, "from-session.txt").waitFor();
  for (const [name, tag] of [["escape", "link"], ["pipe", "pipe"]]) {
    await fileRow(page, name).locator(".tag", { hasText: tag }).waitFor();
    assert.equal(await fileRow(page, name).locator("a.download").count(), 0, `${name} offers no download`);
  }
  await shot(page, "44b-file-manager-special-files");
  assert.deepEqual(errors, []);
  await page.close();

  // bob accepts, sees it read-only, and leaves it.
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const bob = await context.newPage();
  bob.on("pageerror", (e) => errors.push(String(e)));
  await logIn(bob, "bob", BOB_PASSWORD);
  await bob.click("#nav-folders");
  const invitation = bob.locator("#invitations .invitation[data-folder='datasets']");
  await invitation.waitFor();
  await shot(bob, "45-invitations");
  await invitation.locator("button.accept").click();
  const shared = bob.locator("#folders-shared tr.folder-row[data-name='datasets']");
  await shared.waitFor();
  assert.equal(await shared.locator(".badge[data-permission]").textContent(), "RO");
  await shared.locator("a.folder-link").click();
  await fileRow(bob, "hello-berth.txt").waitFor();
  assert.equal(await bob.locator("#upload-button").count(), 0, "no upload with ro");
  assert.equal(await bob.locator("#mkdir-button").count(), 0, "no new directory with ro");
  assert.equal(await fileRow(bob, "hello-berth.txt").locator("button.delete, button.rename").count(), 0);
  // bob clones it into a folder of his own, watching the copy's progress.
  await bob.click("#clone-button");
  await bob.waitForSelector("#clone-dialog");
  assert.equal(await bob.inputValue("#clone-name"), "datasets-copy");
  await bob.fill("#clone-name", "my datasets");
  await bob.locator("#clone-dialog .field-error", { hasText: "A folder name may use" }).waitFor();
  await bob.fill("#clone-name", "my-datasets");
  await bob.click("#clone-submit");
  await bob.waitForSelector("#clone-job[data-state='DONE']", { timeout: 30000 });
  await bob.locator("#clone-job", { hasText: "Copied 6 MiB." }).waitFor();
  await shot(bob, "47-clone-done");
  await bob.click("#clone-open");
  await bob.waitForSelector("#folder-name:text('my-datasets')");
  await fileRow(bob, "hello-berth.txt").waitFor();
  await bob.waitForSelector("#upload-button");
  // Then leaves the shared one.
  await bob.click("#nav-folders");
  await bob.locator("#folders-mine tr.folder-row[data-name='my-datasets']").waitFor();
  await bob.locator("#folders-shared tr.folder-row[data-name='datasets'] a.folder-link").click();
  await bob.waitForSelector("#folder-name:text('datasets')");
  await bob.click("#leave-button");
  await bob.click("#leave-dialog-confirm");
  await bob.waitForSelector("#create-folder");
  await bob.locator("#folders-shared .empty-group").waitFor();
  assert.equal(await bob.locator("tr.folder-row[data-name='datasets']").count(), 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test("an upload cut off by closing the tab resumes where it stopped; the folder is renamed, trashed, restored and purged", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await logIn(page, "admin", berth.adminPassword);
  const folder = await page.evaluate(async () => (await fetch("/api/v1/vfolders", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "resumable" }),
  })).json());
  // A file on disk, so the browser sees the same modification time both times.
  const dir = mkdtempSync(join(tmpdir(), "berth-e2e-upload-"));
  const file = join(dir, "big.bin");
  const bytes = Buffer.alloc(12 * 1024 * 1024);
  for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
  writeFileSync(file, bytes);

  await page.goto(`${berth.url}/#/folders/${folder.id}`);
  await page.waitForSelector("#files-empty");
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 40, downloadThroughput: -1, uploadThroughput: 1024 * 1024,
  });
  await page.setInputFiles("#upload-input", file);
  await page.waitForFunction(() => {
    const el = document.querySelector(".upload-item[data-name='big.bin'] [role='progressbar']");
    return Number(el?.getAttribute("aria-valuenow")) >= 25;
  }, null, { timeout: 30000 });
  await page.close();

  // A new tab: adding the same file again picks up where the server stands.
  const again = await context.newPage();
  again.on("pageerror", (e) => errors.push(String(e)));
  await again.goto(`${berth.url}/#/folders/${folder.id}`);
  await again.waitForSelector("#upload-button");
  // The page remembers what was left unfinished, and how much of it arrived.
  await again.locator("#unfinished-uploads .unfinished-item[data-path='big.bin']", { hasText: "arrived" }).waitFor();
  await shot(again, "46a-unfinished-upload");
  await again.setInputFiles("#upload-input", file);
  await again.waitForSelector("#unfinished-uploads", { state: "detached" });
  const item = again.locator(".upload-item[data-name='big.bin']");
  await again.waitForSelector(".upload-item[data-name='big.bin'][data-state='DONE']", { timeout: 60000 });
  const resumed = await item.locator(".tag.resumed").textContent();
  const at = Number(resumed.match(/resumed at (\d+)%/)[1]);
  assert.ok(at >= 15 && at < 100, `resumed at ${at}%`);
  await shot(again, "46b-upload-resumed");
  await fileRow(again, "big.bin").waitFor();
  assert.equal((await fileRow(again, "big.bin").locator("td").nth(1).textContent()).trim(), "12 MiB");
  const href = await fileRow(again, "big.bin").locator("a.download").getAttribute("href");
  const same = await again.evaluate(async ([u, n]) => {
    const b = new Uint8Array(await (await fetch(u)).arrayBuffer());
    if (b.length !== n) return `length ${b.length}`;
    for (let i = 0; i < b.length; i += 4096) if (b[i] !== i % 251) return `byte ${i}`;
    return "ok";
  }, [href, bytes.length]);
  assert.equal(same, "ok");
  rmSync(dir, { recursive: true, force: true });

  // The folder's life: rename, to the trash, back, and deleted for good.
  await again.click("#nav-folders");
  const row = again.locator("#folders-mine tr.folder-row[data-name='resumable']");
  await row.locator("button.rename-folder").click();
  await again.fill("#rename-folder-name", "resumed/");
  await again.locator("#rename-folder-dialog .field-error", { hasText: "not '/'" }).waitFor();
  await again.fill("#rename-folder-name", "resumed");
  await again.click("#rename-folder-submit");
  const renamed = again.locator("#folders-mine tr.folder-row[data-name='resumed']");
  await renamed.waitFor();
  await renamed.locator("button.trash-folder").click();
  const trashed = again.locator("#trash tr.trash-row[data-name='resumed']");
  await trashed.waitFor();
  assert.equal(await renamed.count(), 0);
  await trashed.locator("button.restore").click();
  await renamed.waitFor();
  await renamed.locator("button.trash-folder").click();
  await trashed.locator("button.purge").click();
  await again.locator("#purge-dialog", { hasText: "This cannot be undone." }).waitFor();
  await shot(again, "48-purge-confirm");
  await again.click("#purge-dialog-confirm");
  await again.locator("#folders-notice", { hasText: "resumed is deleted for good." }).waitFor();
  assert.equal(await trashed.count(), 0);
  assert.deepEqual(errors, []);
  await context.close();
});
