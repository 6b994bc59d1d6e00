// The dashboard's lead pages (real browser): a lead's timeline in order, search by a phone in
// another spelling, failed deliveries of the last hour filtered (in the URL), replayed after a
// shown count is confirmed, and both lists downloaded as CSV.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { parse } from "csv-parse/sync";
import type { Page } from "playwright-core";
import { startSandbox } from "../src/sandbox/server.ts";
import { openBrowser, screenshots } from "./helpers/browser.ts";
import { ADMIN_TOKEN, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination } from "./helpers/leads.ts";

describe("dashboard: leads, timeline, filters, replay, CSV (real browser)", () => {
  let t: TestApp;
  let ok: Awaited<ReturnType<typeof startSandbox>>;
  let bad: Awaited<ReturnType<typeof startSandbox>>;
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  const shot = screenshots("dashboard-leads", () => page);

  before(async () => {
    ok = await startSandbox();
    bad = await startSandbox();
    bad.sink.behave({ status: 503 });
    t = await startApp();
    await createDestination(t, "crm-good", { url: `${ok.url}/sink/good`, retry: { delaysMs: [] } });
    await createDestination(t, "crm-flaky", { url: `${bad.url}/sink/flaky`, retry: { delaysMs: [] } });
    ({ page, pageErrors, close: closeBrowser } = await openBrowser());
  });
  after(async () => {
    await closeBrowser?.();
    await t?.close();
    await ok?.close();
    await bad?.close();
  });

  const download = async (button: string) => {
    const [file] = await Promise.all([page.waitForEvent("download"), page.click(button)]);
    const path = await file.path();
    return parse(readFileSync(path, "utf8"), { columns: true }) as Record<string, string>[];
  };

  test("timeline, phone search, last hour's failures replayed after a confirmed count, CSV", async () => {
    const ids: string[] = [];
    for (const lead of [
      { name: "Priya", lastName: "Sharma", phone: "+91 98200 12345", city: "Pune", source: "crm-flaky" },
      { name: "Rahul", email: "rahul@leads.test", source: "crm-flaky" },
      { name: "=2+3", email: "eve@leads.test", source: "crm-good" },
    ]) {
      const r = await t.api("POST", "/v1/leads", lead);
      assert.equal(r.status, 201, r.text);
      ids.push(r.body.id);
    }
    await eventually(async () => {
      const s = (await t.api("GET", "/v1/stats")).body;
      return s.deliveries.failed === 2 && s.deliveries.delivered === 1;
    });

    await page.goto(`${t.url}/dashboard#/leads`);
    await page.fill("#key", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");

    // Search by the phone in another spelling: one lead, whose page shows its timeline in order.
    await page.fill("input[type=search]", "098200-12345");
    await eventually(
      async () => (await page.locator("tr[data-lead]").count()) === 1,
      10_000,
      "one lead found by phone",
    );
    assert.equal(await page.locator("tr[data-lead]").getAttribute("data-lead"), ids[0]);
    assert.match(page.url(), /#\/leads\?q=098200-12345$/);
    await shot("search-by-phone");
    await page.click("tr[data-lead] .lead-name a");
    await page.locator("h1.lead-name", { hasText: "Priya Sharma" }).waitFor();
    await page.locator("tr[data-kind=failed]").waitFor();
    const kinds = await page.locator("tr[data-kind]").evaluateAll((rows) => rows.map((r) => r.dataset.kind));
    assert.deepEqual(
      kinds.filter((k) => k !== "not_routed"),
      ["accepted", "routed", "attempt", "failed"],
    );
    const routing = page.locator("tr[data-routing=crm-good]");
    assert.equal(await routing.getAttribute("data-decision"), "filtered");
    assert.match(
      (await page.locator("tr[data-kind=accepted]").innerText()) ?? "",
      /from crm-flaky with API key admin token/,
    );
    assert.match((await page.locator("tr[data-kind=attempt]").innerText()) ?? "", /HTTP 503/);
    await shot("timeline");

    // Failed deliveries of the last hour: the filter lives in the URL.
    await page.click("nav a[data-view=deliveries]");
    await page.selectOption("select[aria-label=Status]", "failed");
    await page.selectOption("select[aria-label=Time]", "1h");
    await eventually(
      async () => (await page.locator("tr[data-delivery][data-status=failed]").count()) === 2,
      10_000,
      "2 failed rows",
    );
    assert.match(page.url(), /#\/deliveries\?status=failed&range=1h$/);
    const failedCsv = await download("button[data-export='deliveries.csv']");
    assert.deepEqual(failedCsv.map((r) => r.leadId).sort(), [ids[0], ids[1]].sort());
    assert.deepEqual(
      failedCsv.map((r) => r.lastErrorCode),
      ["http_503", "http_503"],
    );
    // A linked view opens with the same filter.
    await page.goto(`${t.url}/dashboard#/deliveries?status=failed&range=1h&destination=crm-flaky`);
    await page.reload();
    await eventually(
      async () => (await page.locator("tr[data-delivery][data-status=failed]").count()) === 2,
      10_000,
      "2 failed rows, linked",
    );
    assert.equal(await page.locator("select[aria-label=Destination]").inputValue(), "crm-flaky");

    // Replay them: first the count, then the confirmation.
    bad.sink.behave({ times: 0 });
    await page.click("button[data-replay=filter]");
    const count = page.locator("[data-replay-count]");
    await count.waitFor();
    assert.equal(await count.getAttribute("data-replay-count"), "2");
    assert.equal(
      (await count.textContent())?.trim(),
      "Send 2 failed deliveries of crm-flaky from the last hour again?",
    );
    await shot("replay-confirm");
    assert.equal(bad.sink.counts.ok, 0, "nothing replayed before the confirmation");
    await page.keyboard.press("Enter"); // the confirm button has the focus
    await page.locator("#banner", { hasText: "2 deliveries were queued again." }).waitFor();
    await eventually(() => bad.sink.counts.ok === 2, 10_000, "2 replayed pushes delivered");
    await eventually(
      async () => (await page.locator("tr[data-delivery]").count()) === 0,
      10_000,
      "no failed delivery left",
    );
    await shot("replayed");

    // The lead list as CSV: the search's rows, formula-safe.
    await page.click("nav a[data-view=leads]");
    await page.fill("input[type=search]", "eve@");
    await eventually(async () => (await page.locator("tr[data-lead]").count()) === 1, 10_000, "eve");
    const leadsCsv = await download("button[data-export='leads.csv']");
    assert.equal(leadsCsv.length, 1);
    assert.equal(leadsCsv[0]?.id, ids[2]);
    assert.equal(leadsCsv[0]?.name, "'=2+3");
    await shot("leads");
    assert.deepEqual(pageErrors, []);
  });
});
