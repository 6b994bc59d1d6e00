// Lead search (every phone spelling, prefixes, keyset pages), delivery filters (error code, time
// range), replay by filter (dry count == replayed, erased leads skipped, the cap), CSV exports
// (formula-safe cells) and the lead timeline — through the API, on SQLite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parse } from "csv-parse/sync";
import { startSandbox } from "../src/sandbox/server.ts";
import { safeCell } from "../src/api/exports.ts";
import { phoneQuery, prefixEnd, searchKey } from "../src/lead/search.ts";
import { ADMIN_TOKEN, BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination } from "./helpers/leads.ts";

test("search keys, phone queries, prefix ranges and formula-safe cells", () => {
  assert.equal(searchKey("  ÁSHA   Rani "), "ásha rani");
  assert.equal(searchKey(""), null);
  for (const spelling of ["+91 98200 12345", "098200-12345", "9820012345", "(0) 98200 12345"])
    assert.deepEqual(phoneQuery(spelling, "IN"), { exact: "+919820012345", prefixes: [] }, spelling);
  assert.deepEqual(phoneQuery("98200", "IN"), { prefixes: ["+98200", "+9198200"] });
  assert.deepEqual(phoneQuery("+44 20", "IN"), { prefixes: ["+4420"] });
  assert.equal(phoneQuery("asha", "IN"), undefined);
  assert.equal(phoneQuery("12", "IN"), undefined);
  assert.equal(prefixEnd("ash"), "asi");
  assert.equal(prefixEnd("a\u{ffff}"), "a\u{10000}");
  for (const [input, out] of [
    ["=1+1", "'=1+1"],
    ["+919820012345", "'+919820012345"],
    ["-2", "'-2"],
    ["@SUM(A1)", "'@SUM(A1)"],
    ["\t=1", "'\t=1"],
    ["Asha", "Asha"],
  ])
    assert.equal(safeCell(input as string), out);
});

for (const backend of BACKENDS) {
  describe(`leads search, filters, replay, export (${backend})`, () => {
    let t: TestApp;
    let ok: Awaited<ReturnType<typeof startSandbox>>;
    let bad: Awaited<ReturnType<typeof startSandbox>>;
    const ids: Record<string, string> = {};
    const search = async (q: string, extra = "") => {
      const r = await t.api("GET", `/v1/leads?q=${encodeURIComponent(q)}${extra}`);
      assert.equal(r.status, 200, r.text);
      return (r.body.data as { id: string }[]).map((l) => l.id);
    };

    before(async () => {
      ok = await startSandbox();
      bad = await startSandbox();
      bad.sink.behave({ status: 400 });
      t = await startApp({ backend });
      await createDestination(t, "good", { url: `${ok.url}/sink/good`, retry: { delaysMs: [] } });
      await createDestination(t, "flaky", { url: `${bad.url}/sink/flaky`, retry: { delaysMs: [] } });
      const post = async (key: string, lead: Record<string, unknown>) => {
        const r = await t.api("POST", "/v1/leads", lead);
        assert.equal(r.status, 201, r.text);
        ids[key] = r.body.id as string;
      };
      await post("priya", {
        name: "Priya",
        lastName: "Sharma",
        email: "Priya.S@Example.test",
        phone: "+91 98200 12345",
        city: "Navi Mumbai",
        source: "good",
      });
      await post("rahul", { name: "Rahul", email: "rahul@example.test", city: "Pune", source: "flaky" });
      await post("eve", { name: '=HYPERLINK("http://x")', email: "eve@example.test", source: "flaky" });
      await post("gone", { name: "Gone", email: "gone@example.test", source: "flaky" });
      for (let i = 0; i < 3; i++) await post(`page${i}`, { name: `Pagey${i}`, phone: `+9177000000${i}0` });
      await eventually(async () => {
        const s = (await t.api("GET", "/v1/stats")).body;
        return s.deliveries.delivered === 1 && s.deliveries.failed === 3;
      });
    });
    after(async () => {
      await t?.close();
      await ok?.close();
      await bad?.close();
    });

    test("search: name, last name, email, city, full name, phone in any format, external id", async () => {
      for (const q of ["+91 98200 12345", "098200-12345", "9820012345", "98200", "+9198200"])
        assert.deepEqual(await search(q), [ids.priya], q);
      assert.deepEqual(await search("PRI"), [ids.priya]);
      assert.deepEqual(await search("sharm"), [ids.priya]);
      assert.deepEqual(await search("priya.s@"), [ids.priya]);
      assert.deepEqual(await search("navi mu"), [ids.priya]);
      assert.deepEqual(await search("Priya Sha"), [ids.priya]);
      assert.deepEqual(await search("pune"), [ids.rahul]);
      assert.deepEqual(await search("pune", "&field=name"), []);
      assert.deepEqual(await search("nobody"), []);
      // A wildcard is a character, not a pattern.
      assert.deepEqual(await search("%"), []);
      assert.deepEqual(await search("_"), []);
      const delivered = (await t.api("GET", `/v1/leads/${ids.priya}`)).body.deliveries[0];
      assert.match(delivered.externalId, /^sink-/);
      assert.deepEqual(await search(delivered.externalId, "&field=externalId"), [ids.priya]);
      // Keyset pages, newest first.
      const first = await t.api("GET", "/v1/leads?q=pagey&limit=2");
      assert.deepEqual(
        first.body.data.map((l: { id: string }) => l.id),
        [ids.page2, ids.page1],
      );
      assert.equal(first.body.nextCursor, ids.page1);
      const second = await t.api("GET", `/v1/leads?q=pagey&limit=2&cursor=${first.body.nextCursor}`);
      assert.deepEqual(
        second.body.data.map((l: { id: string }) => l.id),
        [ids.page0],
      );
      assert.equal(second.body.nextCursor, null);
      const wrong = await t.api("GET", "/v1/leads?field=shoe");
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error.code, "invalid_request");
    });

    test("timeline: accepted (source, key), routed, attempt, final state, in order", async () => {
      const lead = (await t.api("GET", `/v1/leads/${ids.rahul}`)).body;
      const kinds = lead.timeline.map((e: { kind: string }) => e.kind);
      assert.deepEqual(kinds.slice(0, 1), ["accepted"]);
      assert.ok(kinds.includes("not_routed"), "good's filter said no");
      const accepted = lead.timeline[0];
      assert.equal(accepted.source, "flaky");
      assert.deepEqual(accepted.apiKey, { id: "admin-token", name: "admin token" });
      const attempt = lead.timeline.find((e: { kind: string }) => e.kind === "attempt");
      assert.equal(attempt.responseStatus, 400);
      assert.equal(attempt.error.code, "http_400");
      const failed = lead.timeline.at(-1);
      assert.equal(failed.kind, "failed");
      assert.equal(failed.destination, "flaky");
      const times = lead.timeline.map((e: { at: string }) => Date.parse(e.at));
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
      );
      const order = kinds.filter((k: string) => k !== "not_routed");
      assert.deepEqual(order, ["accepted", "routed", "attempt", "failed"]);
      const priya = (await t.api("GET", `/v1/leads/${ids.priya}`)).body.timeline;
      assert.equal(priya.at(-1).kind, "delivered");
      assert.match(priya.at(-1).summary, /delivered to good \(their id sink-/);
    });

    test("delivery filters: error code, time range, destination; bad input is 400", async () => {
      const list = async (query: string) => {
        const r = await t.api("GET", `/v1/deliveries?${query}`);
        assert.equal(r.status, 200, r.text);
        return r.body.data as { leadId: string; status: string }[];
      };
      const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
      const inAMinute = new Date(Date.now() + 60_000).toISOString();
      assert.equal((await list("errorCode=http_400")).length, 3);
      assert.equal((await list("errorCode=http_500")).length, 0);
      assert.equal((await list("errorCode=http_40")).length, 0, "a code, not a prefix");
      assert.equal((await list(`status=failed&since=${hourAgo}&until=${inAMinute}`)).length, 3);
      assert.equal((await list(`status=failed&until=${hourAgo}`)).length, 0);
      assert.equal((await list(`since=${inAMinute}`)).length, 0);
      assert.equal((await list("destination=good")).length, 1);
      const bad = await t.api("GET", "/v1/deliveries?errorCode=DROP%20TABLE");
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "invalid_request");
      assert.equal((await t.api("GET", "/v1/deliveries?since=yesterday")).status, 400);
    });

    test("replay by filter: dry count == replayed, erased leads skipped, cap", async () => {
      assert.equal((await t.api("DELETE", `/v1/leads/${ids.gone}`)).status, 204);
      const filter = { destination: "flaky", status: ["failed"], errorCode: "http_400" };
      const dry = await t.api("POST", "/v1/deliveries/replay", { ...filter, dryRun: true });
      assert.equal(dry.status, 200, dry.text);
      // gone's delivery was failed before the erasure and stays failed: it is not counted.
      assert.deepEqual(dry.body, { dryRun: true, count: 2, limit: 10_000, capped: false });
      const capped = await t.api("POST", "/v1/deliveries/replay", { ...filter, dryRun: true, limit: 1 });
      assert.deepEqual(capped.body, { dryRun: true, count: 1, limit: 1, capped: true });
      bad.sink.behave({ times: 0 });
      const first = await t.api("POST", "/v1/deliveries/replay", { ...filter, limit: 1 });
      assert.equal(first.status, 202, first.text);
      assert.deepEqual(first.body, { replayed: 1, limit: 1, capped: true });
      const rest = await t.api("POST", "/v1/deliveries/replay", filter);
      assert.deepEqual(rest.body, { replayed: 1, limit: 10_000, capped: false });
      assert.equal(first.body.replayed + rest.body.replayed, dry.body.count);
      await eventually(async () => {
        const s = (await t.api("GET", "/v1/stats")).body;
        return s.deliveries.delivered === 3;
      });
      const gone = (await t.api("GET", `/v1/leads/${ids.gone}`)).body;
      assert.equal(gone.deliveries[0].status, "failed");
      assert.equal(gone.deliveries[0].attemptCount, 1, "an erased lead is never sent again");
      assert.equal(gone.timeline.at(-1).kind, "erased");
      const none = await t.api("POST", "/v1/deliveries/replay", { ...filter, dryRun: true });
      assert.equal(none.body.count, 0);
    });

    test("CSV exports: filtered, capped, formula-safe", async () => {
      const res = await fetch(`${t.url}/v1/leads/export?q=${encodeURIComponent("=HYP")}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /text\/csv/);
      assert.match(res.headers.get("content-disposition") ?? "", /attachment; filename="leads.csv"/);
      const rows = parse(await res.text(), { columns: true }) as Record<string, string>[];
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.name, `'=HYPERLINK("http://x")`);
      assert.equal(rows[0]?.id, ids.eve);
      const all = parse((await t.api("GET", "/v1/leads/export?limit=2")).text, { columns: true }) as Record<
        string,
        string
      >[];
      assert.equal(all.length, 2, "capped by limit");
      const phones = parse((await t.api("GET", "/v1/leads/export?q=9820012345")).text, {
        columns: true,
      }) as Record<string, string>[];
      assert.equal(phones[0]?.phone, "'+919820012345");
      assert.equal(phones[0]?.city, "Navi Mumbai");
      const deliveries = parse((await t.api("GET", "/v1/deliveries/export?destination=flaky")).text, {
        columns: true,
      }) as Record<string, string>[];
      assert.equal(deliveries.length, 3);
      assert.deepEqual(deliveries.map((d) => d.destination).sort(), ["flaky", "flaky", "flaky"]);
      // Two replayed and delivered; the erased lead's stays failed.
      assert.deepEqual(deliveries.map((d) => d.status).sort(), ["delivered", "delivered", "failed"]);
      assert.equal(deliveries.find((d) => d.status === "failed")?.leadId, ids.gone);
      const many = parse((await t.api("GET", "/v1/deliveries/export?limit=1")).text, {
        columns: true,
      }) as unknown[];
      assert.equal(many.length, 1);
      assert.equal((await t.api("GET", "/v1/leads/export", undefined, { key: null })).status, 401);
    });
  });
}
