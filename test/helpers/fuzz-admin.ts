// Hostile CSV imports, destinations (JSONata filters and mappings) and read queries: the fuzz
// test's generators beside those of fuzz-leads.ts.
import type { Req, Rng } from "./fuzz-client.ts";
import { type Gen, type GenCtx, MB, POLLUTION_MARK, type Step, goodLead } from "./fuzz-leads.ts";

const csvReq = (body: string | Buffer, query = "", type = "text/csv"): Req => ({
  method: "POST",
  path: `/v1/imports${query}`,
  headers: { "content-type": type },
  body,
});

const cell = (v: unknown) => {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** A CSV of good rows (unique emails under `prefix`) with one hostile twist; which rows stay good. */
function hostileCsv(rng: Rng, ctx: GenCtx): { what: string; body: string; good: string[]; prefix: string } {
  const prefix = `fz.${ctx.tag}.${ctx.index}.`;
  const n = rng.pick([3, 20, 120]);
  const header = ["name", "email", "mobile_number", "city", "message"];
  const rows: string[][] = [];
  const good: string[] = [];
  for (let j = 1; j <= n; j++) {
    const l = goodLead(ctx, j, rng);
    rows.push([String(l.name), String(l.email), String(l.phone), String(l.city), 'hello, "world"']);
    good.push(String(l.email));
  }
  const bad = rng.int(0, n - 1); // the row the twist lands in
  const spoil = () => good.splice(bad, 1); // before any twist that changes the rows' count
  let eol = "\n";
  let head = header.map(cell).join(",");
  let what = rng.pick(["bom", "crlf mix", "nul", "quote", "huge row", "wide", "columns", "proto", "resend"]);
  switch (what) {
    case "bom":
      head = "\ufeff" + head;
      break;
    case "crlf mix":
      eol = "MIX";
      break;
    case "nul":
      rows[bad]![rng.int(0, 4)] += "\u0000";
      spoil();
      break;
    case "quote":
      // An unbalanced quote swallows the rest of the file: only the rows before it are complete.
      rows[bad]![4] = '"unbalanced';
      good.splice(bad);
      break;
    case "huge row":
      // Over the lead size limit: rejected as a row, or the import stops there with an error.
      rows[bad]![4] = "h".repeat(rng.pick([MB + 10, 2 * MB]));
      good.splice(bad);
      break;
    case "wide":
      // 2 000 columns on the first 20 rows (5 000 columns on 120 rows took ~4.5 s on SQLite).
      header.push(...Array.from({ length: 2000 }, (_, i) => `c${i}`));
      head = header.join(",");
      rows.splice(20);
      for (const r of rows) r.push(...Array.from({ length: 2000 }, (_, i) => String(i)));
      good.length = 0; // 2 000 attributes may be over a size limit: no promise either way
      break;
    case "columns":
      head = rng.pick(["foo,bar,baz,qux,quux", "email,email,name,name,x", ",,,,", "\u0000,a,b,c,d"]);
      good.length = 0;
      break;
    case "proto":
      head = `name,email,mobile_number,__proto__,constructor`;
      for (const r of rows) r[3] = `{"${POLLUTION_MARK}":1}`;
      good.length = 0;
      break;
    default:
      what = "resend";
  }
  const lines = rows.map((r) => r.map(cell).join(","));
  const body =
    eol === "MIX"
      ? [head, ...lines].map((l) => l + rng.pick(["\n", "\r\n", "\r\n"])).join("")
      : [head, ...lines].join(eol) + eol;
  return { what, body, good, prefix };
}

export const adminKinds: Record<string, Gen> = {
  csv: (rng, ctx) => {
    const c = hostileCsv(rng, ctx);
    const step: Step = {
      req: csvReq(c.body),
      expect: c.what === "huge row" ? [201, 400, 413] : [201],
      good: { type: "csv", prefix: c.prefix, emails: c.good },
    };
    return c.what === "resend" ? [step, { ...step, expect: [200, 201] }] : [step];
  },
  "bad csv": (rng, ctx) => {
    const junk = Buffer.alloc(rng.int(1, 3000));
    for (let i = 0; i < junk.length; i++) junk[i] = rng.int(0, 255);
    const goodCsv = `name,email\nA,a${ctx.index}@csv-hostile.example.com\n`;
    const pick = rng.int(0, 7);
    const steps: Req[] = [
      csvReq(""),
      csvReq("name,email\n"),
      csvReq(junk),
      csvReq(
        goodCsv,
        `?map=${encodeURIComponent(rng.pick(["__proto__=name", "=", "a=", "x".repeat(3000) + "=name", "email=__proto__"]))}`,
      ),
      csvReq(goodCsv, "?map=a=b&map=c=d&" + "map=z%3Dy&".repeat(2000)),
      csvReq(goodCsv, "", "application/json"),
      csvReq(`"name","email"\n"A""B","a""@x.co\n`.repeat(100)),
      csvReq(goodCsv, "?source=" + encodeURIComponent("\u0000" + "s".repeat(5000))),
    ];
    return [{ req: steps[pick]! }];
  },
  "hostile destination": (rng, ctx) => {
    const name = `fz-${ctx.tag}-${ctx.index}`;
    const field = rng.pick(["filter", "mapping", "mapping object", "patch"]);
    const expr = rng.pick(HOSTILE_EXPRESSIONS);
    const spec: Record<string, unknown> = { name, connector: "http", url: `${ctx.sinkUrl}/sink/${name}` };
    if (field === "filter") spec.filter = expr;
    else if (field === "mapping") spec.mapping = expr;
    else if (field === "mapping object") spec.mapping = { name: "name", email: "email", x: expr };
    if (field !== "patch") return [{ req: dest("POST", "/v1/destinations", spec) }];
    return [
      { req: dest("POST", "/v1/destinations", { ...spec, filter: `source = "${name}"` }), expect: [201] },
      { req: dest("PATCH", `/v1/destinations/${name}`, { mapping: expr }) },
    ];
  },
  "conditional runaway": (rng, ctx) => {
    // Harmless on the sample lead (so it may be saved); runs away for one lead at run time.
    const name = `fz-${ctx.tag}-${ctx.index}`;
    const trigger = rng.pick(RUN_TIME_BOMBS);
    const cond = `source = "${name}" and name = "boom"`;
    const where = rng.pick(["filter", "mapping"]);
    const spec = {
      name,
      connector: "http",
      url: `${ctx.sinkUrl}/sink/${name}`,
      filter: where === "filter" ? `(${cond}) ? ${trigger} : source = "${name}"` : `source = "${name}"`,
      ...(where === "mapping" ? { mapping: `(${cond}) ? ${trigger} : $` } : {}),
      retry: { delaysMs: [100, 100], jitter: 0 },
    };
    const bomb = { ...goodLead(ctx, 0, rng), name: "boom", source: name };
    return [
      { req: dest("POST", "/v1/destinations", spec), expect: [201] },
      { req: dest("POST", `/v1/destinations/${name}/test`, { lead: bomb }) },
      { req: dest("POST", "/v1/leads", bomb), expect: [201], good: { type: "lead" } },
    ];
  },
  "regex backtracking": (rng, ctx) => {
    const name = `fz-${ctx.tag}-${ctx.index}`;
    const spec = {
      name,
      connector: "http",
      url: `${ctx.sinkUrl}/sink/${name}`,
      filter: `source = "${name}" ? $contains(name, /^(a+)+$/) : false`,
    };
    const bomb = { ...goodLead(ctx, 0, rng), name: "a".repeat(32) + "!", source: name };
    return [
      { req: dest("POST", "/v1/destinations", spec), expect: [201] },
      { req: dest("POST", "/v1/leads", bomb), expect: [201], good: { type: "lead" } },
    ];
  },
  "bad destination": (rng, ctx) => {
    const name = `fz-${ctx.tag}-${ctx.index}`;
    const url = `${ctx.sinkUrl}/sink/${name}`;
    const bodies: (Record<string, unknown> | string)[] = [
      { name: `bad\u0000${name}`, connector: "http", url },
      { name: "n".repeat(10_000), connector: "http", url },
      {
        name,
        connector: "http",
        url: rng.pick(["javascript:alert(1)", "file:///etc/passwd", "http://" + "a".repeat(70_000)]),
      },
      {
        name,
        connector: "http",
        url,
        retry: { delaysMs: Array.from({ length: 10_000 }, () => 1e308), jitter: -5 },
      },
      {
        name,
        connector: "http",
        url,
        concurrency: rng.pick([-1, 0, 1e12, 1.5]),
        timeoutMs: rng.pick([-1, 1e15]),
      },
      { name, connector: "http", url, after: Array.from({ length: 5000 }, (_, i) => `d${i}`) },
      { name, connector: "http", url, after: [name] },
      {
        name,
        connector: "http",
        url,
        headers: JSON.parse('{"x-a":"v\\r\\nx-injected: 1","__proto__":{"a":1}}'),
      },
      { name, connector: rng.pick(["nope", "__proto__", "constructor", ""]), url },
      // Raw text: a 5 000-level object is more than JSON.stringify's stack takes here.
      `{"name":"${name}","connector":"http","url":"${url}","mapping":${'{"a":'.repeat(5000)}"name"${"}".repeat(5000)}}`,
    ];
    return [{ req: dest("POST", "/v1/destinations", rng.pick(bodies)) }];
  },
  "hostile query": (rng) => {
    const id = rng.pick([
      "%00",
      "x".repeat(10_000),
      "..%2f..%2fetc%2fpasswd",
      "%ff%fe",
      "__proto__",
      "%E2%80%AE",
    ]);
    const path = rng.pick([
      `/v1/leads?q=${rng.pick(["%00", "%25", "_", "a".repeat(5000), "%ud800", "%ff"])}`,
      `/v1/leads?limit=${rng.pick(["-1", "0", "1e10", "abc", "501", "%00"])}`,
      `/v1/leads?cursor=${rng.pick(["%00", "z".repeat(3000), "' OR 1=1"])}&source=%00`,
      `/v1/leads/${id}`,
      `/v1/deliveries/${id}`,
      `/v1/destinations/${id}`,
      `/v1/deliveries?status=${rng.pick(["nope", "%00", "delivered,failed"])}&destination=%00`,
      "/v1/leads?__proto__[x]=1&constructor[prototype][y]=2",
      "/v1/leads?" + Array.from({ length: 3000 }, (_, i) => `p${i}=${i}`).join("&"),
      `/v1/batches?status=%00`,
    ]);
    const method = rng.chance(0.2) && path.startsWith("/v1/leads/") ? "DELETE" : "GET";
    return [{ req: { method, path } }];
  },
  "hostile replay": (rng) => {
    const body = rng.pick([
      { destination: "\u0000", status: ["failed"] },
      { destination: "x".repeat(10_000) },
      { status: Array.from({ length: 5000 }, () => "failed") },
      { destination: { $ne: null } },
      {},
    ]);
    return [{ req: dest("POST", "/v1/deliveries/replay", body) }];
  },
};

function dest(method: string, path: string, body: unknown): Req {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return { method, path, headers: { "content-type": "application/json" }, body: text };
}

/**
 * Expressions that run away (time, depth, memory, result size) on any lead. Each is either an
 * error or far over any sensible bound, and interruptible between evaluation steps: nothing
 * here sits near a limit, so whether it is refused does not depend on the machine's speed.
 */
const HOSTILE_EXPRESSIONS = [
  "($f := function($n){ $f($n+1) }; $f(0))",
  "($f := function($n){ 1 + $f($n+1) }; $f(0))",
  "$reduce([1..9999999], function($a, $b){ $a + $b })",
  "$count([1..10000000][$ % 2 = 0])",
  "[1..99999999999]",
  "$string([1..2000000].($ * 2))",
  '$join([1..2000000].$string(), ",")',
  "$eval('($f := function($n){ $f($n+1) }; $f(0))')",
  "(".repeat(20_000) + "1" + ")".repeat(20_000),
  "name" + " & name".repeat(20_000),
  "$sort([1..1000000], function($a, $b){ $a < $b })",
];

/** Runaways for the conditional destinations (only the "boom" lead triggers them). */
const RUN_TIME_BOMBS = [
  "($f := function($n){ $f($n+1) }; $f(0))",
  "($f := function($n){ 1 + $f($n+1) }; $f(0))",
  "$reduce([1..9999999], function($a, $b){ $a + $b })",
  "$string([1..2000000].($ * 2))",
];
