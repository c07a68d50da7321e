// Drives the log search page in Debian's headless Chromium (playwright-core): searches, filters by
// clicking a field value, zooms the histogram by dragging, and watches the live tail show a line that a
// container writes after the page opened. Screenshots go to OUT. Prints one "ok <step>" line per step;
// exits non-zero with the reason on the first failure.
//
// node search.mjs URL TOKEN OUT   (env KUBECONFIG: where to create the tailed pod)

import { launch, step } from "./browser.mjs";
import { execFileSync } from "node:child_process";

const [url, token, out] = process.argv.slice(2);
const browser = await launch();
try {
  // A zone away from UTC (+5:30), so that times shown and ranges picked are checked in the browser's zone.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 },
    timezoneId: "Asia/Kolkata" });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(`${url}#token=${token}`);
  await page.waitForSelector("#results li");
  await page.screenshot({ path: `${out}/1-opened.png`, fullPage: true });
  step("opened");

  // Search: "/" focuses the query, Enter searches.
  await page.keyboard.press("/");
  await page.keyboard.type("pod:writer AND line");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /^\d[\d,]* lines/.test(document.getElementById("status").textContent)
    && document.querySelectorAll("#results li").length > 0
    && [...document.querySelectorAll("#results li .where")].every((w) => w.textContent.includes("/writer/")));
  const [shown, utc] = await page.locator("#results li .time").first().evaluate((e) => [e.textContent, e.title]);
  const kolkata = new Date(new Date(utc).getTime() + 330 * 60e3).toISOString().slice(0, 23).replace("T", " ");
  if (shown !== kolkata) throw new Error(`the line's time ${shown} is not ${utc} in the browser's zone`);
  const marks = await page.locator("#results li mark").count();
  if (marks === 0) throw new Error("no highlighted term in the results");
  await page.screenshot({ path: `${out}/2-searched.png`, fullPage: true });
  step("searched");

  // Filter by clicking a field value in the facets: level error.
  await page.click('#facets button[data-field="level"][data-value="error"]');
  await page.waitForFunction(() => document.getElementById("query").value.includes('level:"error"')
    && document.querySelectorAll("#results li").length > 0
    && [...document.querySelectorAll("#results li .level")].every((l) => l.textContent === "error"));
  await page.screenshot({ path: `${out}/3-filtered.png`, fullPage: true });
  step("filtered");

  // Expand a line, then zoom the histogram by dragging across its middle.
  await page.click("#results li .message");
  await page.waitForSelector("#results li .details");
  const box = await page.locator("#histogram").boundingBox();
  // From 90 % of the hour to past the right edge (the brush stops at the edge): the last six minutes,
  // where the writer's lines are.
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 1.05, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => document.getElementById("range").value === "custom"
    && !document.getElementById("custom").hidden
    && /^[1-9][\d,]* lines/.test(document.getElementById("status").textContent));
  await page.screenshot({ path: `${out}/4-zoomed.png`, fullPage: true });
  step("zoomed");

  // Live tail: a line written after the page opened appears.
  await page.fill("#query", "tailed");
  await page.check("#tail");
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("live tail"));
  execFileSync("kubectl", ["apply", "-f", "-"], {
    input: "apiVersion: v1\nkind: Pod\nmetadata: {name: late}\nspec:\n  containers:\n  - {name: c, image: busybox, command: [sh, -c, 'echo tailed from the page; sleep 3600']}\n",
  });
  await page.waitForFunction(() => [...document.querySelectorAll("#results li.fresh .message")]
    .some((m) => m.textContent.includes("tailed from the page")), null, { timeout: 30000 });
  await page.screenshot({ path: `${out}/5-tail.png`, fullPage: true });
  step("tailed");
} catch (e) {
  console.log(`failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
