// The accounts story: the admin creates the user alice in Admin → Users (and tries a
// duplicate, changes her role and back, sets her password), puts her in a
// project and gives her a policy override, and logs out; alice logs in, sees her project in
// the launcher, opens Settings, creates an API key, sees its secret once in a dialog, closes
// it and finds the key listed by its prefix; the key then authenticates a plain HTTP call.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startBerth, launchBrowser, shot, artifacts, logIn } from "../lib.mjs";

let berth, browser;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

const ALICE_PASSWORD = "alice-password-1";
const FIRST_PASSWORD = "alice-first-password";


test("admin creates alice; alice creates an API key that works as a Bearer token", async () => {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 860 },
    permissions: ["clipboard-read", "clipboard-write"],
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // The admin creates alice; the form checks with the api crate as the admin types.
  await page.goto(berth.url);
  await logIn(page, "admin", berth.adminPassword);
  await page.click("#nav-admin");
  await page.waitForSelector("#create-user");
  await page.fill("#new-username", "Alice");
  await page.getByText("A username may contain only lowercase letters").waitFor();
  await page.fill("#new-username", "alice");
  await page.fill("#new-password", "short");
  await page.getByText("A password needs at least 10 characters.").waitFor();
  await page.fill("#new-password", FIRST_PASSWORD);
  // An admin may hand out superadmin only as a superadmin: the admin here is one.
  const roles = await page.locator("#new-role option").allTextContents();
  assert.deepEqual(roles, ["User", "Admin", "Superadmin"]);
  await page.selectOption("#new-role", "USER");
  await page.click("#create-user-submit");
  const row = page.locator("tr.user-row[data-username='alice']");
  await row.waitFor();
  assert.equal((await row.locator(".badge[data-role]").textContent()).trim(), "USER");
  await page.getByText("User alice created").waitFor();
  await shot(page, "10-admin-users");
  // A duplicate is refused with the server's sentence.
  await page.fill("#new-username", "alice");
  await page.fill("#new-password", "another-password");
  await page.click("#create-user-submit");
  await page.locator("#create-user .error").filter({ hasText: "alice" }).waitFor();

  // Row actions: the role and the password, each one PATCH.
  await row.locator("select.role-select").selectOption("ADMIN");
  await page.getByText("alice is now admin.").waitFor();
  assert.equal((await row.locator(".badge[data-role]").textContent()).trim(), "ADMIN");
  await row.locator("select.role-select").selectOption("USER");
  await page.getByText("alice is now user.").waitFor();
  await row.locator("button.set-password").click();
  await page.fill("#set-password", "short");
  await page.getByText("A password needs at least 10 characters.").first().waitFor();
  await page.fill("#set-password", ALICE_PASSWORD);
  await shot(page, "10b-admin-users-set-password");
  await page.click("#set-password-save");
  await page.getByText("alice's password is set").waitFor();

  // A project with alice in it.
  await page.click("#tab-projects");
  await page.fill("#project-name", "vision-lab");
  await page.fill("#project-description", "Image models and their data.");
  await page.click("#create-project-submit");
  const project = page.locator("tr.project-row[data-name='vision-lab']");
  await project.waitFor();
  await project.locator("select.add-member-select").selectOption("alice");
  await project.locator("button.add-member").click();
  await project.locator(".member[data-username='alice']").waitFor();
  await shot(page, "11-admin-projects");

  // Policies: a default idle timeout, and an override of alice's concurrent sessions.
  await page.click("#tab-policies");
  await page.waitForSelector("#policy-default-idle_timeout_s");
  await page.fill("#policy-default-idle_timeout_s", "-5");
  await page.click("#default-policy-save");
  await page.locator("#default-policy .field-error").first().waitFor();
  await page.fill("#policy-default-idle_timeout_s", "7200");
  await page.fill("#policy-default-max_total_resources-cpu", "8");
  await page.fill("#policy-default-max_total_resources-mem", "16g");
  await page.click("#default-policy-save");
  await page.getByText("Default policy saved").waitFor();
  const aliceId = await page.locator("#policy-user option", { hasText: "alice" }).getAttribute("value");
  await page.selectOption("#policy-user", aliceId);
  await page.waitForSelector("#policy-user-max_concurrent_sessions-override");
  assert.equal(await page.inputValue("#policy-user-idle_timeout_s"), "7200");
  assert.equal(await page.isDisabled("#policy-user-idle_timeout_s"), true);
  await page.check("#policy-user-max_concurrent_sessions-override");
  await page.fill("#policy-user-max_concurrent_sessions", "2");
  await page.click("#user-policy-save");
  await page.getByText("Saved: alice overrides 1 setting.").waitFor();
  await page.getByText("1 of 11 settings overridden for alice.").waitFor();
  await page.screenshot({ path: join(artifacts, "12-admin-policies.png"), fullPage: true });

  await page.click("#logout");
  await page.waitForSelector("#login-username");

  // alice logs in: her project is offered at launch.
  await logIn(page, "alice", ALICE_PASSWORD);
  assert.equal(await page.locator("#nav-admin").count(), 0);
  await page.waitForSelector("#launch-project option[value='vision-lab']", { state: "attached" });
  await page.selectOption("#launch-project", "vision-lab");
  await shot(page, "12b-launcher-project");

  // Settings: create a key; the secret is shown once.
  await page.click("#nav-settings");
  await page.waitForSelector("#key-form");
  await page.getByText("No API keys yet.").waitFor();
  await page.fill("#key-name", "laptop CLI");
  await page.click("#key-create");
  const dialog = page.locator("#key-dialog");
  await dialog.waitFor();
  await dialog.getByText("berth will not show it again").waitFor();
  const secret = await page.inputValue("#key-secret");
  assert.ok(secret.length >= 20, `a real secret, got ${secret.length} characters`);
  await page.click("#key-copy");
  await dialog.getByText("The key is on your clipboard.").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot(page, "13-settings-key-dialog");
  await page.click("#key-dialog-close");
  await dialog.waitFor({ state: "detached" });

  // Listed by prefix, never with the secret.
  const keyRow = page.locator("tr.key-row", { hasText: "laptop CLI" });
  await keyRow.waitFor();
  const prefix = (await keyRow.locator(".key-prefix").textContent()).replace("…", "").trim();
  assert.ok(prefix.length > 0 && secret.startsWith(prefix), `prefix ${prefix} of the secret`);
  assert.equal((await page.content()).includes(secret), false, "the secret is gone from the page");
  await shot(page, "14-settings");

  // The key works from outside the browser.
  const me = await fetch(`${berth.url}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).username, "alice");
  // And the list shows it was used.
  await page.reload();
  await page.waitForSelector("tr.key-row");
  assert.notEqual((await page.locator("tr.key-row td").nth(3).textContent()).trim(), "never");

  // Revoking asks first, then the key stops working.
  await keyRow.locator("button.revoke").click();
  await keyRow.getByText("Revoke for good").click();
  await page.getByText("No API keys yet.").waitFor();
  const after = await fetch(`${berth.url}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(after.status, 401);

  assert.deepEqual(errors, []);
  await context.close();
});
