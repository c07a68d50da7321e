// Drives the probe history page in Debian's headless Chromium (playwright-core): the pod list shows the
// pod with a failing liveness probe, picking it shows its probes' settings, strips of attempts, the
// failures with their output, the restart between two runs and the kubelet's events. Screenshots go to
// OUT. Prints one "ok <step>" line per step; exits non-zero with the reason on the first failure.
//
// node probes.mjs URL TOKEN OUT POD   (POD: namespace/name of a pod whose liveness probe fails)

import { launch, step } from "./browser.mjs";

const [url, token, out, pod] = process.argv.slice(2);
const browser = await launch();
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(`${url}probes.html#token=${token}`);
  const button = `#pods button[data-pod="${pod}"]`;
  await page.waitForSelector(button);
  // A pod without probes is not listed by default.
  if (await page.locator('#pods button[data-pod="default/plain"]').count() !== 0) {
    throw new Error("a pod without probes is listed");
  }
  step("listed");

  await page.click(button);
  await page.waitForFunction(() => {
    const section = document.querySelector('section.container[data-container="app"]');
    return section
      && section.querySelector(".settings").textContent.includes("http-get http://:http/healthz")
      && section.querySelector('.strip[data-type="Liveness"] .tick.failure')
      && section.querySelector('.strip[data-type="Liveness"] .tick.success')
      && [...section.querySelectorAll("table.attempts tr.failure")]
        .some((tr) => tr.textContent.includes("HTTP probe failed with statuscode: 500"));
  });
  await page.screenshot({ path: `${out}/probes-1-picked.png`, fullPage: true });
  step("picked");

  // The page follows the pod: the restart shows between two runs, and the events say why.
  await page.waitForFunction(() => document.querySelector("table.attempts tr.restart")
    && [...document.querySelectorAll("table.events td")].some((td) => td.textContent.includes("failed liveness probe, will be restarted")),
    null, { timeout: 45000 });
  await page.screenshot({ path: `${out}/probes-2-restarted.png`, fullPage: true });
  step("restarted");

  // The address names the pod: a reload shows it again.
  await page.reload();
  await page.waitForSelector('section.container[data-container="app"] table.attempts tr.failure');
  if (!page.url().includes(`#pod=${encodeURIComponent(pod)}`)) throw new Error(`the address ${page.url()} does not name the pod`);
  step("reloaded");
} catch (e) {
  console.log(`failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
