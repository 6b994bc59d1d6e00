// The dashboard's destination tools in the API: the form schemas, JSONata previews, the dry run of
// an unsaved destination, and field paths in a refused destination's 400.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { startApp, type TestApp } from "./helpers/harness.ts";

let t: TestApp;
let sb: Awaited<ReturnType<typeof startSandbox>>;
before(async () => {
  sb = await startSandbox();
  t = await startApp();
});
after(async () => {
  await t?.close();
  await sb?.close();
});

const csrfDestination = (password: string) => ({
  name: "csrf-draft",
  connector: "http",
  url: `${sb.url}/csrf/leads`,
  auth: { type: "csrf", tokenUrl: `${sb.url}/csrf/token`, username: A.csrf.username, password },
});
type Detail = { path: (string | number)[]; message: string; code?: string; position?: number };
const paths = (details: Detail[]) => details.map((d) => d.path.join("."));

void describe("GET /v1/schemas/destinations", () => {
  void test("per connector its fields, secrets and auth types; per auth type its fields, defaults, help", async () => {
    const res = await t.api("GET", "/v1/schemas/destinations");
    assert.equal(res.status, 200, res.text);
    const http = res.body.connectors.find((c: { name: string }) => c.name === "http");
    assert.deepEqual(http.secretFields, ["headers"]);
    assert.ok(http.schema.properties.url, "url field");
    assert.equal(http.schema.properties.method.default, "POST");
    assert.ok(http.authTypes.includes("csrf") && http.authTypes.includes("oauth2_code"));
    const ejento = res.body.connectors.find((c: { name: string }) => c.name === "ejento");
    assert.equal(ejento.authFromFields, true);
    assert.deepEqual(ejento.authTypes, [], "its auth is built from its own fields");
    const csrf = res.body.authTypes.find((a: { type: string }) => a.type === "csrf");
    assert.deepEqual(csrf.secretFields, ["password"]);
    assert.deepEqual(csrf.schema.required, ["type", "tokenUrl", "username", "password"]);
    assert.match(csrf.schema.properties.tokenUrl.description, /token/i, "help text from .describe()");
    const oauth2 = res.body.authTypes.find((a: { type: string }) => a.type === "oauth2");
    assert.equal(oauth2.schema.properties.tokenField.default, "access_token");
    assert.equal(res.body.authTypes.find((a: { type: string }) => a.type === "oauth2_code").connect, true);
    assert.equal(res.body.common.properties.timeoutMs.default, 10_000);
  });

  void test("rejects without credentials; the new routes are in the OpenAPI document", async () => {
    const res = await t.api("GET", "/v1/schemas/destinations", undefined, { key: null });
    assert.equal(res.status, 401);
    const spec = (await t.api("GET", "/openapi.json")).body;
    for (const p of ["/v1/schemas/destinations", "/v1/expressions/preview", "/v1/destinations/test"])
      assert.ok(spec.paths[p], p);
    assert.ok(spec.paths["/v1/destinations/test"].post.responses["400"], "the error shape is documented");
  });
});

void describe("POST /v1/expressions/preview", () => {
  void test("a filter's value and whether it matches, on the sample lead", async () => {
    const res = await t.api("POST", "/v1/expressions/preview", {
      kind: "filter",
      expression: 'city = "Bengaluru"',
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { ok: true, result: true, matches: true });
    const other = await t.api("POST", "/v1/expressions/preview", {
      kind: "filter",
      expression: 'city = "Pune"',
      lead: { name: "Ravi", email: "ravi@preview.test", city: "Pune" },
    });
    assert.equal(other.body.matches, true);
  });

  void test("a mapping, per field, on a stored lead", async () => {
    const lead = await t.api("POST", "/v1/leads", {
      name: "Meera",
      email: "meera@preview.test",
      city: "Goa",
    });
    assert.equal(lead.status, 201, lead.text);
    const res = await t.api("POST", "/v1/expressions/preview", {
      kind: "mapping",
      expression: { full: 'name & " in " & city', mail: "email", none: "nothing" },
      leadId: lead.body.id,
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { ok: true, result: { full: "Meera in Goa", mail: "meera@preview.test" } });
    const missing = await t.api("POST", "/v1/expressions/preview", {
      kind: "mapping",
      expression: "name",
      leadId: "nope",
    });
    assert.equal(missing.status, 404);
  });

  void test("a syntax error: its code, message and position (and the field of a mapping)", async () => {
    const res = await t.api("POST", "/v1/expressions/preview", {
      kind: "filter",
      expression: 'city = "Pune',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, false);
    assert.equal(res.body.error.code, "expression_error");
    assert.deepEqual(res.body.error.path, ["filter"]);
    assert.equal(typeof res.body.error.position, "number");
    const m = await t.api("POST", "/v1/expressions/preview", {
      kind: "mapping",
      expression: { ok: "name", bad: "name +" },
    });
    assert.equal(m.body.ok, false);
    assert.deepEqual(m.body.error.path, ["mapping", "bad"]);
    assert.equal(m.body.error.position, 6);
  });

  void test("a run-time error and a limit, from the bounded evaluator", async () => {
    const res = await t.api("POST", "/v1/expressions/preview", {
      kind: "mapping",
      expression: "$number(city)",
    });
    assert.equal(res.body.ok, false);
    assert.equal(res.body.error.code, "expression_error");
    assert.match(res.body.error.message, /number/i);
    assert.equal(typeof res.body.error.position, "number");
    const loop = await t.api("POST", "/v1/expressions/preview", {
      kind: "mapping",
      expression: "$count([1..200000])",
    });
    assert.equal(loop.body.ok, false);
    assert.equal(loop.body.error.code, "expression_too_large");
  });

  void test("bad input is a 400, and it needs a key", async () => {
    const res = await t.api("POST", "/v1/expressions/preview", { kind: "route", expression: "x" });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, "invalid_request");
    const anon = await t.api(
      "POST",
      "/v1/expressions/preview",
      { kind: "filter", expression: "x" },
      { key: null },
    );
    assert.equal(anon.status, 401);
  });
});

void describe("POST /v1/destinations/test (unsaved)", () => {
  void test("a wrong password: the handshake really fails, shown; nothing stored", async () => {
    sb.csrf.reset();
    const res = await t.api("POST", "/v1/destinations/test", {
      destination: csrfDestination("wrong-pass-1234"),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.auth.ok, false);
    assert.equal(res.body.auth.error.code, "auth_rejected");
    assert.equal(res.body.requests[0].step, "auth:csrf");
    assert.equal(res.body.requests[0].status, 401);
    assert.doesNotMatch(res.text, /wrong-pass-1234/);
  });

  void test("the right password: handshake, the redacted request; send: the vendor's answer", async () => {
    sb.csrf.reset();
    const res = await t.api("POST", "/v1/destinations/test", {
      destination: csrfDestination(A.csrf.password),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.auth.ok, true, res.text);
    assert.deepEqual(res.body.outcome, { kind: "dry_run" });
    const push = res.body.requests.find((r: { step: string }) => r.step.startsWith("push"));
    assert.match(push.step, /dry run/);
    assert.equal(push.requestHeaders["authorization"], "[redacted]");
    assert.equal(push.requestHeaders["x-csrf-token"], "[redacted]");
    assert.match(push.requestBody, /asha\.rao@example\.com/);
    assert.equal(sb.csrf.state.leads.length, 0, "a dry run sends no lead");
    assert.equal(sb.csrf.state.tokenRequests, 1, "the handshake is real");
    assert.doesNotMatch(res.text, new RegExp(A.csrf.password));

    const sent = await t.api("POST", "/v1/destinations/test", {
      destination: csrfDestination(A.csrf.password),
      send: true,
      lead: { name: "Test", email: "test-send@tools.test" },
    });
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.body.outcome.kind, "delivered", sent.text);
    assert.equal(sb.csrf.state.leads.length, 1);
    assert.doesNotMatch(sent.text, new RegExp(A.csrf.password));

    // Nothing of it was stored: no destination, no delivery, no credential.
    assert.equal((await t.api("GET", "/v1/destinations")).body.data.length, 0);
    assert.equal((await t.api("GET", "/v1/deliveries")).body.data.length, 0);
    const creds = await t.app.kysely.selectFrom("credentials").selectAll().execute();
    assert.equal(creds.length, 0, "the handshake's credential is not kept");
  });

  void test("over a saved destination: [redacted] keeps its stored secret; the saved one is untouched", async () => {
    sb.csrf.reset();
    const saved = await t.api("POST", "/v1/destinations", {
      ...csrfDestination(A.csrf.password),
      name: "csrf-saved",
    });
    assert.equal(saved.status, 201, saved.text);
    assert.equal(saved.body.auth.password, "[redacted]");
    // What a form sends: the destination's fields (not its id, state, …), secrets as read.
    const { id: _id, state: _s, hold: _h, createdAt: _c, updatedAt: _u, ...fields } = saved.body;
    const res = await t.api("POST", "/v1/destinations/test", {
      id: "csrf-saved",
      destination: { ...fields, filter: 'city = "Bengaluru"' },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.auth.ok, true, res.text);
    assert.equal(res.body.destination, "csrf-saved");
    const after = await t.api("GET", "/v1/destinations/csrf-saved");
    assert.equal(after.body.filter, undefined, "the saved destination did not change");
    await t.api("DELETE", "/v1/destinations/csrf-saved");
  });

  void test("an invalid unsaved destination: 400 invalid_destination with a path per problem", async () => {
    const res = await t.api("POST", "/v1/destinations/test", {
      destination: {
        name: "x",
        connector: "http",
        url: "not a url",
        color: "red",
        auth: { type: "csrf", username: "" },
      },
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, "invalid_destination");
    assert.deepEqual(paths(res.body.error.details).sort(), ["color", "url"]);
  });
});

void describe("400 invalid_destination: a machine-readable path per problem", () => {
  void test("every problem of the auth config, each at its field", async () => {
    const res = await t.api("POST", "/v1/destinations", {
      name: "bad-auth",
      connector: "http",
      url: `${sb.url}/csrf/leads`,
      auth: { type: "csrf", tokenUrl: "nope", username: "", passwrd: "x" },
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, "invalid_destination");
    const got = paths(res.body.error.details).sort();
    assert.deepEqual(got, ["auth.password", "auth.passwrd", "auth.tokenUrl", "auth.username"]);
    const unknown = res.body.error.details.find((d: Detail) => d.path.join(".") === "auth.passwrd");
    assert.equal(unknown.code, "unrecognized_keys");
    assert.match(unknown.message, /passwrd/);
  });

  void test("a mapping that does not compile: its field and the position", async () => {
    const res = await t.api("POST", "/v1/destinations", {
      name: "bad-map",
      connector: "http",
      url: `${sb.url}/csrf/leads`,
      mapping: { email: "email", full: "name &" },
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, "invalid_mapping");
    assert.deepEqual(res.body.error.details[0].path, ["mapping", "full"]);
    assert.equal(typeof res.body.error.details[0].position, "number");
  });
});
