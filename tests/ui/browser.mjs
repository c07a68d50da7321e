// What the page scripts share: Debian's headless Chromium through playwright-core, and the "ok <step>"
// lines the Rust tests read.

import { chromium } from "playwright-core";

export const step = (name) => console.log(`ok ${name}`);

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
}
