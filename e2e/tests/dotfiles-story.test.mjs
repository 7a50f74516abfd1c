// Dotfiles: an admin keeps a domain file (Admin → Dotfiles) and a project's (Admin →
// Projects), a user keeps their own ~/.bashrc in Settings (bad paths answered in sentences
// before anything is sent), launches berth/base, and the terminal shows the alias from their
// ~/.bashrc and the variable from the domain's /etc/profile.d file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBerth, launchBrowser, shot, logIn, waitForScreen } from "../lib.mjs";

let berth, browser;
before(async () => {
  berth = await startBerth();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await berth?.stop();
});

/** Fills the dotfile form of the editor `card` and saves it. */
async function saveDotfile(card, path, content, mode) {
  await card.locator(".dotfile-path").fill(path);
  if (mode) await card.locator(".dotfile-mode").fill(mode);
  await card.locator(".dotfile-content").fill(content);
  await card.locator(".dotfile-save").click();
  await card.locator(`.dotfile-row[data-path='${path}']`).waitFor();
}

test("dotfiles at three levels reach a session's terminal", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await logIn(page, "admin", berth.adminPassword, berth.url);

  // The domain's file, everyone's.
  await page.goto(`${berth.url}/#/admin/dotfiles`);
  const domain = page.locator(".dotfiles[data-level='domain']");
  await domain.waitFor();
  await domain.getByText("No dotfiles here yet.").waitFor();
  await saveDotfile(domain, "/etc/profile.d/team.sh", "export TEAM_GREETING=hello-from-the-domain\n");
  await domain.getByText("Saved /etc/profile.d/team.sh").waitFor();
  await shot(page, "dotfiles-01-domain");

  // A project's, in Admin → Projects.
  await page.goto(`${berth.url}/#/admin/projects`);
  await page.fill("#project-name", "vision");
  await page.click("#create-project-submit");
  const project = page.locator(".dotfiles[data-level='project']");
  await project.waitFor();
  await saveDotfile(project, "/etc/pip.conf", "[global]\nindex-url = http://pypi.vision.example/simple\n", "0644");
  await shot(page, "dotfiles-02-project");

  // My own, in Settings: the rules answer before anything is sent.
  await page.goto(`${berth.url}/#/settings`);
  const mine = page.locator(".dotfiles[data-level='user']");
  await mine.waitFor();
  await mine.locator(".dotfile-path").fill("/etc/profile.d/mine.sh");
  await mine.locator(".dotfile-content").fill("x");
  await mine.locator(".dotfile-save").click();
  await mine.getByText("only administrators' levels").waitFor();
  await mine.locator(".dotfile-path").fill("~/../escape");
  await mine.getByText("may not use").waitFor();
  await mine.locator(".dotfile-mode").fill("4755");
  await mine.getByText("set-uid").waitFor();
  await shot(page, "dotfiles-03-settings-errors");
  await mine.locator(".dotfile-mode").fill("0644");
  await saveDotfile(mine, "~/.bashrc", "alias hi='echo hi-from-my-dotfile'\nPS1='dot\\$ '\n");
  await mine.locator(".dotfile-row[data-path='~/.bashrc'] .edit").click();
  assert.match(await mine.locator(".dotfile-content").inputValue(), /hi-from-my-dotfile/);
  await shot(page, "dotfiles-04-settings");

  // A session: the terminal has my alias and the domain's variable.
  await page.goto(`${berth.url}/#/sessions`);
  await page.waitForSelector("#launch-image option[value='berth/base']", { state: "attached" });
  await page.fill("#launch-name", "dots");
  await page.fill("#launch-cpu", "0.5");
  await page.fill("#launch-mem", "256m");
  await page.click("#launch-submit");
  await page.waitForSelector(".session-head .badge[data-status='RUNNING']", { timeout: 60000 });
  await page.waitForSelector("#terminal-state:text('Connected')", { timeout: 20000 });
  await page.click("#terminal");
  await page.keyboard.type("hi; echo \"$TEAM_GREETING\"\n");
  await waitForScreen(page, /^hi-from-my-dotfile$/m);
  await waitForScreen(page, /^hello-from-the-domain$/m);
  await shot(page, "dotfiles-05-terminal");
  assert.deepEqual(errors, []);
});
