/**
 * The dashboard's first useful paint in Debian's Chromium (playwright-core), each sample in a fresh
 * browser context (nothing cached): from navigation to the Overview's money row, and to the Jobs
 * page's first row. Skipped (undefined) where /usr/bin/chromium is not installed.
 */
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import type { BenchService, Summary } from "./harness.js";
import { summary } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";

export async function firstPaint(svc: BenchService, samples: number): Promise<{ page: string; latency: Summary }[] | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const pages: [string, string, string][] = [
      ["Overview", "/ui/", 'tr[data-queue="money"] [data-field="depth"]'],
      ["Jobs", "/ui/jobs?queue=money", "table.jobs tbody tr"],
    ];
    const out: { page: string; latency: Summary }[] = [];
    for (const [name, path, selector] of pages) {
      const latencies: number[] = [];
      for (let i = 0; i <= samples; i++) {
        const context = await browser.newContext();
        await context.addInitScript((token) => sessionStorage.setItem("queue-service.token", token), svc.token);
        const page = await context.newPage();
        const t0 = performance.now();
        await page.goto(`${svc.baseUrl}${path}`);
        await page.locator(selector).first().waitFor({ timeout: 30_000 });
        if (i > 0) latencies.push(performance.now() - t0); // the first load warms the service, not the browser
        await context.close();
      }
      out.push({ page: name, latency: summary(latencies) });
    }
    return out;
  } finally {
    await browser.close();
  }
}
