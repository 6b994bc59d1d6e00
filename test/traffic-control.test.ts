import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, deliveryOf, postLead, waitStatus } from "./helpers/leads.ts";
import { maxInWindow } from "./helpers/rate.ts";

// Traffic control per destination: the rate limit, holds after a 429/503 with Retry-After, the
// adaptive back-off after a 429 without it, and replays that leave room for live leads.

for (const backend of BACKENDS) {
  describe(`traffic control (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    /** A second vendor: keeps answering while the first one throttles. */
    let other: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      other = await startSandbox();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await sb.close();
      await other.close();
    });

    const pushesTo = (path: string) => sb.sink.received.filter((r) => r.path === path);

    test("rateLimit is validated: one of perSecond/perMinute, a positive rate", async () => {
      for (const rateLimit of [
        {},
        { perSecond: 1, perMinute: 60 },
        { perSecond: 0 },
        { perMinute: 5, x: 1 },
      ]) {
        const res = await t.api("POST", "/v1/destinations", {
          name: "bad-rate",
          connector: "http",
          url: `${sb.url}/sink/bad`,
          rateLimit,
        });
        assert.equal(res.status, 400, JSON.stringify(rateLimit));
        assert.equal(res.body.error.code, "invalid_destination");
        assert.ok(
          res.body.error.details.some((d: { path: string[] }) => d.path[0] === "rateLimit"),
          res.text,
        );
      }
    });

    test("the rate limit holds: at most perSecond + burst pushes in any second", async () => {
      await createDestination(t, "rl", { url: `${sb.url}/sink/rl`, rateLimit: { perSecond: 5, burst: 2 } });
      const ids: string[] = [];
      for (let i = 0; i < 14; i++) ids.push(await postLead(t, "rl"));
      await eventually(() => pushesTo("/rl").length >= 14, 15_000, "14 pushes");
      for (const id of ids) await waitStatus(t, id, "delivered");
      const times = pushesTo("/rl").map((r) => r.at);
      const most = maxInWindow(times, 1000);
      assert.ok(most <= 5 + 2, `${most} pushes within one second`);
      // 14 pushes at 5/s with a burst of 2 cannot take less than (14 - 2) / 5 s.
      const span = Math.max(...times) - Math.min(...times);
      assert.ok(span >= 2000, `14 pushes took ${span} ms`);
    });

    test("429 with Retry-After holds the whole destination; another destination keeps flowing", async () => {
      const held = await createDestination(t, "held", {
        url: `${sb.url}/sink/held`,
        retry: { delaysMs: [], jitter: 0 }, // no retry to spend: a spent one would fail the lead
      });
      await createDestination(t, "flowing", { url: `${other.url}/sink/flowing` });
      sb.sink.behave({ status: 429, retryAfter: 2, times: 1 });
      const first = await postLead(t, "held");
      const view = await eventually(
        async () => {
          const r = await t.api("GET", `/v1/destinations/${held.id}`);
          return r.body.hold ? r.body : undefined;
        },
        5000,
        "a hold on the destination",
      );
      assert.match(view.hold.reason, /http_429.*Retry-After 2 s/);
      assert.ok(Date.parse(view.hold.until) > Date.now(), view.hold.until);
      // While held: the destination's other leads wait, the other destination's go through.
      const waiting = [await postLead(t, "held"), await postLead(t, "held")];
      const flowing = [await postLead(t, "flowing"), await postLead(t, "flowing")];
      for (const id of flowing) await waitStatus(t, id, "delivered", 1500);
      assert.equal(pushesTo("/held").length, 1, "nothing pushed to the held destination");
      assert.equal((await deliveryOf(t, waiting[0] as string)).status, "pending");
      // After the hold every lead goes through; the 429 spent no retry.
      for (const id of [first, ...waiting]) await waitStatus(t, id, "delivered", 8000);
      const d = await deliveryOf(t, first);
      assert.deepEqual(
        d.attempts.map((a) => a.error?.code ?? "ok"),
        ["http_429", "ok"],
      );
      assert.equal(d.attemptCount, 1);
      assert.equal((await t.api("GET", `/v1/destinations/${held.id}`)).body.hold, null);
      // The hold was counted (and announced as a `destination:hold` event, which feeds the counter).
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(metrics, /leadpush_rate_limit_holds_total\{[^}]*\} [1-9]/);
    });

    test("a 503 with Retry-After holds the destination too", async () => {
      await createDestination(t, "held503", {
        url: `${sb.url}/sink/held503`,
        retry: { delaysMs: [], jitter: 0 },
      });
      sb.sink.behave({ status: 503, retryAfter: 1, times: 1 });
      const id = await postLead(t, "held503");
      const d = await waitStatus(t, id, "delivered", 8000);
      assert.deepEqual(
        d.attempts.map((a) => a.error?.code ?? "ok"),
        ["http_503", "ok"],
      );
      const gap =
        Date.parse((d.attempts[1] as unknown as { at: string }).at) -
        Date.parse((d.attempts[0] as unknown as { at: string }).at);
      assert.ok(gap >= 900, `pushed again ${gap} ms after the 503`);
    });

    test("429 without Retry-After backs off adaptively and spends no retry", async () => {
      const dest = await createDestination(t, "throttled", {
        url: `${sb.url}/sink/throttled`,
        retry: { delaysMs: [], jitter: 0 },
      });
      sb.sink.reset(); // forget the Retry-After of earlier tests
      sb.sink.behave({ status: 429, times: 2 });
      const id = await postLead(t, "throttled");
      const view = await eventually(
        async () => {
          const r = await t.api("GET", `/v1/destinations/${dest.id}`);
          return r.body.hold ? r.body : undefined;
        },
        5000,
        "a back-off hold",
      );
      assert.match(view.hold.reason, /http_429 without Retry-After \(throttle level 1\)/);
      const d = await waitStatus(t, id, "delivered", 10_000);
      assert.deepEqual(
        d.attempts.map((a) => a.error?.code ?? "ok"),
        ["http_429", "http_429", "ok"],
      );
      const at = d.attempts.map((a) => Date.parse((a as unknown as { at: string }).at));
      // Level 1 holds 1 s, level 2 holds 2 s: the back-off grows.
      assert.ok((at[1] as number) - (at[0] as number) >= 900, "first back-off");
      assert.ok((at[2] as number) - (at[1] as number) >= 1900, "second back-off is longer");
    });

    test("replay leaves room for live leads on a rate-limited destination", async () => {
      const dest = await createDestination(t, "replayed", {
        url: `${sb.url}/sink/replayed`,
        rateLimit: { perSecond: 8, burst: 1 },
      });
      const old: string[] = [];
      for (let i = 0; i < 8; i++) old.push(await postLead(t, "replayed"));
      for (const id of old) await waitStatus(t, id, "delivered", 8000);
      await t.api("PATCH", `/v1/destinations/${dest.id}`, { paused: true });
      const replay = await t.api("POST", "/v1/deliveries/replay", {
        destination: dest.name,
        status: ["delivered"],
      });
      assert.equal(replay.body.replayed, 8);
      const live: string[] = [];
      for (let i = 0; i < 4; i++) live.push(await postLead(t, "replayed"));
      const before = pushesTo("/replayed").length;
      await t.api("PATCH", `/v1/destinations/${dest.id}`, { paused: false });
      await eventually(() => pushesTo("/replayed").length >= before + 12, 10_000, "replays and live pushed");
      const order = pushesTo("/replayed")
        .slice(before)
        .map((r) =>
          (r.body as { id: string }).id && live.includes((r.body as { id: string }).id) ? "live" : "replay",
        );
      // Live leads are not queued behind the replays: they go within the first pushes.
      const lastLive = order.lastIndexOf("live");
      assert.ok(lastLive < 4 + 4, `pushes after resume: ${order.join(",")}`);
      const times = pushesTo("/replayed")
        .slice(before)
        .map((r) => r.at);
      assert.ok(maxInWindow(times, 1000) <= 8 + 1, "replays stay within the rate limit");
    });
  });
}
