// The foundation story: log in as admin, launch berth/base with 1 CPU and 1 GiB, watch it go
// PENDING → SCHEDULED → PREPARING → RUNNING live, type in its terminal, see a busy loop in its
// live CPU chart, resize the window and
// see the shell follow, terminate it and see it TERMINATED with its container gone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBerth, launchBrowser, shot, docker, screen, waitForScreen } from "../lib.mjs";

let berth, browser;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

test("admin launches a session, works in its terminal, and terminates it", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(berth.url);
  await page.fill("#login-username", "admin");
  await page.fill("#login-password", "wrong-password");
  await page.click("#login-submit");
  await page.getByRole("alert").filter({ hasText: "wrong" }).waitFor();
  await page.fill("#login-password", berth.adminPassword);
  await shot(page, "01-login");
  await page.click("#login-submit");

  // The launcher validates with the api crate before submitting.
  await page.waitForSelector("#launch-cpu");
  await page.waitForSelector("#launch-image option[value='berth/base']", { state: "attached" });
  await page.fill("#launch-cpu", "0");
  await page.getByText("CPU must be more than zero.").waitFor();
  assert.equal(await page.isDisabled("#launch-submit"), true);
  await page.fill("#launch-cpu", "1");
  await page.fill("#launch-mem", "1g");
  await page.fill("#launch-name", "e2e-story");
  await shot(page, "02-launcher");

  // Record every status the page shows, to prove the transitions are pushed live.
  await page.evaluate(() => {
    window.seenStatuses = [];
    new MutationObserver(() => {
      const b = document.querySelector(".session-head .badge");
      const s = b?.dataset.status;
      if (s && window.seenStatuses.at(-1) !== s) window.seenStatuses.push(s);
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  await page.click("#launch-submit");
  await page.waitForSelector(".session-head .badge[data-status='RUNNING']", { timeout: 60000 });
  const seen = await page.evaluate(() => window.seenStatuses);
  assert.equal(seen.at(-1), "RUNNING");
  const history = await page.locator("#history .badge").allTextContents();
  await page.waitForFunction(() => document.querySelectorAll("#history li").length >= 4);
  const hist = (await page.locator("#history .badge").allTextContents()).map((s) => s.trim());
  assert.deepEqual(hist.slice(0, 4), ["PENDING", "SCHEDULED", "PREPARING", "RUNNING"], `history was ${history}`);

  // The terminal: type and read.
  await page.waitForSelector("#terminal-state:text('Connected')", { timeout: 20000 });
  await page.click("#terminal");
  await page.keyboard.type("echo e2e-$((6*7))\n");
  await waitForScreen(page, /^e2e-42$/m);
  await shot(page, "03-terminal");

  // Live stats: a busy loop started in the terminal shows in the CPU chart within seconds,
  // and the chart keeps drawing.
  await page.keyboard.type("timeout 40 sh -c 'while :; do :; done' &\n");
  await page.waitForFunction(
    () => parseInt(document.querySelector("#chart-cpu .chart-reading")?.textContent || "0") >= 50,
    null, { timeout: 20000 });
  const pointsNow = () => page.evaluate(() =>
    document.querySelector("#chart-cpu polyline")?.getAttribute("points") || "");
  const before = await pointsNow();
  await page.waitForFunction((b) =>
    (document.querySelector("#chart-cpu polyline")?.getAttribute("points") || "") !== b,
    before, { timeout: 10000 });
  assert.ok((await pointsNow()).split(" ").length >= 2);
  assert.match(await page.locator("#chart-mem .chart-reading").textContent(), / of 1 GiB$/);
  await page.locator("#session-stats").scrollIntoViewIfNeeded();
  await page.waitForTimeout(6000);
  await shot(page, "03b-stats");
  await page.keyboard.type("kill %1\n");

  // Logs: followed live (stopped again) and offered as a file named after the session.
  await page.click("#logs-follow");
  await page.waitForSelector("#logs-follow:text('Stop following')");
  await page.click("#logs-follow");
  await page.waitForSelector("#logs-follow:text('Follow')");
  assert.equal(await page.getAttribute("#logs-download", "download"), "e2e-story.log");
  await page.click("#terminal");

  // Resize the window: xterm refits and the shell follows.
  await page.setViewportSize({ width: 900, height: 700 });
  await page.waitForTimeout(300);
  const { cols, rows } = await page.evaluate(() => ({ cols: window.berthTerminal.term.cols, rows: window.berthTerminal.term.rows }));
  await page.keyboard.type("clear; stty size\n");
  await waitForScreen(page, new RegExp(`^${rows} ${cols}$`, "m"));
  await shot(page, "04-resized");

  // Terminate (the button asks for a second click) and check Docker.
  const id = new URL(page.url()).hash.split("/").pop();
  assert.equal(docker(["ps", "-q", "--filter", `label=berth.session=${id}`]).length, 1);
  await page.click("#terminate");
  await page.click("#terminate");
  await page.waitForSelector(".session-head .badge[data-status='TERMINATED']", { timeout: 30000 });
  assert.equal(docker(["ps", "-aq", "--filter", `label=berth.session=${id}`]).length, 0);
  await page.click("a.back");
  await page.waitForSelector(`tr.session-row[data-id='${id}'] .badge[data-status='TERMINATED']`);
  await shot(page, "05-list");
  assert.deepEqual(errors, []);
});
