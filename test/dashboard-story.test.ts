// The operator's console walked end to end in one browser (issue 15, "Done when"), against the
// sandbox: sign in, create a csrf destination from the form, Test it with a wrong password (the
// failure shows), fix it, Test again (the redacted request shows, the password never does), save,
// send a test lead and a real one, open the lead's timeline, inspect the attempt's request body,
// pause and resume, connect an oauth2_code destination through the simulated hosted UI, revoke a
// key, make deliveries fail and replay the last hour's failures once the sandbox has recovered.
// A screenshot per step goes into the folder the test prints; each step asserts what the page shows.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Locator, Page } from "playwright-core";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { openBrowser, screenshots } from "./helpers/browser.ts";
import { ADMIN_TOKEN, eventually, freePort, startApp, type TestApp } from "./helpers/harness.ts";

const WRONG = "wrong-pass-5528";

void describe("dashboard: the operator's whole story (real browser, sandbox)", () => {
  let sb: Awaited<ReturnType<typeof startSandbox>>;
  let t: TestApp;
  let publicUrl = "";
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  const shot = screenshots("dashboard-story", () => page);
  const text = async (l: Locator) => ((await l.innerText()) ?? "").trim();
  /** Presses Tab until `target` has the focus (at most `max` times): the keyboard reaches it. */
  async function tabTo(target: Locator, max = 60) {
    for (let i = 0; i < max; i++) {
      if (await target.evaluate((el) => el === document.activeElement)) return;
      await page.keyboard.press("Tab");
    }
    assert.fail(`Tab never reached ${String(target)}`);
  }
  const bannerSays = (re: RegExp | string) => page.locator("#banner", { hasText: re }).waitFor();

  before(async () => {
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    sb = await startSandbox({ redirectUris: [`${publicUrl}/v1/oauth/callback`] });
    t = await startApp({
      env: { PORT: String(port), LEADPUSH_PUBLIC_URL: publicUrl, LEADPUSH_DUPLICATE_WINDOW_DAYS: "0" },
    });
    ({ page, pageErrors, close: closeBrowser } = await openBrowser());
  });
  after(async () => {
    await closeBrowser?.();
    await t?.close();
    await sb?.close();
  });

  void test("sign in, create, test, fix, save, send, timeline, inspect, pause, connect, revoke, replay", async () => {
    const csrf = sb.simulators.csrf as unknown as {
      state: { leads: { body: Record<string, unknown> }[] };
      control(c: Record<string, unknown>): void;
    };

    // ---- Sign in: an empty overview points to the New destination page.
    await page.goto(`${publicUrl}/dashboard`);
    await page.fill("#key", ADMIN_TOKEN);
    await page.press("#key", "Enter");
    await page.locator("h1", { hasText: "Overview" }).waitFor();
    const empty = page.locator("main td.muted", { hasText: "No destinations yet" });
    assert.match(await text(empty), /No destinations yet: create one with New destination\./);
    await shot("signed-in-empty");
    await empty.locator("a", { hasText: "New destination" }).click();
    await page.locator("h1", { hasText: "New destination" }).waitFor();
    assert.match(page.url(), /#\/destinations\/new$/);

    // ---- A csrf destination from the form, with a wrong password.
    await page.fill('[data-path="name"] input', "crm-csrf");
    await page.selectOption("#dest-connector", "http");
    await page.fill('[data-path="url"] input', `${sb.url}/csrf/leads`);
    await page.selectOption("#dest-auth-type", "csrf");
    await page.fill('[data-path="auth.tokenUrl"] input', `${sb.url}/csrf/token`);
    await page.fill('[data-path="auth.username"] input', A.csrf.username);
    await page.fill('[data-path="auth.password"] input', WRONG);
    // No retries: a vendor failure fails the delivery at once (the replay step needs failures).
    await page.click("details.settings summary");
    await page.fill('[data-path="retry.delaysMs"] textarea', "[]");
    await shot("form-filled");

    // Test (the keyboard only: Tab to the button, Enter): the sign-in fails, and says so in words.
    await page.focus('[data-path="auth.password"] input');
    const testButton = page.locator("button[data-action=test]");
    await tabTo(testButton);
    await page.keyboard.press("Enter");
    const failed = page.locator('[data-test-result="auth_failed"] [data-auth=failed]');
    await failed.waitFor();
    await shot("test-wrong-password");
    assert.equal(
      await text(failed),
      "Sign-in (csrf) failed — auth_rejected: token endpoint answered 401: Logon failed",
    );
    assert.match(
      await text(page.locator(".test-result [data-outcome]")),
      /^Outcome: retryable failure \(a delivery would be tried again\) — auth_rejected/,
    );
    // The refused sign-in's exchange, labelled: its request (password redacted) and the answer.
    const token = page.locator('.test-result .exchange[data-step="auth:csrf"]');
    assert.match(await text(token.locator("[data-part=request-headers]")), /authorization\s+\[redacted\]/);
    assert.equal(await text(token.locator("h4").nth(1)), "Response 401");
    assert.equal(await text(token.locator("[data-part=response-body]")), "Logon failed");
    assert.equal(csrf.state.leads.length, 0);

    // Fixed: Test again (Enter on the focused button): the redacted request that would be sent.
    await page.fill('[data-path="auth.password"] input', A.csrf.password);
    await testButton.focus();
    await page.keyboard.press("Enter");
    await page.locator('[data-test-result="ok"] [data-outcome=dry_run]').waitFor();
    assert.equal(await text(page.locator("[data-auth=ok]")), "Sign-in (csrf): OK");
    const push = page.locator('.test-result .exchange[data-step^="push"]');
    const pushHeaders = await text(push.locator("[data-part=request-headers]"));
    assert.match(pushHeaders, /x-csrf-token\s+\[redacted\]/);
    assert.match(pushHeaders, /authorization\s+\[redacted\]/);
    assert.match(await text(push.locator("[data-part=request-body]")), /"name": "Asha"/);
    // Labelled as in the inspector: the push of a dry run was not sent, so it has no answer.
    assert.match(
      await text(push.locator("header")),
      /push \(dry run: not sent\)\s+POST\s+\S+\/csrf\/leads\s+not sent/,
    );
    assert.equal(await text(push.locator("h4").nth(1)), "Not sent");
    assert.doesNotMatch(await page.content(), new RegExp(A.csrf.password));
    assert.equal(csrf.state.leads.length, 0, "a test sends nothing");
    await shot("test-ok-redacted");

    // Save: the destination's page, active, its password set and never shown.
    await page.click("button[data-action=save]");
    await page.locator(".dest-head h1", { hasText: "crm-csrf" }).waitFor();
    await bannerSays("crm-csrf created.");
    assert.equal(await text(page.locator(".dest-head h1 .badge")), "active");
    assert.equal(await text(page.locator('[data-path="auth.password"] [data-secret-state]')), "set");
    assert.doesNotMatch(await page.content(), new RegExp(A.csrf.password));
    const destPage = page.url();
    // Its Delete button can be read (red on red once), the empty charts' axes say 0, 0.5, 1.
    const del = await page
      .locator("button[data-action=delete]")
      .evaluate((b) => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]);
    assert.notEqual(del[0], del[1], "the Delete button's text has its own colour");
    assert.deepEqual(
      (await page.locator("svg[data-chart=outcomes] text.axis").allTextContents()).slice(0, 3),
      ["0", "0.5", "1"],
    );
    assert.equal(
      await page.locator(".dest-head a[data-deliveries-link]").getAttribute("href"),
      "#/deliveries?destination=crm-csrf",
    );
    await shot("saved");

    // ---- Send test lead (the saved form), then a real lead through POST /v1/leads.
    await page.click("button[data-action=send]");
    await page.locator('[data-test-result="ok"] [data-outcome=delivered]').waitFor();
    assert.match(await text(page.locator("[data-outcome=delivered]")), /^Outcome: delivered/);
    assert.equal(csrf.state.leads.length, 1);
    await shot("test-lead-sent");
    const posted = await t.api("POST", "/v1/leads", {
      name: "Meera",
      lastName: "Iyer",
      email: "meera@story.test",
      phone: "+91 98450 11223",
      city: "Chennai",
    });
    assert.equal(posted.status, 201, posted.text);
    const leadId = posted.body.id as string;
    await eventually(() => csrf.state.leads.length === 2, 10_000, "the real lead reached the vendor");

    // ---- Its timeline: found by search, accepted → routed → attempt → delivered.
    await page.click("nav a[data-view=leads]");
    await page.fill("input[type=search]", "meera@");
    await page.locator(`tr[data-lead="${leadId}"]`).waitFor();
    await page.click(`tr[data-lead="${leadId}"] .lead-name a`);
    await page.locator("h1.lead-name", { hasText: "Meera Iyer" }).waitFor();
    await page.locator("tr[data-kind=delivered]").waitFor();
    const kinds = await page.locator("tr[data-kind]").evaluateAll((rows) => rows.map((r) => r.dataset.kind));
    assert.deepEqual(kinds, ["accepted", "routed", "attempt", "delivered"]);
    assert.match(await text(page.locator("tr[data-kind=attempt]")), /crm-csrf.*HTTP 201/s);
    await shot("timeline");

    // The destination's name links to its page.
    assert.equal(
      await page.locator("tr[data-kind=attempt] a[data-destination-link]").getAttribute("href"),
      new URL(destPage).hash,
    );

    // ---- The attempt's request body, in the inspector opened from the timeline (Inspect).
    const inspect = page.locator("tr[data-kind=attempt] button[data-inspect]");
    assert.equal(await text(inspect), "Inspect");
    await inspect.click();
    const inspector = page.locator("[data-inspector='1']");
    await inspector.waitFor();
    const steps = await inspector.locator(".exchange").evaluateAll((els) => els.map((e) => e.dataset.step));
    assert.ok(steps.some((s) => s?.startsWith("auth")) && steps.at(-1)?.startsWith("push"), String(steps));
    const body = await text(inspector.locator(".exchange[data-step^=push] .request-body"));
    assert.match(body, /"name": "Meera"/);
    assert.match(body, /"email": "meera@story.test"/);
    assert.match(
      await text(inspector.locator(".exchange[data-step^=push] .headers").first()),
      /x-csrf-token\s+\[redacted\]/,
    );
    assert.doesNotMatch(await page.content(), new RegExp(A.csrf.password));
    await shot("inspector");

    // ---- Pause and resume, from the destination's page: a lead sent meanwhile waits, then goes.
    await page.goto(destPage);
    await page.locator(".dest-head h1", { hasText: "crm-csrf" }).waitFor();
    await page.click("button[data-action=pause]");
    await page.locator('.dest-head[data-state="paused"]').waitFor();
    await bannerSays("crm-csrf paused: new deliveries wait.");
    assert.equal(await text(page.locator(".dest-head h1 .badge")), "paused");
    const waiting = await t.api("POST", "/v1/leads", { name: "Paused", email: "paused@story.test" });
    assert.equal(waiting.status, 201, waiting.text);
    await shot("paused");
    await page.click("button[data-action=resume]");
    await page.locator('.dest-head[data-state="active"]').waitFor();
    await bannerSays("crm-csrf resumed: its waiting deliveries go now.");
    await eventually(() => csrf.state.leads.length === 3, 10_000, "the waiting lead went after resume");
    await shot("resumed");

    // ---- Connect an oauth2_code destination from the dashboard, through the hosted UI's sign-in page.
    const E = A.eminence;
    const emi = await t.api("POST", "/v1/destinations", {
      name: "eminence",
      connector: "eminence",
      url: `${sb.url}/eminence/leads`,
      filter: 'source = "eminence"',
      auth: {
        type: "oauth2_code",
        authorizeUrl: `${sb.url}/hosted-ui/oauth2/authorize`,
        tokenUrl: `${sb.url}/hosted-ui/oauth2/token`,
        clientId: E.clientId,
        clientSecret: E.clientSecret,
      },
      options: { assistantId: 7 },
    });
    assert.equal(emi.status, 201, emi.text);
    const ctl = await fetch(`${sb.url}/hosted-ui/_control`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ autoLogin: false }),
    });
    assert.equal(ctl.status, 200, await ctl.text());
    await page.click("nav a[data-view=overview]");
    const emiRow = page.locator('tr[data-destination="eminence"]');
    await emiRow.locator(".badge", { hasText: "needs_reconnect" }).waitFor();
    await shot("needs-reconnect");
    await emiRow.locator("a[data-destination-link]").click();
    await page.locator(".dest-head h1", { hasText: "eminence" }).waitFor();
    assert.equal(await text(page.locator(".dest-head h1 .badge")), "needs_reconnect");
    assert.equal(
      await text(page.locator(".dest-head [data-connect-hint]")),
      "Needs a browser connect (oauth2_code).",
    );
    await page.click('.dest-head button[data-connect="eminence"]');
    await page.locator("input[name=username]").waitFor(); // the provider's sign-in page
    await page.fill("input[name=username]", E.username);
    await page.fill("input[name=password]", E.password);
    await shot("provider-sign-in");
    await Promise.all([
      page.waitForURL(/\/dashboard#\/destinations\/[^?]+\?connected=1$/),
      page.press("input[name=password]", "Enter"),
    ]);
    await bannerSays("Connected");
    await page.locator(".dest-head h1 .badge", { hasText: "active" }).waitFor();
    assert.equal(await text(page.locator('.dest-head button[data-connect="eminence"]')), "Reconnect");
    assert.equal(await page.locator(".dest-head [data-connect-hint]").count(), 0, "no stale connect hint");
    assert.equal((await t.api("GET", "/v1/destinations/eminence")).body.state, "active");
    await shot("connected");

    // ---- Keys: create one, revoke it after the confirmation: it is refused at once.
    await page.click("nav a[data-view=keys]");
    await page.locator("h1", { hasText: "API keys" }).waitFor();
    await page.fill("#key-name", "website-form");
    await page.selectOption("#key-scope", "ingest");
    await page.press("#key-name", "Enter");
    const created = await page.locator("#new-key").inputValue();
    const ingest = (key: string) =>
      fetch(`${publicUrl}/v1/leads`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Form", email: `form-${Math.random()}@story.test` }),
      });
    assert.equal((await ingest(created)).status, 201);
    await page.getByRole("button", { name: "Done" }).click();
    const keyRow = page.locator('tr[data-key="website-form"]');
    assert.match(await text(keyRow), /ingest\s+lp_\S+…/);
    let asked = "";
    page.once("dialog", (d) => {
      asked = d.message();
      void d.accept();
    });
    await keyRow.locator("button[data-revoke]").click();
    await keyRow.locator(".badge", { hasText: "revoked" }).waitFor();
    await bannerSays('Key "website-form" was revoked');
    assert.match(asked, /Revoke the key "website-form"/);
    assert.equal((await ingest(created)).status, 401, "the revoked key is refused");
    await shot("key-revoked");

    // ---- The vendor fails: two leads fail (no retries); the last hour's failures are replayed
    // from the Deliveries view once it recovered: the count first, confirmed with the keyboard.
    await eventually(() => csrf.state.leads.length === 4, 10_000, "the key's lead was delivered");
    csrf.control({ leadsEndpoint: "fail", leadsFailStatus: 503 });
    const failing: string[] = [];
    for (const name of ["Ravi", "Sunita"]) {
      const r = await t.api("POST", "/v1/leads", { name, email: `${name.toLowerCase()}@story.test` });
      assert.equal(r.status, 201, r.text);
      failing.push(r.body.id);
    }
    await eventually(
      async () =>
        (await t.api("GET", "/v1/deliveries?status=failed&destination=crm-csrf")).body.data.length === 2,
      10_000,
      "two failed deliveries",
    );
    await page.click("nav a[data-view=deliveries]");
    await page.selectOption("select[aria-label=Destination]", "crm-csrf");
    await page.selectOption("select[aria-label=Status]", "failed");
    await page.selectOption("select[aria-label=Time]", "1h");
    await eventually(
      async () => (await page.locator("tr[data-delivery][data-status=failed]").count()) === 2,
      10_000,
      "2 failed rows",
    );
    assert.match(page.url(), /#\/deliveries\?status=failed&destination=crm-csrf&range=1h$/);
    assert.match(await text(page.locator("tr[data-delivery]").first()), /http_503: client answered 503/);
    await shot("failed-deliveries");
    csrf.control({ leadsEndpoint: "ok" }); // the vendor is back
    const replay = page.locator("button[data-replay=filter]");
    await replay.focus();
    await page.keyboard.press("Enter");
    const count = page.locator("[data-replay-count]");
    await count.waitFor();
    assert.equal(await text(count), "Send 2 failed deliveries of crm-csrf from the last hour again?");
    await shot("replay-confirm");
    assert.equal(csrf.state.leads.length, 4, "nothing sent before the confirmation");
    await page.keyboard.press("Enter"); // the focused Replay 2
    await bannerSays("2 deliveries were queued again.");
    await eventually(() => csrf.state.leads.length === 6, 10_000, "both replayed leads delivered");
    await eventually(
      async () => (await page.locator("tr[data-delivery]").count()) === 0,
      10_000,
      "no failed delivery left in the last hour",
    );
    assert.match(await text(page.locator("main tbody")), /No deliveries match/);
    await page.selectOption("select[aria-label=Status]", "delivered");
    await eventually(
      async () => (await page.locator("tr[data-delivery][data-status=delivered]").count()) === 5,
      10_000,
      "five delivered in the last hour",
    );
    await shot("replayed");

    assert.deepEqual(pageErrors, []);
  });
});
