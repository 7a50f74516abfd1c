// The apps story: launch berth/jupyter from the console, click "JupyterLab", land in
// JupyterLab on its own origin without a token prompt, run print(6*7) in a notebook, see 42.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBerth, launchBrowser, shot } from "../lib.mjs";

let berth, browser;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

test("a notebook in JupyterLab, opened from the console, prints 42", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(berth.url);
  await page.fill("#login-username", "admin");
  await page.fill("#login-password", berth.adminPassword);
  await page.click("#login-submit");
  await page.waitForSelector("#launch-image option[value='berth/jupyter']", { state: "attached" });
  await page.selectOption("#launch-image", "berth/jupyter");
  await page.fill("#launch-cpu", "1");
  await page.fill("#launch-mem", "1g");
  await page.fill("#launch-name", "lab");
  await page.click("#launch-submit");
  await page.waitForSelector(".session-head .badge[data-status='RUNNING']", { timeout: 90000 });
  await page.waitForSelector(".app-button[data-app='jupyter']");
  await shot(page, "20-session-with-apps");

  const [lab] = await Promise.all([context.waitForEvent("page"), page.click(".app-button[data-app='jupyter']")]);
  // The starting page retries by itself until JupyterLab answers.
  await lab.waitForSelector(".jp-LauncherCard", { timeout: 120000 });
  const origin = new URL(lab.url()).host;
  assert.match(origin, /^jupyter--[0-9a-f-]{36}\.localhost:\d+$/, "JupyterLab is on its own origin");
  assert.notEqual(origin, new URL(berth.url).host);
  assert.equal(await lab.locator("input[type=password]").count(), 0, "no token prompt");
  await shot(lab, "21-jupyterlab-launcher");

  await lab.locator(".jp-LauncherCard[data-category='Notebook']").first().click();
  const cell = lab.locator(".jp-Notebook .jp-Cell .cm-content").first();
  await cell.waitFor({ timeout: 60000 });
  // Wait for the kernel before running the cell.
  await lab.getByText(/ipykernel\) \| Idle/).first().waitFor({ timeout: 90000 });
  await cell.click();
  await lab.keyboard.type("print(6*7)");
  await lab.keyboard.press("Shift+Enter");
  const output = lab.locator(".jp-OutputArea-output", { hasText: "42" }).first();
  try {
    await output.waitFor({ timeout: 30000 }).catch(async () => {
      // A keystroke can land before the editor is live on a loaded machine: run it again.
      await cell.click();
      await lab.keyboard.press("Shift+Enter");
      await output.waitFor({ timeout: 60000 });
    });
  } catch (e) {
    await shot(lab, "22-notebook-failed");
    throw e;
  }
  await shot(lab, "22-notebook-42");
  await context.close();
});
