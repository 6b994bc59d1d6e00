// /openapi.json documents every operation's answers (the rule in DEVELOPERS.md), and /metrics keeps
// the standard names of the default process metrics.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Fastify from "fastify";
import { AUTH_STRATEGIES } from "../src/auth/registry.ts";
import { startApp, type TestApp } from "./helpers/harness.ts";

type Schema = Record<string, unknown>;
interface Media {
  schema?: Schema;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Operation {
  responses?: Record<string, { description?: string; content?: Record<string, Media> }>;
  requestBody?: { content?: Record<string, Media> };
}

let t: TestApp;
let spec: { paths: Record<string, Record<string, Operation>> };
before(async () => {
  t = await startApp({ worker: false });
  spec = (await (await fetch(`${t.url}/openapi.json`)).json()) as typeof spec;
});
after(async () => t?.close());

const METHODS = new Set(["get", "post", "put", "patch", "delete"]);
function operations(): [string, Operation][] {
  return Object.entries(spec.paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([m]) => METHODS.has(m))
      .map(([m, op]): [string, Operation] => [`${m.toUpperCase()} ${path}`, op]),
  );
}

void describe("OpenAPI", () => {
  void test("every operation has a success response with a schema and an example, and a 4xx schema", () => {
    const problems: string[] = [];
    const ops = operations();
    assert.ok(ops.length > 30, `only ${ops.length} operations`);
    for (const [name, op] of ops) {
      const responses = Object.entries(op.responses ?? {});
      // A success is a 2xx, or the redirect of a route whose answer is one (the connect link).
      const success = responses.filter(([code]) => /^[23]/.test(code));
      if (success.length === 0 || success.every(([, r]) => r.description === "Default Response"))
        problems.push(`${name}: no documented 2xx response`);
      for (const [code, r] of success) {
        if (code === "204" || code.startsWith("3")) continue; // no body
        const media = Object.values(r.content ?? {})[0];
        if (!media?.schema) problems.push(`${name}: ${code} has no schema`);
        else if (media.example === undefined && media.examples === undefined)
          problems.push(`${name}: ${code} has no example`);
      }
      const clientError = responses.find(([code]) => code.startsWith("4"));
      if (!clientError || !Object.values(clientError[1].content ?? {})[0]?.schema)
        problems.push(`${name}: no 4xx response schema`);
    }
    assert.deepEqual(problems, [], "see DEVELOPERS.md: every route documents its answers");
  });

  void test("each example fits its own schema", async () => {
    // Fastify's own JSON Schema validator (Ajv) checks each example as if it were a request body.
    const checker = Fastify({
      ajv: {
        customOptions: { strict: false, discriminator: true, coerceTypes: false, removeAdditional: false },
      },
    });
    const cases: [string, Schema, unknown][] = [];
    for (const [name, op] of operations())
      for (const [code, r] of Object.entries(op.responses ?? {})) {
        const media = r.content?.["application/json"];
        if (media?.schema && media.example !== undefined)
          cases.push([`${name} ${code}`, media.schema, media.example]);
      }
    cases.forEach(([, schema], i) =>
      checker.post(`/${i}`, { schema: { body: schema } }, async () => ({ ok: true })),
    );
    const problems: string[] = [];
    for (const [i, [name, , example]] of cases.entries()) {
      const res = await checker.inject({ method: "POST", url: `/${i}`, payload: example as object });
      if (res.statusCode !== 200) problems.push(`${name}: ${res.body}`);
    }
    await checker.close();
    assert.ok(cases.length > 30, `${cases.length} examples checked`);
    assert.deepEqual(problems, []);
  });

  void test("answers that are 201 are documented as 201", () => {
    for (const name of ["POST /v1/leads", "POST /v1/destinations", "POST /v1/keys", "POST /v1/imports"]) {
      const op = operations().find(([n]) => n === name)?.[1];
      assert.ok(op?.responses?.["201"], `${name} documents 201`);
    }
    assert.ok(operations().find(([n]) => n === "DELETE /v1/destinations/{id}")?.[1].responses?.["204"]);
  });

  void test("the error shape is the shared one", () => {
    const op = operations().find(([n]) => n === "GET /v1/deliveries")![1];
    const schema = op.responses!["4XX"]!.content!["application/json"]!.schema as {
      properties: { error: { required: string[] } };
    };
    assert.deepEqual(schema.properties.error.required, ["code", "message", "details"]);
  });

  void test("a destination's auth is a union on type: /docs shows each type's fields", () => {
    const op = operations().find(([n]) => n === "POST /v1/destinations")![1];
    const body = op.requestBody!.content!["application/json"]!.schema as {
      properties: { auth: { oneOf: Schema[]; discriminator: { propertyName: string } } };
    };
    const auth = body.properties.auth;
    assert.equal(auth.discriminator.propertyName, "type");
    const types = auth.oneOf.map((m) => m.title);
    assert.deepEqual(types.sort(), Object.keys(AUTH_STRATEGIES).sort());
    const code = auth.oneOf.find((m) => m.title === "oauth2_code") as { properties: Record<string, unknown> };
    for (const field of ["type", "authorizeUrl", "tokenUrl", "clientId", "clientSecret"])
      assert.ok(code.properties[field], `oauth2_code shows ${field}`);
  });

  void test("a response schema documents and never filters: unlisted fields are still sent", async () => {
    // GET /v1/destinations/:id lists a few fields; the destination has many more.
    const created = await t.api("POST", "/v1/destinations", {
      name: "docs-check",
      connector: "http",
      url: "https://crm.example.com/leads",
      concurrency: 3,
    });
    assert.equal(created.status, 201, created.text);
    const read = await t.api("GET", "/v1/destinations/docs-check");
    assert.equal((read.body as { concurrency: number }).concurrency, 3);
    assert.ok((read.body as { health?: unknown }).health !== undefined);
  });
});

void test("metrics: default process metrics keep their standard names; leadpush's keep the prefix", async () => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  for (const name of [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "nodejs_heap_size_total_bytes",
    "nodejs_eventloop_lag_seconds",
    "leadpush_leads_accepted_total",
    "leadpush_delivery_attempts_total",
  ])
    assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
  assert.doesNotMatch(text, /leadpush_process_/);
  const types = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
  const foreign = types.filter((n) => !/^(leadpush_|process_|nodejs_)/.test(n));
  assert.deepEqual(foreign, [], "every metric is leadpush's or a standard process/nodejs one");
});
