// The API reference story: a logged-in user follows "API reference" from Settings to
// /api/v1/docs, finds the operations the server documents about itself (Swagger UI over the
// generated /api/v1/openapi.json), and tries GET /api/v1/me from the page: the answer is
// their own account, sent with their console login (same origin, nothing else).
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

test("the API reference lists every documented operation and tries one as the user", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(berth.url);
  await logIn(page, "admin", berth.adminPassword);
  await page.click("#nav-settings");
  const [docs] = await Promise.all([
    context.waitForEvent("page"),
    page.click("#api-docs-link"),
  ]);
  docs.on("pageerror", (e) => errors.push(String(e)));
  await docs.waitForLoadState();
  assert.equal(new URL(docs.url()).pathname, "/api/v1/docs");

  // Every operation of the document is on the page.
  const doc = await (await fetch(`${berth.url}/api/v1/openapi.json`)).json();
  const operations = Object.values(doc.paths)
    .flatMap((item) => Object.keys(item).filter((k) => ["get", "put", "post", "delete", "patch", "head", "options"].includes(k)));
  await docs.waitForSelector(".opblock-tag-section", { timeout: 20000 });
  // Tags start open (operations folded), so every operation is on the page.
  await docs.waitForFunction((n) => document.querySelectorAll(".opblock").length >= n, operations.length, { timeout: 20000 });
  assert.equal(await docs.locator(".opblock").count(), operations.length);
  await shot(docs, "api-docs-list");

  // Try GET /api/v1/me as the logged-in user.
  const mePath = Object.keys(doc.paths).find((p) => p === "/me" || p === "/api/v1/me");
  assert.ok(mePath, "the document has GET /me");
  const me = docs.locator(".opblock-get", { has: docs.locator(`[data-path="${mePath}"]`) }).first();
  await me.locator(".opblock-summary").click();
  await me.getByRole("button", { name: "Try it out" }).click();
  await me.getByRole("button", { name: "Execute" }).click();
  const body = me.locator(".responses-wrapper .live-responses-table .response-col_description pre").first();
  await body.waitFor({ timeout: 20000 });
  const text = await body.innerText();
  assert.match(text, /"username": "admin"/);
  await body.scrollIntoViewIfNeeded();
  await shot(docs, "api-docs-try-me");
  assert.deepEqual(errors, []);
  await context.close();
});
