// Hostile requests against the lead API (POST /v1/leads, /v1/leads/batch): the generators of the
// fuzz test. Every generator is a pure function of its Rng, so a case is reproducible on its own.
import type { Req, Rng } from "./fuzz-client.ts";

/** What must hold for a step besides "no 5xx, answered within 2 s". */
export interface Step {
  req: Req;
  /** The statuses allowed; absent: any status below 500. */
  expect?: number[];
  /** A good lead (201, stored, delivered), a batch's good items, or a CSV's good rows. */
  good?:
    { type: "lead" } | { type: "batch"; items: number[] } | { type: "csv"; prefix: string; emails: string[] };
}

export interface GenCtx {
  /** Unique per run and backend; part of every good email. */
  tag: string;
  index: number;
  sinkUrl: string;
}

export const MB = 1024 * 1024;
export const POLLUTION_MARK = "fuzzPolluted";

/** A unique valid lead: its email and phone never repeat within a run (duplicates are not pushed). */
export function goodLead(ctx: GenCtx, item: number, rng: Rng): Record<string, unknown> {
  const n = ctx.index * 1000 + item; // < 1e6: eight digits after +9198
  return {
    name: rng.pick(GOOD_NAMES),
    ...(rng.chance(0.5) ? { lastName: rng.pick(GOOD_NAMES) } : {}),
    email: `fz.${ctx.tag}.${ctx.index}.${item}@good.example.com`,
    phone: `+9198${String(n).padStart(8, "0")}`,
    city: rng.pick(["Pune", "Mumbai", "Zürich", "São Paulo", "القاهرة", "東京"]),
    projectId: rng.pick(["PRJ-7", "PRJ-8", 4411]),
    ...(rng.chance(0.3) ? { context: rng.pick(GOOD_NAMES).repeat(rng.int(1, 20)) } : {}),
    ...(rng.chance(0.3) ? { budget: "80L", tags: ["a", "b"], nested: { x: { y: 1 } } } : {}),
  };
}

/** Well-formed names a real form sends: scripts, emoji, combining marks, right-to-left text. */
const GOOD_NAMES = [
  "Asha",
  "José",
  "Zoë Ma\u0301rquez",
  "محمد علي",
  "שלום כהן",
  "👩‍💻 Priya",
  "Nguyễn Văn A",
  "O'Brien-Smith",
  "李小龍",
  "𝒜𝓈𝒽𝒶",
  "e\u0301\u0302\u0303\u0304 Zalgo",
];

const json = (v: unknown) => JSON.stringify(v);
const deep = (depth: number, arrays: boolean) =>
  arrays ? "[".repeat(depth) + "1" + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

const WRONG_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  [],
  [1],
  {},
  { a: 1 },
  "",
  " ",
  [[[]]],
  "\t\n",
];
const FIELDS = [
  "name",
  "lastName",
  "email",
  "phone",
  "city",
  "projectId",
  "source",
  "context",
  "additionalInformation",
  "externalId",
  "attributes",
  "mobile_number",
  "project_id",
  "last_name",
];
const ODD_STRINGS = [
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfff",
  "\u202eevil\u202c",
  "\u200b\u200f\u200e",
  "\ufeff",
  "\uffff",
  "\u{10ffff}",
  "e" + "\u0301".repeat(3000),
  "' OR 1=1 --",
  '"; DROP TABLE leads; --',
  "${jndi:ldap://x/a}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "%00",
  "../../etc/passwd",
  "null",
];

/** The raw JSON text of one hostile lead (as a body or as a batch item). */
export function hostileLeadJson(rng: Rng, ctx: GenCtx): { kind: string; text: string } {
  const base = () => ({
    name: "Fuzz",
    email: `h${rng.int(0, 1e9)}@hostile.example.com`,
    phone: `+9197${String(rng.int(0, 99_999_999)).padStart(8, "0")}`,
  });
  switch (rng.int(0, 6)) {
    case 0: {
      const d = rng.pick([33, 100, 1000, 20_000]);
      const where = rng.pick(["attributes", "extra", "context"]);
      const b = json(base()).slice(0, -1);
      return { kind: `deep ${d} in ${where}`, text: `${b},"${where}":${deep(d, rng.chance(0.5))}}` };
    }
    case 1: {
      const b = base() as Record<string, unknown>;
      const where = rng.pick([
        "name",
        "email",
        "city",
        "attributes value",
        "attributes key",
        "top-level key",
      ]);
      if (where === "attributes value") b.attributes = { note: "a\u0000b" };
      else if (where === "attributes key") b.attributes = { "k\u0000ey": "v" };
      else if (where === "top-level key") b["bad\u0000key"] = "v";
      else b[where] = `${String(b[where])}\u0000`;
      return { kind: `NUL in ${where}`, text: json(b) };
    }
    case 2: {
      const field = rng.pick(FIELDS);
      const b = { ...base(), [field]: rng.pick(WRONG_VALUES) };
      return { kind: `wrong type for ${field}`, text: json(b) };
    }
    case 3: {
      const field = rng.pick(["name", "lastName", "city", "source", "context", "email", "attributes"]);
      const s = rng.pick(ODD_STRINGS);
      const b = { ...base(), [field]: field === "attributes" ? { [s]: s } : s };
      return { kind: `odd string in ${field}`, text: json(b) };
    }
    case 4: {
      const which = rng.int(0, 3);
      const b = json(base()).slice(1, -1);
      const texts = [
        `{"__proto__":{"${POLLUTION_MARK}":"yes","name":"Inherited"},${b}}`,
        `{"constructor":{"prototype":{"${POLLUTION_MARK}":"yes"}},${b}}`,
        `{${b},"attributes":{"__proto__":{"${POLLUTION_MARK}":"yes"},"constructor":{"prototype":{"x":1}}}}`,
        `{${b},"hasOwnProperty":"x","toString":"y","valueOf":1,"__defineGetter__":2}`,
      ];
      return { kind: `prototype keys ${which}`, text: texts[which]! };
    }
    case 5: {
      const field = rng.pick(["name", "context", "city", "email"]);
      const len =
        { name: 200, context: 10_000, city: 200, email: 320 }[field]! + rng.pick([1, 1000, 100_000]);
      return { kind: `over-long ${field}`, text: json({ ...base(), [field]: "x".repeat(len) }) };
    }
    default:
      return {
        kind: "lone surrogate in every field",
        text: lone(json({ ...base(), city: "S", source: "T" })),
      };
  }
  function lone(text: string) {
    void ctx;
    return text.replace('"S"', '"\\ud800"').replace('"T"', '"x\\udfffy"').replace('"Fuzz"', '"\\udbff"');
  }
}

const lead = (body: string | Buffer, extra: Partial<Req> = {}): Req => ({
  method: "POST",
  path: "/v1/leads",
  headers: { "content-type": "application/json", ...extra.headers },
  body,
  ...(extra.key !== undefined ? { key: extra.key } : {}),
  ...(extra.chunked ? { chunked: true } : {}),
});

export type Gen = (rng: Rng, ctx: GenCtx) => Step[];

export const leadKinds: Record<string, Gen> = {
  good: (rng, ctx) => {
    const headers: Record<string, string> = rng.chance(0.3)
      ? { "idempotency-key": `fz-${ctx.tag}-${ctx.index}` }
      : {};
    return [{ req: lead(json(goodLead(ctx, 0, rng)), { headers }), expect: [201], good: { type: "lead" } }];
  },
  "hostile lead": (rng, ctx) => [{ req: lead(hostileLeadJson(rng, ctx).text) }],
  "malformed json": (rng) => {
    const bodies = [
      "{",
      "}",
      '{"name":"a",}',
      "{name:'a'}",
      '{"a":1}{"b":2}',
      "[".repeat(100_000),
      '{"name":"' + "\\u00".repeat(10) + '"}',
      '{"name":"\\x41"}',
      "nul",
      "\u0000",
    ];
    const pick = rng.int(0, bodies.length);
    if (pick === bodies.length) {
      const bytes = Buffer.alloc(rng.int(1, 2000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(0, 255);
      return [{ req: lead(bytes), expect: [400] }];
    }
    return [{ req: lead(bodies[pick]!), expect: [400] }];
  },
  "not an object": (rng) => [{ req: lead(rng.pick(["1e999999", '"text"', "null", "[]", "true", "-0"])) }],
  "content type": (rng, ctx) => {
    const body = json(goodLead(ctx, 0, rng));
    const type = rng.pick([
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/json; charset=utf-16",
      "application/jsonx",
      "text/csv",
      "application/xml",
      "a".repeat(4000),
      "application/json; " + "p=1;".repeat(500),
    ]);
    const expect = type === "text/plain" || type === "application/xml" ? [415] : undefined;
    return [{ req: lead(body, { headers: { "content-type": type } }), ...(expect ? { expect } : {}) }];
  },
  "invalid utf-8": (rng) => {
    const bad = rng.pick([
      [0xff, 0xfe],
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
    ]);
    const body = Buffer.concat([
      Buffer.from('{"name":"'),
      Buffer.from(bad),
      Buffer.from(`","email":"u${rng.int(0, 1e9)}@hostile.example.com"}`),
    ]);
    return [{ req: lead(body) }];
  },
  "size limits": (rng, ctx) => {
    const b = goodLead(ctx, 0, rng);
    const pad = (size: number) => {
      const bytes = Buffer.byteLength(json({ ...b, attributes: { pad: "" } }));
      return json({ ...b, attributes: { pad: "x".repeat(Math.max(0, size - bytes)) } });
    };
    switch (rng.int(0, 6)) {
      case 0:
        return [{ req: lead(json({ ...b, name: "N".repeat(200) })), expect: [201], good: { type: "lead" } }];
      case 1:
        return [{ req: lead(json({ ...b, name: "N".repeat(201) })), expect: [400] }];
      case 2:
        return [{ req: lead(json({ ...b, context: "c".repeat(10_001) })), expect: [400] }];
      case 3:
        // Just under the body limit: accepted, or refused as a lead (a field size limit) — not 413.
        return [{ req: lead(pad(MB - 64)), expect: [201, 400] }];
      case 4:
        return [{ req: lead(pad(MB + 1)), expect: [413] }];
      case 5:
        return [{ req: lead(pad(rng.pick([2, 5]) * MB), { chunked: rng.chance(0.5) }), expect: [413] }];
      default: {
        const path = rng.pick(["/v1/leads/batch", "/v1/destinations", "/v1/deliveries/replay"]);
        return [{ req: { ...lead(pad(2 * MB)), path }, expect: [413] }];
      }
    }
  },
  "idempotency key": (rng, ctx) => {
    const key = rng.pick([
      "",
      " ",
      "k".repeat(201),
      `long-${ctx.index}-${"k".repeat(8000)}`,
      `latin1-${ctx.index}-\xff\xfe\xe9`,
      "../../../etc",
      "shared-fuzz-key",
      "a,b;c=d",
    ]);
    return [{ req: lead(json(goodLead(ctx, 0, rng)), { headers: { "idempotency-key": key } }) }];
  },
  "long headers": (rng, ctx) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    const which = rng.int(0, 3);
    if (which === 0) headers["user-agent"] = "u".repeat(12_000);
    else if (which === 1) headers["x-fuzz"] = "v".repeat(rng.pick([20_000, 70_000]));
    else if (which === 2) for (let i = 0; i < 300; i++) headers[`x-h${i}`] = String(i);
    else headers.cookie = "c=" + "\xe9".repeat(6000);
    return [{ req: lead(json(goodLead(ctx, 0, rng)), { headers }) }];
  },
  "bad api key": (rng, ctx) => {
    const auth = rng.pick([
      null,
      "Bearer lp_wrong",
      "Bearer " + "k".repeat(8000),
      "Basic YWRtaW46YWRtaW4=",
      "Bearer",
      "Bearer \xff\xfe",
      "bearer lp_x",
    ]);
    const req = lead(json(goodLead(ctx, 0, rng)), {
      key: null,
      headers: auth === null ? {} : { authorization: auth },
    });
    return [{ req, expect: [401] }];
  },
  batch: (rng, ctx) => {
    const n = rng.pick([1, 5, 20, 60, 200]);
    const items: string[] = [];
    const good: number[] = [];
    for (let i = 0; i < n; i++) {
      if (rng.chance(0.6)) {
        good.push(i);
        items.push(json(goodLead(ctx, i + 1, rng)));
      } else {
        items.push(rng.chance(0.8) ? hostileLeadJson(rng, ctx).text : json(rng.pick(WRONG_VALUES)));
      }
    }
    const body = `{"leads":[${items.join(",")}]}`;
    const tooLarge = Buffer.byteLength(body) > MB;
    // Fastify refuses a body with a __proto__ or constructor.prototype key anywhere as a whole.
    const poisoned = /"__proto__"|"constructor":\{"prototype"/.test(body);
    return [
      {
        req: { ...lead(body), path: "/v1/leads/batch" },
        expect: tooLarge ? [413] : poisoned ? [200, 400] : [200],
        ...(tooLarge ? {} : { good: { type: "batch" as const, items: good } }),
      },
    ];
  },
  "bad batch": (rng) => {
    const bodies: [string, number[]][] = [
      [`{"leads":[${'{"name":"A","email":"a@b.co"},'.repeat(1000)}{"name":"A","email":"a@b.co"}]}`, [400]],
      [`{"leads":[${"{},".repeat(4999)}{}]}`, [400]],
      ['{"leads":[]}', [400]],
      ['{"leads":{"0":{}}}', [400]],
      ['{"leads":null}', [400]],
      ["[]", [400]],
      ['{"leads":"x"}', [400]],
      [`{"leads":[${deep(20_000, false)}]}`, [200, 400]],
    ];
    const [body, expect] = rng.pick(bodies);
    return [{ req: { ...lead(body), path: "/v1/leads/batch" }, expect }];
  },
};
