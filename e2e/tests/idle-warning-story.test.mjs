// Idleness as a user sees it: with a short idle timeout, the session page warns with a
// banner counting down before the session is ended, and the end names why.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBerth, launchBrowser, shot, logIn } from "../lib.mjs";

let berth, browser;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

const PASSWORD = "carol-password-for-e2e";

test("an idle session shows a countdown banner, then ends as idle", async () => {
  const admin = await browser.newPage();
  await logIn(admin, "admin", berth.adminPassword, berth.url);
  const made = await admin.evaluate(async (password) => {
    const json = { "content-type": "application/json" };
    const r = await fetch("/api/v1/users", {
      method: "POST", headers: json,
      body: JSON.stringify({ username: "carol", password, role: "user" }),
    });
    const carol = await r.json();
    const p = await fetch(`/api/v1/users/${carol.id}/policy`, {
      method: "PUT", headers: json, body: JSON.stringify({ idle_timeout_s: 24 }),
    });
    return [r.status, p.ok];
  }, PASSWORD);
  assert.deepEqual(made, [201, true]);

  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await logIn(page, "carol", PASSWORD, berth.url);
  const id = await page.evaluate(async () => {
    const r = await fetch("/api/v1/sessions", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "quiet", image: "berth/base", resources: { cpu: "0.1", mem: "128m" } }),
    });
    return (await r.json()).id;
  });
  // From the list to the session's page (its terminal's prompt is the last traffic).
  await page.waitForSelector(`tr.session-row[data-id='${id}'] .badge[data-status='RUNNING']`, { timeout: 60000 });
  await page.click(`tr.session-row[data-id='${id}'] a.name`);
  const banner = page.locator("#ending-banner");
  await banner.waitFor({ timeout: 30000 });
  assert.match(await banner.textContent(), /^Ends in 0:\d\d — The session is idle: no terminal, app or tunnel traffic\. It will be ended at .* unless it is used before then\.$/);
  await shot(page, "idle-01-banner");
  await page.waitForSelector(".session-head .badge[data-status='TERMINATED']", { timeout: 40000 });
  assert.match(await page.locator("#session-reason").textContent(), /idle \(no terminal, app or tunnel traffic\) for 24 s/);
  assert.equal(await banner.count(), 0, "the banner goes with the session");
  await shot(page, "idle-02-ended");
  assert.deepEqual(errors, []);
});
