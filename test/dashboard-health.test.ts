// The destination health panel and the attempt inspector in a real browser (issue 15, "Seeing what
// happened"): counts, the failures-by-code table and the charts' bars of a destination that fails
// some leads; a csrf destination's attempt opened step by step, with no secret on the page.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { openBrowser, screenshots } from "./helpers/browser.ts";
import { ADMIN_TOKEN, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, postLead, waitStatus } from "./helpers/leads.ts";

describe("dashboard: destination health and attempt inspector (real browser)", () => {
  let t: TestApp;
  let sb: Awaited<ReturnType<typeof startSandbox>>;
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  const shot = screenshots("dashboard-health", () => page);

  before(async () => {
    sb = await startSandbox();
    t = await startApp();
    ({ page, pageErrors, close: closeBrowser } = await openBrowser());
  });
  after(async () => {
    await closeBrowser?.();
    await t?.close();
    await sb?.close();
  });

  const signIn = async () => {
    await page.goto(`${t.url}/dashboard`);
    await page.fill("#key", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");
    await page.locator("[data-count=failed]").waitFor();
  };

  test("health panel: state, counts, charts with bars, failures by code, 24 h / 7 days", async () => {
    const name = "flaky-crm";
    await createDestination(t, name, {
      url: `${sb.url}/sink/flaky`,
      retry: { delaysMs: [50], jitter: 0 },
      rateLimit: { perSecond: 50 },
    });
    sb.sink.behave({ status: 400, times: 2 });
    for (const id of [await postLead(t, name), await postLead(t, name)]) await waitStatus(t, id, "failed");
    for (const id of [await postLead(t, name), await postLead(t, name), await postLead(t, name)])
      await waitStatus(t, id, "delivered");

    await signIn();
    // The overview's name opens the destination's page, the health panel above its settings; an
    // old #/health/<name> link lands there too.
    await page.click(`tr[data-destination=${name}] a[data-destination-link]`);
    await page.waitForURL(/#\/destinations\/[^/?]+$/);
    await page.locator(".dest-head h1", { hasText: name }).waitFor();
    await page.goto(`${t.url}/dashboard#/health/${name}`);
    await page.waitForURL(new RegExp(`#/destinations/${name}$`));
    await page.locator(".dest-head h1", { hasText: name }).waitFor();
    const totals = page.locator("[data-totals]");
    await totals.waitFor();
    assert.equal(await totals.textContent(), "5 attempts: 3 delivered, 0 retrying, 2 failed");
    const facts = (await page.locator("[data-health]").innerText()).replace(/\s+/g, " ");
    assert.match(facts, /State active/);
    assert.match(facts, /Success, last hour 60 % of 5 attempts/);
    assert.match(facts, /Last error http_400/);
    assert.match(facts, /Rate limit 50 per second/);

    // The charts: one bar for this hour, green and red segments; latency bars.
    const outcomes = page.locator("svg[data-chart=outcomes]");
    assert.equal(await outcomes.getAttribute("role"), "img");
    assert.equal(await outcomes.locator("g.bar").count(), 1);
    assert.equal(await outcomes.locator("rect[data-outcome=delivered]").count(), 1);
    assert.equal(await outcomes.locator("rect[data-outcome=failed]").count(), 1);
    const heights = await outcomes
      .locator("rect")
      .evaluateAll((rs) => rs.map((r) => Number(r.getAttribute("height"))));
    assert.ok(heights.every((x) => x > 0));
    assert.match(
      (await outcomes.locator("g.bar title").textContent()) ?? "",
      /5 attempts — 3 delivered, 0 retrying, 2 failed/,
    );
    assert.equal(await page.locator("svg[data-chart=latency] rect[data-latency=p95]").count(), 1);
    assert.equal(await outcomes.locator("line.grid").count(), 3, "the y axis' grid lines");
    assert.deepEqual(
      (await outcomes.locator("text.axis").allTextContents()).slice(0, 3),
      ["0", "2.5", "5"],
      "y axis labelled 0, half and the top (5 attempts): each grid line with its own value",
    );

    // Failures grouped by code, with a link to those deliveries.
    const row = page.locator("table[data-failures] tr[data-code=http_400]");
    assert.deepEqual((await row.locator("td").allInnerTexts()).slice(0, 2), ["http_400", "2"]);
    assert.equal(
      await row.locator("a").getAttribute("href"),
      "#/deliveries?destination=flaky-crm&errorCode=http_400",
    );
    await shot("1-health-24h");

    // 7 days: 168 hourly buckets, the same counts; the toggle says which is on.
    await page.click("button[data-window='7d']");
    await page.locator("h2", { hasText: "last 7 days" }).first().waitFor();
    assert.equal(await page.getAttribute("button[data-window='7d']", "aria-pressed"), "true");
    assert.equal(await page.getAttribute("button[data-window='24h']", "aria-pressed"), "false");
    assert.equal(await totals.textContent(), "5 attempts: 3 delivered, 0 retrying, 2 failed");
    assert.equal(await outcomes.locator("g.bar").count(), 1);
    await shot("2-health-7d");
    assert.deepEqual(pageErrors, []);
  });

  test("attempt inspector: a csrf attempt's handshake and push, bodies and timing, no secret", async () => {
    const name = "csrf-crm";
    await createDestination(t, name, {
      url: `${sb.url}/csrf/leads`,
      auth: { type: "csrf", tokenUrl: `${sb.url}/csrf/token`, ...A.csrf },
    });
    const leadId = await postLead(t, name, { email: "inspect.me@example.com" });
    await waitStatus(t, leadId, "delivered");
    const received = sb.csrf.state.leads.at(-1);
    assert.ok(received, "the csrf simulator got the lead");
    const csrfToken = String(received.headers["x-csrf-token"]);
    const cookie = String(received.headers["cookie"]);
    assert.ok(csrfToken.length > 8 && cookie.includes("SAP_SESSIONID"));

    await page.goto(`${t.url}/dashboard#/deliveries?destination=${name}`);
    const delivery = page.locator("tr[data-delivery][data-status=delivered]");
    await delivery.waitFor();
    await delivery.locator("button.toggle").click();
    const inspect = page.locator("tr.detail button[data-inspect='1']");
    await inspect.waitFor();
    await inspect.focus();
    await page.keyboard.press("Enter"); // works with the keyboard
    const panel = page.locator("[data-inspector='1']");
    await panel.waitFor();
    assert.equal(await inspect.getAttribute("aria-expanded"), "true");

    const steps = await panel
      .locator("article[data-step]")
      .evaluateAll((as) => as.map((a) => a.getAttribute("data-step")));
    assert.deepEqual(steps, ["auth:csrf", "push"]);
    const handshake = panel.locator("article[data-step='auth:csrf']");
    const head = (await handshake.locator("header").innerText()).replace(/\s+/g, " ");
    assert.match(head, /GET .*\/csrf\/token HTTP 200 at \+\d+ ms, took \d+ ms/);
    const shake = await handshake.innerText();
    assert.match(
      shake,
      /authorization\s+\[redacted\]/i,
      "the handshake's request headers, redacted as stored",
    );
    assert.match(shake, /set-cookie\s+\[redacted\]/i, "its answer's headers");
    assert.match(shake, /EntitySets/, "its answer's body");
    const push = panel.locator("article[data-step=push]");
    assert.match(
      (await push.locator("header").innerText()).replace(/\s+/g, " "),
      /POST .*\/csrf\/leads HTTP 20\d/,
    );
    const body = await push.locator("pre.request-body").textContent();
    assert.match(body ?? "", /inspect\.me@example\.com/, "the request body sent");
    assert.match(await push.innerText(), /authorization\s+\[redacted\]/i);
    assert.match(await push.innerText(), /cookie\s+\[redacted\]/i);
    assert.equal(await push.locator("svg.step-time rect").count(), 1);
    await shot("3-inspector-csrf");

    // Nothing secret anywhere on the page: the password, its Basic form, the token, the session.
    const html = await page.content();
    const basic = Buffer.from(`${A.csrf.username}:${A.csrf.password}`).toString("base64");
    for (const secret of [
      A.csrf.password,
      basic,
      csrfToken,
      cookie.split(";")[0]!.split("=")[1]!,
      ADMIN_TOKEN,
    ])
      assert.ok(!html.includes(secret), `the page shows a secret (${secret.slice(0, 4)}…)`);

    await inspect.click();
    await panel.waitFor({ state: "detached" });
    assert.deepEqual(pageErrors, []);
  });
});
