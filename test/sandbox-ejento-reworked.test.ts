import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import { parse } from "csv-parse/sync";
import { createEjentoSimulator } from "../src/sandbox/ejento.ts";
import { createReworkedSimulator } from "../src/sandbox/reworked.ts";

const ejento = createEjentoSimulator({ agents: ["42", "43"] });
const reworked = createReworkedSimulator({
  processingDelayMs: 150,
  accounts: [{ email: "ops@acme.test", password: "s3cret-pass" }],
});
const app: FastifyInstance = Fastify();
const side: FastifyInstance = Fastify();
const files = new Map<string, string>();
const received: Array<Record<string, unknown>> = [];
let base = "";
let sideBase = "";

async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("waitFor timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { ...headers } };
  if (typeof body === "string" || body instanceof URLSearchParams) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let json: any = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

before(async () => {
  for (const sim of [...ejento.simulators, reworked]) {
    await app.register(async (s) => sim.register(s), { prefix: sim.prefix });
  }
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;

  side.get("/csv/:name", async (req, reply) => {
    const f = files.get((req.params as { name: string }).name);
    return f === undefined ? reply.code(404).send("nope") : reply.type("text/csv").send(f);
  });
  side.post("/callback", async (req) => {
    received.push(req.body as Record<string, unknown>);
    return { ok: true };
  });
  await side.listen({ host: "127.0.0.1", port: 0 });
  const a2 = side.server.address();
  sideBase = `http://127.0.0.1:${typeof a2 === "object" && a2 ? a2.port : 0}`;
});

after(async () => {
  await app.close();
  await side.close();
  reworked.close();
});

void describe("ejento", () => {
  let authToken = "";
  let ejentoToken = "";
  let secondId = "";

  void test("signup", async () => {
    const r = await call("POST", "/ejento-auth/api/users/signup", {
      email: "admin@acme.test",
      password: "changethis1",
      full_name: "Ada Admin",
    });
    assert.equal(r.status, 200);
    assert.match(r.json.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...r.json, id: "x" },
      { id: "x", email: "admin@acme.test", is_active: true, is_superuser: true, full_name: "Ada Admin" },
    );
    assert.equal(
      (
        await call("POST", "/ejento-auth/api/users/signup", {
          email: "admin@acme.test",
          password: "changethis1",
        })
      ).status,
      400,
    );
    assert.equal(
      (await call("POST", "/ejento-auth/api/users/signup", { email: "x@acme.test", password: "short" }))
        .status,
      422,
    );
    const second = await call("POST", "/ejento-auth/api/users/signup", {
      email: "bob@acme.test",
      password: "bobpassword",
    });
    assert.equal(second.json.is_superuser, false);
    secondId = second.json.id;
  });

  void test("login is form-encoded", async () => {
    const json = await call("POST", "/ejento-auth/api/login/access-token", {
      username: "admin@acme.test",
      password: "changethis1",
    });
    assert.equal(json.status, 422);
    assert.equal(json.json.detail[0].loc.join("."), "body.username");
    const wrong = await call(
      "POST",
      "/ejento-auth/api/login/access-token",
      new URLSearchParams({ username: "admin@acme.test", password: "nope-nope" }),
    );
    assert.deepEqual([wrong.status, wrong.json], [400, { detail: "Incorrect email or password" }]);
    const ok = await call(
      "POST",
      "/ejento-auth/api/login/access-token",
      new URLSearchParams({ username: "admin@acme.test", password: "changethis1" }),
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.json.token_type, "bearer");
    assert.equal(ok.json.expires_in, 2 * 24 * 3600);
    assert.notEqual(ok.json.access_token, ok.json.ejento_access_token);
    authToken = ok.json.access_token;
    ejentoToken = ok.json.ejento_access_token;
  });

  void test("refresh takes the auth-app token only", async () => {
    assert.equal(
      (await call("POST", "/ejento-auth/api/login/refresh-token", undefined, bearer(ejentoToken))).status,
      401,
    );
    assert.equal((await call("POST", "/ejento-auth/api/login/refresh-token")).status, 401);
    const r = await call("POST", "/ejento-auth/api/login/refresh-token", undefined, bearer(authToken));
    assert.equal(r.status, 200);
    assert.ok(
      r.json.access_token && r.json.ejento_access_token && r.json.ejento_access_token !== ejentoToken,
    );
  });

  void test("thread and response with the Ejento token", async () => {
    assert.equal(
      (await call("POST", "/ejento/api/agent/42/chat-thread", undefined, bearer(authToken))).status,
      401,
    );
    assert.equal(
      (await call("POST", "/ejento/api/agent/7/chat-thread", undefined, bearer(ejentoToken))).status,
      404,
    );
    const t = await call(
      "POST",
      "/ejento/api/agent/42/chat-thread",
      { title: "Lead 1" },
      bearer(ejentoToken),
    );
    assert.equal(t.status, 200);
    assert.equal(typeof t.json.id, "number");
    assert.equal(t.json.title, "Lead 1");
    const message = "Qualify this lead. first_name: Jane, last_name: Doe, email: jane@acme.test";
    const r = await call(
      "POST",
      "/ejento/api/agent/42/response",
      { chat_thread_id: t.json.id, message },
      bearer(ejentoToken),
    );
    assert.equal(r.status, 200);
    assert.equal(r.json.chat_thread_id, t.json.id);
    assert.match(r.json.response, /Jane Doe/);
    const again = await call(
      "POST",
      "/ejento/api/agent/42/response",
      { chat_thread_id: t.json.id, query: message },
      bearer(ejentoToken),
    );
    assert.equal(again.json.response, r.json.response);
    assert.equal(
      (
        await call(
          "POST",
          "/ejento/api/agent/42/response",
          { chat_thread_id: 999999, message },
          bearer(ejentoToken),
        )
      ).status,
      404,
    );
    assert.equal(
      (
        await call(
          "POST",
          "/ejento/api/agent/43/response",
          { chat_thread_id: t.json.id, message },
          bearer(ejentoToken),
        )
      ).status,
      404,
    );
    assert.equal(
      (
        await call(
          "POST",
          "/ejento/api/agent/42/response",
          { chat_thread_id: t.json.id },
          bearer(ejentoToken),
        )
      ).status,
      422,
    );
    const st = await call("GET", "/ejento/_state");
    assert.equal(st.json.threads.length, 1);
    assert.equal(st.json.responses.length, 2);
  });

  void test("expired Ejento token, then refresh", async () => {
    assert.equal((await call("POST", "/ejento/_control", { expireTokens: true })).status, 200);
    assert.equal(
      (await call("POST", "/ejento/api/agent/42/chat-thread", undefined, bearer(ejentoToken))).status,
      401,
    );
    const r = await call("POST", "/ejento-auth/api/login/refresh-token", undefined, bearer(authToken));
    assert.equal(
      (await call("POST", "/ejento/api/agent/42/chat-thread", undefined, bearer(r.json.ejento_access_token)))
        .status,
      200,
    );
  });

  void test("users list and update", async () => {
    const list = await call("GET", "/ejento-auth/api/users/?skip=0&limit=100", undefined, bearer(authToken));
    assert.equal(list.status, 200);
    assert.equal(list.json.count, 2);
    assert.equal(list.json.data.length, 2);
    const p = await call(
      "PATCH",
      `/ejento-auth/api/users/${secondId}`,
      { full_name: "Bob B", is_active: false },
      bearer(authToken),
    );
    assert.deepEqual([p.status, p.json.full_name, p.json.is_active], [200, "Bob B", false]);
    const unknown = "00000000-0000-4000-8000-000000000000";
    assert.equal(
      (await call("PATCH", `/ejento-auth/api/users/${unknown}`, { full_name: "X" }, bearer(authToken)))
        .status,
      404,
    );
    assert.equal(
      (await call("PATCH", "/ejento-auth/api/users/nope", { full_name: "X" }, bearer(authToken))).status,
      422,
    );
    const inactive = await call(
      "POST",
      "/ejento-auth/api/login/access-token",
      new URLSearchParams({ username: "bob@acme.test", password: "bobpassword" }),
    );
    assert.equal(inactive.status, 400);
    await call("PATCH", `/ejento-auth/api/users/${secondId}`, { is_active: true }, bearer(authToken));
    const bob = await call(
      "POST",
      "/ejento-auth/api/login/access-token",
      new URLSearchParams({ username: "bob@acme.test", password: "bobpassword" }),
    );
    assert.equal(
      (await call("GET", "/ejento-auth/api/users/", undefined, bearer(bob.json.access_token))).status,
      403,
    );
  });
});

void describe("reworked", () => {
  let apiKey = "";
  let token = "";
  const job = async (name: string, csv: string) => {
    files.set(name, csv);
    return call(
      "POST",
      "/reworked/process-leads",
      { file_url: `${sideBase}/csv/${name}`, email: "ops@acme.test", callback_url: `${sideBase}/callback` },
      bearer(token),
    );
  };
  const status = async (id: string) =>
    (
      await call(
        "POST",
        "/reworked/file-status",
        { file_upload_identifier: id, email: "ops@acme.test" },
        bearer(token),
      )
    ).json;

  void test("authenticate and token", async () => {
    assert.equal(
      (await call("POST", "/reworked/user-authenticate", { email: "ops@acme.test", password: "bad" })).status,
      403,
    );
    assert.equal(
      (
        await call("POST", "/reworked/user-authenticate", "email=ops@acme.test&password=s3cret-pass", {
          "content-type": "application/x-www-form-urlencoded",
        })
      ).status,
      403,
    );
    const a = await call("POST", "/reworked/user-authenticate", {
      email: "ops@acme.test",
      password: "s3cret-pass",
    });
    assert.equal(a.status, 200);
    assert.equal(a.json.msg, "User Authenticated Successfully");
    apiKey = a.json.data.api_secret_key;
    assert.equal(
      (await call("POST", "/reworked/generate-token", { api_key: "wrong", email: "ops@acme.test" })).status,
      403,
    );
    const t = await call("POST", "/reworked/generate-token", { api_key: apiKey, email: "ops@acme.test" });
    assert.deepEqual(
      [t.status, t.json.msg, t.json.data.expires_in],
      [200, "Token generated successfully", 86400],
    );
    token = t.json.data.token;
  });

  void test("process-leads downloads, processes, calls back", async () => {
    assert.equal(
      (await call("POST", "/reworked/process-leads", { file_url: "x", email: "y", callback_url: "z" }))
        .status,
      401,
    );
    const r = await job(
      "leads.csv",
      "email,first_name,last_name\njane@acme.test,Jane,Doe\nbob@gmail.com,Bob,Roe\n",
    );
    assert.equal(r.status, 200);
    assert.equal(r.json.msg, "File processing started");
    const id: string = r.json.data.file_upload_identifier;
    assert.ok(id && r.json.data.token);
    assert.equal((await status(id)).data.status, "STARTED");
    const done = await waitFor(async () => {
      const s = await status(id);
      return s.data.status === "PROCESSED" ? s : undefined;
    });
    assert.equal(done.data.processed_file_url, `${base}/reworked/files/${id}.csv`);
    const byUrl = await call(
      "POST",
      "/reworked/file-status",
      { file_url: `${sideBase}/csv/leads.csv`, email: "ops@acme.test" },
      bearer(r.json.data.token),
    );
    assert.equal(byUrl.json.data.status, "PROCESSED");
    const cb = await waitFor(() => received.find((c) => c.file_upload_identifier === id));
    assert.deepEqual(cb, {
      file_upload_identifier: id,
      status: "PROCESSED",
      processed_file_url: done.data.processed_file_url,
    });
    const res = await fetch(done.data.processed_file_url);
    const rows = parse(await res.text(), { columns: true }) as Array<Record<string, string>>;
    assert.equal(rows.length, 2);
    for (const c of ["email", "first_name", "company", "job_title", "linkedin_url", "lead_score"])
      assert.ok(c in rows[0]!, c);
    assert.equal(rows[0]!.company?.startsWith("Acme"), true);
    assert.equal(reworked.state.downloads.length, 1);
    assert.equal(
      reworked.state.jobs[0]!.history.map((h) => h.status).join(","),
      "STARTED,PROCESSING,PROCESSED",
    );
  });

  void test("bad files are rejected with 400", async () => {
    const bad = await job("bad.csv", 'email,name\n"jane@acme.test,Jane\n');
    assert.deepEqual([bad.status, bad.json], [400, { msg: "Invalid CSV file" }]);
    assert.equal(
      (await job("ragged.csv", "email,name\njane@acme.test,Jane,extra\n")).json.msg,
      "Invalid CSV file",
    );
    const noEmail = await job("noemail.csv", "name,phone\nJane,123\n");
    assert.deepEqual([noEmail.status, noEmail.json.msg], [400, "CSV file must have an email column"]);
    const empty = await job("empty.csv", "email,name\n");
    assert.deepEqual([empty.status, empty.json.msg], [400, "CSV file has no leads"]);
    assert.equal(
      (
        await call(
          "POST",
          "/reworked/process-leads",
          {
            file_url: `${sideBase}/csv/missing.csv`,
            email: "ops@acme.test",
            callback_url: `${sideBase}/callback`,
          },
          bearer(token),
        )
      ).status,
      400,
    );
  });

  void test("FAILED mode, dropped leads, callback modes, expired token", async () => {
    await call("POST", "/reworked/_control", { failNextJob: true, processingDelayMs: 40 });
    const f = await job("f.csv", "email\na@x.test\n");
    const failed = await waitFor(async () =>
      (await status(f.json.data.file_upload_identifier)).data.status === "FAILED" ? true : undefined,
    );
    assert.ok(failed);
    const fcb = await waitFor(() =>
      received.find((c) => c.file_upload_identifier === f.json.data.file_upload_identifier),
    );
    assert.equal(fcb.status, "FAILED");

    await call("POST", "/reworked/_control", { dropEmails: ["b@x.test"], callbackMode: "twice" });
    const d = await job("d.csv", "email\na@x.test\nb@x.test\n");
    const did = d.json.data.file_upload_identifier;
    const url = await waitFor(async () => (await status(did)).data.processed_file_url ?? undefined);
    const text = await (await fetch(url)).text();
    assert.match(text, /a@x\.test/);
    assert.doesNotMatch(text, /b@x\.test/);
    await waitFor(() =>
      received.filter((c) => c.file_upload_identifier === did).length === 2 ? true : undefined,
    );

    await call("POST", "/reworked/_control", { callbackMode: "none" });
    const n = await job("n.csv", "email\nc@x.test\n");
    await waitFor(async () =>
      (await status(n.json.data.file_upload_identifier)).data.status === "PROCESSED" ? true : undefined,
    );
    await sleep(100);
    assert.equal(
      received.filter((c) => c.file_upload_identifier === n.json.data.file_upload_identifier).length,
      0,
    );

    await call("POST", "/reworked/_control", { expireTokens: true });
    assert.equal(
      (
        await call(
          "POST",
          "/reworked/file-status",
          { file_upload_identifier: did, email: "ops@acme.test" },
          bearer(token),
        )
      ).status,
      401,
    );
  });

  void test("reset stops pending jobs", async () => {
    reworked.reset();
    await call("POST", "/reworked/_control", { processingDelayMs: 60 });
    const a = await call("POST", "/reworked/user-authenticate", {
      email: "ops@acme.test",
      password: "s3cret-pass",
    });
    const t = await call("POST", "/reworked/generate-token", {
      api_key: a.json.data.api_secret_key,
      email: "ops@acme.test",
    });
    token = t.json.data.token;
    const before = received.length;
    const r = await job("late.csv", "email\nlate@x.test\n");
    assert.equal(r.status, 200);
    reworked.reset();
    await sleep(150);
    assert.equal(received.length, before);
    assert.equal(reworked.state.jobs.length, 0);
  });
});
