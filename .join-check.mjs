import puppeteer from "puppeteer";
import { spawn } from "node:child_process";
const main = process.argv[2], port = process.argv[3], page = process.argv[4] ?? "/";
const srv = spawn(process.execPath, [main, "--port", port, "--source", "test", "--keyframe-interval", "1"], { stdio: ["ignore", "pipe", "pipe"] });
await new Promise((r) => setTimeout(r, 2500));
const b = await puppeteer.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu"] });
const out = [];
for (let i = 0; i < 8; i++) {
  const ctx = await b.createBrowserContext();
  const p = await ctx.newPage();
  await p.setViewport({ width: 1280, height: 800 });
  await p.goto(`http://127.0.0.1:${port}${page}`, { waitUntil: "domcontentloaded" });
  await p.waitForFunction(() => Number(document.querySelector('.tile')?.dataset.firstPaintAt ?? 0) > 0, { timeout: 20000 });
  out.push(Number(await p.evaluate(() => document.querySelector('.tile').dataset.firstPaintAt)));
  await ctx.close();
  await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
}
out.sort((a, b) => a - b);
console.log(main, "p50", out[4], "all", out.map(Math.round).join(" "));
await b.close(); srv.kill("SIGINT");
