// Debian's chromium driven by playwright-core, for the dashboard tests: one persistent profile in a
// temp folder, page errors collected (a test ends with `assert.deepEqual(pageErrors, [])`).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.LEADPUSH_CHROMIUM ?? "/usr/bin/chromium";

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and console errors (failed resource loads excepted: a 401 is one). */
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the dashboard tests drive Debian's chromium, and ${CHROMIUM} is missing: ` +
        "install it with `apt-get update && apt-get install -y chromium` (or set LEADPUSH_CHROMIUM to a chromium binary)",
    );
  }
  const profile = mkdtempSync(join(tmpdir(), "leadpush-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  page.on("console", (m) => {
    // The browser logs every 4xx/5xx answer (a wrong key's 401 is expected): not a page error.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
  });
  return {
    context,
    page,
    pageErrors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A browser test's screenshots: a temp folder (printed once, for a person to look at) and a
 * `shot(label)` that saves the page as it is now, numbered in order.
 */
export function screenshots(name: string, page: () => Page): (label: string) => Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), `leadpush-${name}-`));
  console.log(`screenshots: ${dir}`);
  let n = 0;
  return (label) =>
    page().screenshot({ path: join(dir, `${String(++n).padStart(2, "0")}-${label}.png`), fullPage: true });
}
