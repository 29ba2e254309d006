// The web console in a real browser: a builder signs in, makes an app from a template through
// the form, opens it, edits and republishes it, rolls it back, sets a secret and asks for an
// egress host; an operator approves the ask; the builder is kept out of operator pages and of
// another namespace's app. Prints what it saw as JSON; saves a screenshot of every page.
//
// Environment: TERRARIUM_PORT, BUILDER_USER, BUILDER_PASSWORD, OPERATOR_USER,
// OPERATOR_PASSWORD, SECRET_VALUE, SCREENSHOTS (a folder, optional), CHROMIUM (Debian's
// /usr/bin/chromium by default).
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = `http://127.0.0.1:${process.env.TERRARIUM_PORT}`;
const shots = process.env.SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });
const seen = { pages: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The test may run as root, where Chromium's sandbox cannot start.
  args: ["--no-sandbox"],
});

// What every console page must have for people who use a keyboard or a screen reader: a
// language, one heading of the first level, a label for every field, words on every link and
// button, a text alternative on every picture.
async function accessibility(page) {
  return page.evaluate(() => {
    const problems = [];
    if (!document.documentElement.lang) problems.push("the page has no lang");
    const headings = document.querySelectorAll("h1").length;
    if (headings !== 1) problems.push(`${headings} h1 headings`);
    for (const field of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
      const labelled = field.labels?.length > 0 || field.getAttribute("aria-label");
      if (!labelled) problems.push(`the ${field.tagName.toLowerCase()} ${field.name} has no label`);
    }
    for (const image of document.querySelectorAll("img")) {
      if (!image.hasAttribute("alt")) problems.push(`a picture without alt: ${image.src}`);
    }
    for (const control of document.querySelectorAll("a, button")) {
      if (!control.textContent.trim() && !control.getAttribute("aria-label")) problems.push(`an empty ${control.tagName}`);
    }
    return problems;
  });
}

async function shot(page, name) {
  const entry = { name, url: page.url() };
  // The app's own page is the builder's, not the console's.
  if (!name.includes("live-app")) entry.accessibility = await accessibility(page);
  seen.pages.push(entry);
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function signIn(page, user, password, landing) {
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(landing), page.click("button[type=submit]")]);
}

async function newPage(width) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on("dialog", (dialog) => dialog.accept());
  return page;
}

try {
  // The builder, from the server's address to a live app made from a template.
  const page = await newPage(1100);
  const started = Date.now();
  await page.goto(`${base}/`);
  await page.waitForSelector("#username");
  await shot(page, "01-sign-in");
  await signIn(page, process.env.BUILDER_USER, process.env.BUILDER_PASSWORD, `${base}/console`);
  seen.my_apps_heading = await page.textContent("h1");
  await shot(page, "02-my-apps-empty");
  await Promise.all([page.waitForURL(`${base}/console/new`), page.click("text=Create an app")]);
  await shot(page, "03-catalog");
  await Promise.all([page.waitForURL(`${base}/console/new/static-edge`), page.click('a[href="/console/new/static-edge"]')]);
  await page.fill("#name", "lunch");
  await page.selectOption("#namespace", "team");
  await page.fill("#description", "Where the team eats today");
  await page.check('input[name="kv"]');
  await shot(page, "04-new-app-form");
  await Promise.all([page.waitForURL(/\/console\/apps\/team\/lunch\?notice=created/), page.click("text=Create and publish")]);
  seen.created_notice = await page.textContent(".notice");
  const liveUrl = await page.getAttribute("#live-url", "href");
  seen.live_url = liveUrl;
  seen.seconds_to_live = (Date.now() - started) / 1000;
  await shot(page, "05-app");

  // The app's log, live on its page: a request to the app's function appears as it happens.
  await page.waitForFunction(() => document.getElementById("log-state")?.textContent === "live");
  const visitor = await page.context().newPage();
  await visitor.goto(`${liveUrl}api/hello?name=console`);
  seen.function_answer = await visitor.textContent("body");
  await visitor.close();
  await page.waitForSelector('ol.log li:has-text("greeting console")');
  seen.live_log = await page.textContent("ol.log");

  // The live app, opened the way a person does (the console's session carries over).
  await page.goto(liveUrl);
  seen.live_heading = await page.textContent("h1");
  await shot(page, "06-live-app");

  // Edit the page: check, then publish a new revision.
  await page.goto(`${base}/console/apps/team/lunch/edit`);
  const original = await page.inputValue("#content");
  await page.fill("#content", original.replace("<h1>lunch</h1>", "<h1>Lunch poll</h1>"));
  await page.click('button[value="check"]');
  seen.check_notice = await page.textContent(".notice");
  seen.kept_after_check = (await page.inputValue("#content")).includes("<h1>Lunch poll</h1>");
  await shot(page, "07-editor");
  await Promise.all([page.waitForURL(/notice=deployed/), page.click('button[value="deploy"]')]);
  seen.deployed_notice = await page.textContent(".notice");
  seen.changes = await page.textContent("#revisions + div");
  await page.goto(liveUrl);
  seen.edited_heading = await page.textContent("h1");

  // A mistake in the manifest is named with its line and column, and the text is kept.
  await page.goto(`${base}/console/apps/team/lunch/edit?path=terrarium.yaml`);
  const manifest = await page.inputValue("#content");
  await page.fill("#content", manifest.replace("runtime: static+edge", "runtime: static+edgy"));
  await page.click('button[value="check"]');
  seen.manifest_problems = await page.textContent("ul.problems");
  seen.kept_after_problem = (await page.inputValue("#content")).includes("static+edgy");
  await shot(page, "08-editor-problem");

  // Roll back to revision 1 with one click (and a confirmation).
  await page.goto(`${base}/console/apps/team/lunch`);
  await Promise.all([page.waitForURL(/notice=rolled-back/), page.click('form[action$="/rollback"] button')]);
  seen.rollback_notice = await page.textContent(".notice");
  await page.goto(liveUrl);
  seen.rolled_back_heading = await page.textContent("h1");

  // A secret: written once, never shown again.
  await page.goto(`${base}/console/apps/team/lunch`);
  await page.fill("#secret-name", "API_TOKEN");
  await page.fill("#secret-value", process.env.SECRET_VALUE);
  await Promise.all([page.waitForURL(/notice=secret-set/), page.click("text=Save secret")]);
  const appPage = await page.content();
  seen.secret_listed = appPage.includes("API_TOKEN");
  seen.secret_value_shown = appPage.includes(process.env.SECRET_VALUE);
  await shot(page, "09-app-with-secret");

  // Ask for an egress host, with a reason.
  await Promise.all([page.waitForURL(/\/request$/), page.click("text=Ask for more access")]);
  await page.fill("#egress_host", "api.weather.dev");
  await page.fill("#justification", "The lunch poll shows the weather at noon.");
  await shot(page, "10-ask-for-more");
  await Promise.all([page.waitForURL(/notice=pending/), page.click("text=Send the request")]);
  seen.pending_notice = await page.textContent(".notice");
  seen.pending_section = await page.textContent("#requests + p");

  // Walls: no operator page, no other namespace's app.
  seen.builder_operator_page = (await page.goto(`${base}/console/approvals`)).status();
  seen.builder_operator_text = await page.textContent("main");
  seen.builder_other_namespace = (await page.goto(`${base}/console/apps/vault/ledger`)).status();
  seen.builder_other_edit = (await page.goto(`${base}/console/apps/vault/ledger/edit`)).status();

  // The operator approves the ask with a reason, and looks around the console.
  const op = await newPage(1280);
  await op.goto(`${base}/console/approvals`);
  await signIn(op, process.env.OPERATOR_USER, process.env.OPERATOR_PASSWORD, `${base}/console/approvals`);
  seen.queue = await op.textContent("main");
  await shot(op, "11-approvals");
  await op.fill('textarea[name="reason"]', "Weather data is public");
  await Promise.all([op.waitForURL(/notice=voted/), op.click('button[value="approve"]')]);
  seen.voted_notice = await op.textContent(".notice");
  seen.decided = await op.textContent("main");
  for (const [path, name] of [
    ["/console/inventory?q=lunch", "12-inventory"],
    ["/console/policy", "13-policy"],
    ["/console/spend", "14-spend"],
    ["/console/people", "15-people"],
    ["/console/apps/team/lunch", "16-operator-app-detail"],
    ["/console", "19-operator-home"],
  ]) {
    const response = await op.goto(`${base}${path}`);
    seen[name] = { status: response.status(), text: await op.textContent("main") };
    await shot(op, name);
  }
  const csv = await op.request.get(`${base}/console/spend.csv?by=namespace`);
  seen.csv = { status: csv.status(), type: csv.headers()["content-type"], body: await csv.text() };

  // After the approval, the builder's app runs the approved revision.
  await page.goto(`${base}/console/apps/team/lunch`);
  seen.after_approval = await page.textContent(".stats");

  // On a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const small = await phone.newPage();
  await small.goto(`${base}/console`);
  await signIn(small, process.env.BUILDER_USER, process.env.BUILDER_PASSWORD, `${base}/console`);
  seen.phone_scroll_width = await small.evaluate(() => document.documentElement.scrollWidth);
  await shot(small, "17-phone-my-apps");
  await small.goto(`${base}/console/apps/team/lunch`);
  seen.phone_app_scroll_width = await small.evaluate(() => document.documentElement.scrollWidth);
  await shot(small, "18-phone-app");
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
