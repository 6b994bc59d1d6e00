import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { ADMIN_TOKEN, BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

const A = SANDBOX_ACCOUNTS.ejento;
const FAST_RETRY = { delaysMs: [100, 100, 100], jitter: 0 };

for (const backend of BACKENDS) {
  describe(`ejento connector (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    const ejento = () => sb.ejento.state;

    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
      for (const name of ["ejento-main", "ejento-refresh"]) {
        const res = await t.api("POST", "/v1/destinations", {
          name,
          connector: "ejento",
          baseUrl: `${sb.url}/ejento`,
          authBaseUrl: `${sb.url}/ejento-auth`,
          email: A.email,
          password: A.password,
          options: { agentId: A.agentId },
          filter: `attributes.to = '${name}'`,
          retry: FAST_RETRY,
        });
        assert.equal(res.status, 201, res.text);
      }
      // Pipelines: a CRM gets the lead after Ejento, with the agent's answer from the enrichment.
      const crm = await t.api("POST", "/v1/destinations", {
        name: "ejento-crm",
        connector: "http",
        url: `${sb.url}/sink/crm`,
        after: ["ejento-main"],
        filter: "attributes.to = 'ejento-main'",
        mapping: { email: "email", qualification: "enrichment.`ejento-main`.answer" },
      });
      assert.equal(crm.status, 201, crm.text);
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    async function push(to: string, email: string) {
      const res = await t.api("POST", "/v1/leads", {
        name: "Asha",
        lastName: "Rao",
        email,
        city: "Pune",
        context: "Wants a 2BHK",
        to,
      });
      assert.equal(res.status, 201, res.text);
      return eventually(
        async () => {
          const r = await t.api("GET", `/v1/leads/${res.body.id}`);
          const d = r.body.deliveries.find((x: { destination: string }) => x.destination === to);
          return d && (d.status === "delivered" || d.status === "failed") ? { lead: r.body, d } : undefined;
        },
        10_000,
        `lead ${email} delivered`,
      );
    }

    test("register the account, list and update users (admin API)", async () => {
      const path = "/v1/destinations/ejento-main/ejento";
      assert.equal((await t.api("POST", `${path}/register`, {}, { key: null })).status, 401);
      assert.equal((await t.api("GET", `${path}/users`, undefined, { key: null })).status, 401);
      const reg = await t.api("POST", `${path}/register`, { fullName: "Leadpush Bot" });
      assert.equal(reg.status, 201, reg.text);
      assert.equal(reg.body.user.email, A.email);
      assert.equal(reg.body.user.isSuperuser, true);
      assert.deepEqual(
        ejento().signups.map((s) => s.status),
        [200],
      );
      const again = await t.api("POST", `${path}/register`, {});
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, "ejento_user_exists");

      // Someone else signs up directly; paging through the users API finds both.
      const other = await fetch(`${sb.url}/ejento-auth/api/users/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "sales@acme.test", password: "sales-pass-1" }),
      });
      const otherId = ((await other.json()) as { id: string }).id;
      const users = await t.api("GET", `${path}/users`);
      assert.equal(users.status, 200, users.text);
      assert.equal(users.body.count, 2);
      assert.deepEqual(users.body.data.map((u: { email: string }) => u.email).sort(), [
        A.email,
        "sales@acme.test",
      ]);
      const page = ejento().tokenRequests.filter((r) => r.kind === "login");
      assert.equal(page.length, 1, "one login, cached");

      const upd = await t.api("PATCH", `${path}/users/${otherId}`, {
        fullName: "Sales Team",
        isActive: false,
      });
      assert.equal(upd.status, 200, upd.text);
      assert.deepEqual([upd.body.user.fullName, upd.body.user.isActive], ["Sales Team", false]);
      assert.equal(ejento().users.find((u) => u.id === otherId)?.full_name, "Sales Team");
      const missing = await t.api("PATCH", `${path}/users/00000000-0000-4000-8000-000000000000`, {
        fullName: "x",
      });
      assert.equal(missing.status, 404);
      const bad = await t.api("PATCH", `${path}/users/${otherId}`, {});
      assert.equal(bad.status, 400);

      // Email and password are secrets: write-only, never shown.
      const view = await t.api("GET", "/v1/destinations/ejento-main");
      assert.equal(view.body.email, "[redacted]");
      assert.equal(view.body.password, "[redacted]");
      assert.equal(view.body.auth, undefined);
      const withAuth = await t.api("POST", "/v1/destinations", {
        name: "ejento-bad",
        connector: "ejento",
        email: A.email,
        password: A.password,
        options: { agentId: 1 },
        auth: { type: "none" },
      });
      assert.equal(withAuth.status, 400);
    });

    test("a lead becomes a chat thread and an agent response, kept on the delivery and the lead", async () => {
      const threads = ejento().threads.length;
      sb.sink.reset();
      const { lead, d } = await push("ejento-main", "asha@pune.test");
      assert.equal(d.status, "delivered", JSON.stringify(d.lastError));
      assert.equal(ejento().threads.length, threads + 1);
      const thread = ejento().threads.at(-1)!;
      assert.equal(thread.title, "Lead Asha Rao");
      const answer = ejento().responses.at(-1)!;
      assert.equal(answer.chat_thread_id, thread.id);
      assert.equal(
        answer.message,
        "New lead: Asha Rao, asha@pune.test, , city Pune. Wants a 2BHK Qualify this lead and suggest a first message.",
      );
      assert.equal(d.externalId, String(thread.id));
      assert.equal(d.response.response, answer.response);
      assert.match(answer.response, /asha@pune\.test/);
      assert.deepEqual(lead.enrichment["ejento-main"], {
        threadId: thread.id,
        responseId: answer.id,
        answer: answer.response,
      });
      assert.deepEqual(
        d.attempts[0].exchanges.map((e: { step: string }) => e.step),
        ["chat-thread", "response"],
      );
      await sb.sink.waitFor(1, 5000);
      assert.deepEqual(sb.sink.received.at(-1)!.body, {
        email: "asha@pune.test",
        qualification: answer.response,
      });
      const all = JSON.stringify(d) + t.logs.join("");
      assert.ok(!all.includes(A.password), "the password never shows");
    });

    test("a retry after the thread was created reuses the thread", async () => {
      const threads = ejento().threads;
      const before = threads.length;
      const responses = ejento().responses.length;
      // Arm failNext the moment the thread exists: the response call that follows answers 503.
      const push0 = threads.push;
      threads.push = function (...items) {
        threads.push = push0;
        sb.ejento.control({ failNext: 1 });
        return push0.apply(this, items);
      };
      const { d } = await push("ejento-main", "retry@pune.test");
      assert.equal(d.status, "delivered");
      assert.equal(d.attemptCount, 2);
      assert.equal(d.attempts[0].error.code, "http_503");
      assert.deepEqual(
        d.attempts.map((a: { exchanges: { step: string }[] }) => a.exchanges.map((e) => e.step).join(",")),
        ["chat-thread,response", "response"],
      );
      assert.equal(ejento().threads.length, before + 1, "one thread");
      assert.equal(ejento().responses.length, responses + 1);
      assert.equal(ejento().responses.at(-1)!.chat_thread_id, ejento().threads.at(-1)!.id);
    });

    test("tokens are refreshed ahead of expiry with the auth-app token; a refused refresh logs in again", async () => {
      sb.ejento.control({ tokenLifetimeSeconds: 2 });
      const kinds = () => ejento().tokenRequests.map((r) => `${r.kind}:${r.status}`);
      const start = kinds().length;
      assert.equal((await push("ejento-refresh", "r1@pune.test")).d.status, "delivered");
      assert.deepEqual(kinds().slice(start), ["login:200"]);
      // Two-second tokens are refreshed a second ahead of expiry.
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await push("ejento-refresh", "r2@pune.test")).d.status, "delivered");
      assert.deepEqual(kinds().slice(start), ["login:200", "refresh:200"]);
      const refresh = ejento().rejected.filter((r) => r.path.includes("refresh"));
      assert.equal(refresh.length, 0);

      sb.ejento.control({ expireAuthTokens: true });
      await new Promise((r) => setTimeout(r, 1100));
      const { d } = await push("ejento-refresh", "r3@pune.test");
      assert.equal(d.status, "delivered");
      assert.deepEqual(kinds().slice(start), ["login:200", "refresh:200", "refresh:401", "login:200"]);
      assert.deepEqual(
        d.attempts[0].exchanges.map((e: { step: string }) => e.step),
        ["auth refresh", "auth login", "chat-thread", "response"],
      );
      sb.ejento.control({ tokenLifetimeSeconds: 2 * 24 * 3600 });
    });

    if (backend === "sqlite") {
      test("CLI: leadpush ejento users", async () => {
        const out = await run([
          "ejento",
          "users",
          "--destination",
          "ejento-main",
          "--url",
          t.url,
          "--key",
          ADMIN_TOKEN,
        ]);
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stdout, new RegExp(A.email.replace(".", "\\.")));
        assert.match(out.stdout, /2 user\(s\)/);
      });
    }
  });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["src/cli.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
