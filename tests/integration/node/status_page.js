// Drives the ringkv status page in headless Chromium (playwright-core with
// Debian's /usr/bin/chromium): argv = [url, screenshot dir].  Reads
// commands from stdin, one per line, and answers one JSON line each:
//   wait_nodes N      -> {"nodes": [...], "parts": P, "states": {...}}
//   wait_down ID MS   -> {"down_after_ms": T, "banner": "..."}
//   wait_transition MS -> {"summary": "...", "rows": [{node, partition}]}
//   shot NAME         -> {"file": path}
const { chromium } = require("playwright-core");
const readline = require("readline");
const path = require("path");

(async () => {
  const [url, dir] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  await page.goto(url);
  const rl = readline.createInterface({ input: process.stdin });
  const out = o => process.stdout.write(JSON.stringify(o) + "\n");
  for await (const line of rl) {
    const [cmd, a, b] = line.trim().split(/\s+/);
    try {
      if (cmd === "wait_nodes") {
        await page.waitForFunction(n => document.querySelectorAll("tr.node").length >= n &&
          document.querySelectorAll("path.part").length > 0 &&
          [...document.querySelectorAll("tr.node")].filter(t =>
            t.querySelector("td:nth-child(8)").textContent !== "–").length >= n,
          Number(a), { timeout: 15000 });
        const r = await page.evaluate(() => ({
          nodes: [...document.querySelectorAll("tr.node")].map(t => t.dataset.node),
          states: Object.fromEntries([...document.querySelectorAll("tr.node")].map(t => [t.dataset.node, t.dataset.state])),
          parts: document.querySelectorAll("path.part").length,
          owners: [...new Set([...document.querySelectorAll("path.part")].map(p => p.dataset.owner))],
          filled: [...document.querySelectorAll("tr.node")].filter(t => t.dataset.state === "up" &&
            t.querySelector("td:nth-child(8)").textContent !== "–").length,
        }));
        out({ ...r, errors });
      } else if (cmd === "wait_down") {
        const t0 = Date.now();
        await page.waitForFunction(id => {
          const row = [...document.querySelectorAll("tr.node")].find(t => t.dataset.node === id);
          const ban = document.getElementById("banner");
          return row && row.dataset.state === "down" && ban.className === "bad" && ban.textContent.includes(id);
        }, a, { timeout: Number(b) });
        out({ down_after_ms: Date.now() - t0, banner: await page.textContent("#banner"), errors });
      } else if (cmd === "wait_transition") {
        await page.waitForFunction(() => !document.getElementById("transition").hidden &&
          document.querySelectorAll("tr.xfer").length > 0, null, { timeout: Number(a) });
        out({ summary: await page.textContent("#tr-summary"),
              rows: await page.evaluate(() => [...document.querySelectorAll("tr.xfer")].map(t =>
                ({ node: t.dataset.node, partition: Number(t.dataset.partition) }))),
              errors });
      } else if (cmd === "shot") {
        const file = path.join(dir, a + ".png");
        await page.screenshot({ path: file, fullPage: true });
        out({ file });
      } else if (cmd === "mobile") {
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(300);
        const w = await page.evaluate(() => document.documentElement.scrollWidth);
        out({ scroll_width: w });
      }
    } catch (e) {
      out({ error: String(e), errors });
    }
  }
  await browser.close();
})().catch(e => { process.stdout.write(JSON.stringify({ fatal: String(e) }) + "\n"); process.exit(1); });
