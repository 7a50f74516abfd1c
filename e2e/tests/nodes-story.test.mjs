// The nodes story: the admin opens Admin → Nodes and sees the built-in `local` node UP with
// its CPU and memory bars; tries to add a node whose engine does not exist and reads the
// server's sentence (nothing is added); drains `local`. bob, whose policy caps him at 2 CPU,
// 4 GiB and 2 sessions, sees in the launcher what he may still ask for, launches a session
// that stays PENDING with the reason in his session list, while the admin sees it in the
// queue. The admin undrains `local`: the session starts by itself, the node's bars show its
// allocation, and bob ends the session.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBerth, launchBrowser, shot, logIn as logInAt } from "../lib.mjs";

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

const text = async (locator) => (await locator.textContent()).replace(/\s+/g, " ").trim();

test("admin drains the local node, a session waits with its reason, and starts on undrain", async () => {
  const admin = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const bobPage = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  for (const p of [admin, bobPage]) p.on("pageerror", (e) => errors.push(String(e)));

  await logIn(admin, "admin", berth.adminPassword);
  // bob, with a policy that limits him (created through the API with the admin's cookie).
  const setup = await admin.evaluate(async (password) => {
    const json = { "content-type": "application/json" };
    const r = await fetch("/api/v1/users", {
      method: "POST", headers: json,
      body: JSON.stringify({ username: "bob", password, role: "user" }),
    });
    const bob = await r.json();
    const p = await fetch(`/api/v1/users/${bob.id}/policy`, {
      method: "PUT", headers: json,
      body: JSON.stringify({ max_concurrent_sessions: 2, max_total_resources: { cpu: "2", mem: "4g" } }),
    });
    return [r.status, p.ok];
  }, BOB_PASSWORD);
  assert.deepEqual(setup, [201, true]);

  // Admin → Nodes: `local` is UP, with bars of what is allocated against its capacity.
  await admin.click("#nav-admin");
  await admin.click("#tab-nodes");
  const local = admin.locator("tr.node-row[data-name='local']");
  await local.waitFor();
  assert.equal(await local.getAttribute("data-state"), "UP");
  assert.equal(await text(local.locator(".badge[data-state]")), "UP");
  assert.match(await text(local.locator(".node-reason")), /The Docker engine answers\./);
  assert.match(await text(local.locator(".cpu-usage .usage-text")), /^0 of \d+(\.\d+)? CPU$/);
  assert.match(await text(local.locator(".mem-usage .usage-text")), /^0 of \d+(\.\d+)? [KMGT]iB$/);
  assert.equal(await local.locator(".progress").count(), 2);
  assert.equal(await text(local.locator(".sessions-count")), "0");
  assert.match(await text(local.locator(".endpoint")), /^unix:\/\/\//);
  // On berth's own host, the built-in node sees the folder storage.
  assert.equal(await text(local.locator(".tag-folders")), "folders");
  // The built-in node cannot be removed: the button says why instead of failing.
  assert.equal(await local.locator("button.remove-node").isDisabled(), true);
  await admin.locator("#queue-empty").waitFor();
  await shot(admin, "50-nodes");

  // Add a node: the api crate checks the form as the admin types…
  await admin.fill("#node-name", "Node 2");
  await admin.locator("#add-node .field-error", { hasText: "lowercase letters" }).waitFor();
  await admin.fill("#node-name", "node2");
  await admin.fill("#node-docker", "http://10.0.0.2");
  await admin.locator("#add-node .field-error", { hasText: "is not a Docker endpoint" }).waitFor();
  // Where the node sees the folder storage is checked as typed too.
  await admin.fill("#node-storage", "mnt/berth");
  await admin.locator("#add-node .field-error", { hasText: "is not an absolute path" }).waitFor();
  await admin.fill("#node-storage", "/mnt/berth");
  // …and the server answers an engine it cannot reach with a sentence; nothing is added.
  await admin.fill("#node-docker", "unix:///nonexistent/docker.sock");
  assert.equal(await admin.locator("#add-node .field-error").count(), 0);
  await admin.click("#add-node-submit");
  const refused = admin.locator("#add-node-error");
  await refused.waitFor();
  assert.match(await text(refused), /^Cannot reach .*\/nonexistent\/docker\.sock/);
  assert.equal(await admin.locator("#node-docker.invalid").count(), 1);
  await shot(admin, "51-add-node-error");
  assert.equal(await admin.locator("tr.node-row").count(), 1);

  // Drain `local`: running sessions would finish, new ones wait.
  await local.locator("button.drain-toggle").click();
  await admin.locator("tr.node-row[data-name='local'][data-state='DRAINING']").waitFor();
  await admin.locator("#nodes-notice", { hasText: "local is draining" }).waitFor();
  assert.match(await text(local.locator(".node-reason")), /^Drained by admin: /);
  assert.equal(await text(local.locator("button.drain-toggle")), "Undrain");

  // bob sees what his policy still allows, launches, and the session waits with a reason.
  await logIn(bobPage, "bob", BOB_PASSWORD);
  const allowance = bobPage.locator("#launch-allowance");
  await allowance.waitFor();
  assert.equal(await text(allowance), "You may still ask for 2 CPU, 4 GiB and 2 more sessions.");
  await bobPage.waitForSelector("#launch-image option[value='berth/base']", { state: "attached" });
  await bobPage.fill("#launch-cpu", "3");
  await allowance.getByText("more than your policy allows in all").waitFor();
  await bobPage.fill("#launch-cpu", "0.5");
  await bobPage.fill("#launch-mem", "512m");
  await bobPage.fill("#launch-name", "waits-for-a-node");
  await bobPage.click("#launch-submit");
  await bobPage.waitForSelector(".session-head .badge[data-status='PENDING']");
  await bobPage.click("#nav-sessions");
  const row = bobPage.locator("tr.session-row", { hasText: "waits-for-a-node" });
  await row.locator(".badge[data-status='PENDING']").waitFor();
  await row.locator(".reason", { hasText: "Waiting" }).waitFor({ timeout: 15000 });
  const reason = await text(row.locator(".reason"));
  assert.match(reason, /^Waiting: .+\./);
  assert.match(reason, /#1 in queue/);
  await allowance.getByText("1.5 CPU, 3.5 GiB and 1 more session").waitFor();
  await shot(bobPage, "52-pending-with-reason");

  // The admin's queue shows it (the page refreshes by itself), with owner and reason.
  const queued = admin.locator("#queue tr.queue-row[data-name='waits-for-a-node']");
  await queued.waitFor({ timeout: 15000 });
  assert.equal(await text(queued.locator(".queue-pos")), "1");
  assert.match(await text(queued), /bob/);
  assert.match(await text(queued), /0\.5 CPU, 512 MiB/);
  assert.match(await text(queued.locator(".queue-reason")), /^Waiting: /);
  await shot(admin, "53-nodes-drained-queue");

  // Undrain: the session starts by itself.
  await local.locator("button.drain-toggle").click();
  await admin.locator("tr.node-row[data-name='local'][data-state='UP']").waitFor();
  await row.locator(".badge[data-status='RUNNING']").waitFor({ timeout: 60000 });
  await admin.locator("#queue-empty").waitFor({ timeout: 15000 });
  const cpu = local.locator(".cpu-usage .usage-text");
  await admin.waitForFunction(
    () => /^0\.5 of /.test(document.querySelector("tr.node-row[data-name='local'] .cpu-usage .usage-text")?.textContent.trim()),
    null, { timeout: 15000 });
  assert.match(await text(cpu), /^0\.5 of \d+(\.\d+)? CPU$/);
  assert.match(await text(local.locator(".mem-usage .usage-text")), /^512 MiB of /);
  assert.equal(await text(local.locator(".sessions-count")), "1");
  await shot(admin, "54-nodes-allocated");

  // bob ends the session; the node's allocation goes back to zero.
  await row.locator("a.name").click();
  await bobPage.click("#terminate");
  await bobPage.click("#terminate");
  await bobPage.waitForSelector(".session-head .badge[data-status='TERMINATED']", { timeout: 30000 });
  await admin.waitForFunction(
    () => document.querySelector("tr.node-row[data-name='local'] .sessions-count")?.textContent.trim() === "0",
    null, { timeout: 15000 });
  assert.match(await text(cpu), /^0 of /);

  assert.deepEqual(errors, []);
});
