// The usage story: the admin runs a session of half a core for a few seconds and ends it, then
// opens Admin → Usage: the last 30 days are shown, with a bar in the chart, a total for the
// admin with the exact core-seconds the API accounted (half the seconds it ran), the day's row,
// and a CSV download with the same rows. Grouped by node, the session is on `local`. A range
// that ends before it starts gets the server's sentence under the field.
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

const text = async (locator) => (await locator.textContent()).replace(/\s+/g, " ").trim();

test("after a session ran, Admin → Usage shows its core-seconds in the chart, the tables and the CSV", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await logInAt(page, "admin", berth.adminPassword, berth.url);

  // A session of 0.5 CPU and 256 MiB runs for about three seconds (through the API).
  const ran = await page.evaluate(async () => {
    const json = { "content-type": "application/json" };
    const status = async (id) => (await (await fetch(`/api/v1/sessions/${id}`)).json()).status;
    const until = async (id, want) => {
      for (let i = 0; i < 600; i++) {
        const s = await status(id);
        if (s === want) return s;
        if (["ERROR", "CANCELLED"].includes(s)) return s;
        await new Promise((r) => setTimeout(r, 200));
      }
      return "timeout";
    };
    const r = await fetch("/api/v1/sessions", {
      method: "POST", headers: json,
      body: JSON.stringify({ name: "counted", image: "berth/base", resources: { cpu: "0.5", mem: "256m" } }),
    });
    const s = await r.json();
    const running = await until(s.id, "RUNNING");
    await new Promise((r) => setTimeout(r, 3000));
    await fetch(`/api/v1/sessions/${s.id}`, { method: "DELETE" });
    const ended = await until(s.id, "TERMINATED");
    const history = await (await fetch(`/api/v1/sessions/${s.id}/history`)).json();
    const at = (st) => Math.floor(Date.parse(history.find((h) => h.status === st).at) / 1000);
    return { created: r.status, running, ended, secs: at("TERMINATED") - at("RUNNING") };
  });
  assert.deepEqual([ran.created, ran.running, ran.ended], [201, "RUNNING", "TERMINATED"]);
  assert.ok(ran.secs >= 2 && ran.secs <= 10, `ran ${ran.secs} s`);

  await page.click("#nav-admin");
  await page.click("#tab-usage");
  const total = page.locator("#usage-totals tr[data-group='admin']");
  await total.waitFor();
  // The form shows the range the server chose: the last 30 days, today included.
  const today = new Date().toISOString().slice(0, 10);
  assert.equal(await page.inputValue("#usage-to"), today);
  assert.match(await page.inputValue("#usage-from"), /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(await text(total.locator("td").nth(1)), "1");
  // Exactly half a core for each whole second between RUNNING and TERMINATED.
  const exact = await total.locator("td").nth(2).getAttribute("title");
  assert.equal(exact, `${ran.secs * 0.5} core-seconds`);
  assert.equal(await text(total.locator("td").nth(2)), (ran.secs * 0.5 / 3600).toFixed(4));
  const rows = page.locator("#usage-rows tr[data-group='admin']");
  assert.ok((await rows.count()) >= 1);
  assert.equal(await rows.first().getAttribute("data-day"), today);
  assert.ok((await page.locator("#usage-chart rect.usage-bar").count()) >= 1);
  assert.match(await page.locator("#usage-chart").getAttribute("aria-label"), /Core-hours per day from .* stacked by user/);
  await shot(page, "60-usage");

  // The CSV link downloads the same rows, exact.
  const href = await page.locator("#usage-csv").getAttribute("href");
  assert.match(href, /format=csv/);
  const csv = await page.evaluate(async (href) => {
    const r = await fetch(href);
    return [r.status, r.headers.get("content-type"), await r.text()];
  }, href);
  assert.equal(csv[0], 200);
  assert.equal(csv[1], "text/csv; charset=utf-8");
  const lines = csv[2].trim().split("\r\n");
  assert.equal(lines[0], "day,group,name,sessions,core_seconds,gib_seconds,gpu_seconds,gpu_share_seconds");
  assert.ok(lines.some((l) => l.startsWith(`${today},`) && l.includes(",admin,1,")), csv[2]);

  // Grouped by node: the session ran on `local`.
  await page.selectOption("#usage-group-by", "node");
  await page.locator("#usage-totals tr[data-group='local']").waitFor();
  assert.equal(await text(page.locator("#usage-totals thead th").first()), "Node");

  // A range that ends before it starts: the server's sentence under "To".
  await page.fill("#usage-from", "2026-01-10");
  await page.fill("#usage-to", "2026-01-01");
  await page.click("#usage-show");
  await page.locator("#usage-error", { hasText: "is before" }).waitFor();
  assert.equal(await page.locator("#usage-to.invalid").count(), 1);
  await shot(page, "61-usage-bad-range");

  assert.deepEqual(errors, []);
});
