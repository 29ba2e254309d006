// A visitor signed in to a victim app browses a hostile sibling app that tries every cookie
// trick; prints what the victim app saw before and after, and the browser's cookie jar, as JSON.
//
// Environment: TERRARIUM_PORT, VICTIM_USER, VICTIM_PASSWORD, ATTACKER_TOKEN, and CHROMIUM (the
// browser's executable; Debian's /usr/bin/chromium by default).
import { chromium } from "playwright-core";

const port = process.env.TERRARIUM_PORT;
const victim = `http://victim.shared.localhost:${port}/`;
const thief = `http://thief.shared.localhost:${port}`;
const token = encodeURIComponent(process.env.ATTACKER_TOKEN);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The test may run as root, where Chromium's sandbox cannot start.
  args: ["--no-sandbox"],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);

  // Sign in the way a person does: the app sends the browser to the sign-in page and back.
  await page.goto(victim);
  await page.fill("#username", process.env.VICTIM_USER);
  await page.fill("#password", process.env.VICTIM_PASSWORD);
  await Promise.all([page.waitForURL(victim), page.click("button[type=submit]")]);
  // The victim app answers JSON; anything else (the sign-in page) means the visitor was signed out.
  const read = async (response) => {
    try {
      return await response.json();
    } catch {
      return { signed_out: true, url: page.url() };
    }
  };
  const before = await read(await page.goto(victim));

  // The attack: Set-Cookie tricks, a page's document.cookie tricks, then a flood.
  const planted = await page.goto(`${thief}/plant?token=${token}`);
  const plantedHeaders = await planted.headersArray();
  await page.goto(`${thief}/?token=${token}`);
  await page.waitForFunction(() => document.getElementById("status")?.textContent === "done");
  for (let round = 0; round < 6; round++) {
    await page.goto(`${thief}/flood?prefix=f${round}_`);
  }

  const after = await read(await page.goto(victim));
  const jar = (await context.cookies()).map(({ name, domain, path }) => ({ name, domain, path }));
  const setCookies = plantedHeaders.filter(({ name }) => name.toLowerCase() === "set-cookie").map(({ value }) => value);
  console.log(JSON.stringify({ before, after, jar, planted_set_cookies: setCookies }));
} finally {
  await browser.close();
}
