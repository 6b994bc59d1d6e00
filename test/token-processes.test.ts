import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import { CREDENTIAL_LEASE_MS, CredentialRuntime, type AuthSession } from "../src/auth/runtime.ts";
import type { AuthStrategy, ObtainResult } from "../src/auth/strategy.ts";
import { parseDatabaseUrl } from "../src/config.ts";
import { newRequest } from "../src/http/http-client.ts";
import { credentialStore } from "../src/store/credentials-repo.ts";
import { openDb, type Db } from "../src/store/db.ts";
import { createRedactor } from "../src/util/redact.ts";
import { createSecretBox, parseMasterKey } from "../src/util/secret-box.ts";
import {
  ADMIN_TOKEN,
  type Backend,
  BACKENDS,
  eventually,
  freePort,
  freshDatabase,
  type FreshDatabase,
  SECRET_KEY,
} from "./helpers/harness.ts";

// One token per destination across processes (issue 16): three leadpush processes on one database
// start on a backlog for an `oauth2` destination whose token endpoint answers after 1.5 s. They
// share the single flight through the database: one token request per token lifetime, every push
// carries that token. The vendor allows one live token per client (a new token revokes the old
// one); when it refuses one push, exactly one new token is fetched, and all processes use it.

const TOKEN_DELAY_MS = 1500;
const LEADS_PER_PROCESS = 12;
const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

interface Push {
  email: string;
  token: string;
  status: number;
  at: number;
}

/** A vendor: a slow token endpoint issuing one live token at a time, and a sink checking it. */
function startVendor() {
  const state = {
    tokenRequests: 0,
    /** The only token the sink accepts (the latest issued). */
    live: "",
    pushes: [] as Push[],
    delivered: new Set<string>(),
    /** Refuse the next push with 401 whatever its token (the vendor revoked the token early). */
    refuseNext: false,
  };
  const read = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => resolve(body));
    });
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await read(req);
      if (req.url === "/token") {
        state.tokenRequests++;
        await new Promise((r) => setTimeout(r, TOKEN_DELAY_MS));
        state.live = `tok-${state.tokenRequests}`;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ access_token: state.live, token_type: "Bearer", expires_in: 3600 }));
        return;
      }
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      let status = token === state.live ? 200 : 401;
      if (status === 200 && state.refuseNext) {
        state.refuseNext = false;
        status = 401;
      }
      const email = (JSON.parse(body) as { email: string }).email;
      state.pushes.push({ email, token, status, at: Date.now() });
      if (status === 200) state.delivered.add(email);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(status === 200 ? { id: "ok" } : { error: "invalid_token" }));
    })();
  });
  return {
    state,
    server,
    async listen(): Promise<string> {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}

/** Each lead got through once, at most after one refusal of an old token in the same attempt. */
function assertPushedOnce(emails: string[], pushes: Push[]): void {
  for (const email of emails) {
    const got = pushes
      .filter((p) => p.email === email)
      .map((p) => p.status)
      .join();
    assert.ok(got === "200" || got === "401,200", `${email}: ${got} (once, or refused once then pushed)`);
  }
}

{
  const backend: Backend = "postgres";
  describe(`three processes on ${backend}`, () => {
    let db: FreshDatabase;
    let vendor: ReturnType<typeof startVendor>;
    let vendorUrl: string;
    const children: ChildProcess[] = [];
    const bases: string[] = [];

    async function startProcess(): Promise<string> {
      const port = await freePort();
      const proc = spawn(process.execPath, ["src/cli.ts", "serve"], {
        env: {
          ...process.env,
          PORT: String(port),
          HOST: "127.0.0.1",
          DATABASE_URL: db.url,
          LEADPUSH_DATA_DIR: db.dir,
          LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
          LEADPUSH_SECRET_KEY: SECRET_KEY,
          LEADPUSH_WORKER_CONCURRENCY: "4",
          LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "ignore", "inherit"],
      });
      children.push(proc);
      const base = `http://127.0.0.1:${port}`;
      await eventually(async () => (await fetch(`${base}/readyz`)).ok, 20_000, "leadpush to start");
      return base;
    }

    /** Each process ingests its share of the leads at once: each worker starts on its backlog. */
    async function ingestEverywhere(tag: string): Promise<string[]> {
      const emails: string[] = [];
      const ingest = async (base: string, p: number) => {
        const leads = Array.from({ length: LEADS_PER_PROCESS }, (_, i) => ({
          name: `T${p}-${i}`,
          email: `${tag}.${p}.${i}@token-processes.test`,
        }));
        emails.push(...leads.map((l) => l.email));
        const res = await fetch(`${base}/v1/leads/batch`, {
          method: "POST",
          headers,
          body: JSON.stringify({ leads }),
        });
        const body = (await res.json()) as { accepted: number };
        assert.equal(body.accepted, LEADS_PER_PROCESS, JSON.stringify(body));
      };
      await Promise.all(bases.map(ingest));
      return emails;
    }

    before(async () => {
      vendor = startVendor();
      vendorUrl = await vendor.listen();
      db = await freshDatabase(backend);
      // One after the other: the first one runs the migrations.
      for (let i = 0; i < 3; i++) bases.push(await startProcess());
    });
    after(async () => {
      for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
      await Promise.all(
        children.map(
          (c) => new Promise<void>((r) => (c.exitCode === null ? c.once("exit", () => r()) : r())),
        ),
      );
      vendor.server.closeAllConnections();
      await new Promise((r) => vendor.server.close(r));
      await db?.drop();
    });

    test(
      "one token request for all processes; a 401 on one process gives one new token for all",
      {
        timeout: 90_000,
      },
      async () => {
        const created = await fetch(`${bases[0]}/v1/destinations`, {
          method: "POST",
          headers,
          body: JSON.stringify({
            name: "one-token",
            connector: "http",
            url: `${vendorUrl}/push`,
            concurrency: 4,
            auth: { type: "oauth2", tokenUrl: `${vendorUrl}/token`, clientId: "lp", clientSecret: "s3cret" },
          }),
        });
        assert.equal(created.status, 201, await created.text());
        // Every process's destination cache must know the new destination.
        await new Promise((r) => setTimeout(r, 1500));

        const first = await ingestEverywhere("a");
        await eventually(
          () => first.every((e) => vendor.state.delivered.has(e)),
          30_000,
          "first backlog delivered",
        );
        assert.equal(vendor.state.tokenRequests, 1, "one token request for three processes");
        assert.deepEqual(
          vendor.state.pushes.filter((p) => p.token !== "tok-1"),
          [],
          "every push carried the one token",
        );
        assert.equal(vendor.state.pushes.length, first.length, "no push was refused");

        // The vendor refuses one push (it revoked the token early): exactly one new token request.
        let mark = vendor.state.pushes.length;
        vendor.state.refuseNext = true;
        const second = await ingestEverywhere("b");
        await eventually(
          () => second.every((e) => vendor.state.delivered.has(e)),
          30_000,
          "second backlog delivered",
        );
        const refusal = vendor.state.pushes.slice(mark);
        assert.ok(
          refusal.some((p) => p.status === 401 && p.token === "tok-1"),
          "the vendor refused a push",
        );
        assert.ok(
          refusal.some((p) => p.status === 200 && p.token === "tok-2"),
          "the new token was used",
        );
        assertPushedOnce(second, refusal);

        // A refresh by one is used by all: the processes that still hold the old token are refused
        // once (the vendor revoked it) and take the new one from the database, sent again in the
        // same attempt, with no token request of their own.
        mark = vendor.state.pushes.length;
        const third = await ingestEverywhere("c");
        await eventually(
          () => third.every((e) => vendor.state.delivered.has(e)),
          30_000,
          "third backlog delivered",
        );
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(vendor.state.tokenRequests, 2, "one new token request after the refusal, for all");
        const last = vendor.state.pushes.slice(mark);
        assert.deepEqual(
          last.filter((p) => p.status === 200 && p.token !== "tok-2"),
          [],
          "every push that got through carried the new token",
        );
        assertPushedOnce(third, last);
      },
    );
  });
}

// The same single flight at the level of the credential runtime, on both backends: three runtimes,
// each on its own database connection (as three processes have), share one handshake through the
// database. (SQLite is for one process — its ingest is not safe for several — but the flight works.)
for (const backend of BACKENDS) {
  describe(`credential runtimes on separate connections (${backend})`, () => {
    let fresh: FreshDatabase;
    const dbs: Db[] = [];
    let clock = Date.now();
    const box = createSecretBox(parseMasterKey(SECRET_KEY));
    const vendor = { requests: 0, answer: "ok" as "ok" | "refused" | "no answer once" };
    const strategy: AuthStrategy<{ type: string }> = {
      type: "test_token",
      schema: z.object({ type: z.string() }),
      secretFields: [],
      async obtain(): Promise<ObtainResult> {
        const n = ++vendor.requests;
        await new Promise((r) => setTimeout(r, 300));
        if (vendor.answer === "no answer once") {
          vendor.answer = "ok";
          return { ok: false, code: "auth_unreachable", message: "token endpoint: timed out" };
        }
        if (vendor.answer === "refused")
          return { ok: false, code: "auth_rejected", message: "bad client secret" };
        return { ok: true, credential: { values: { token: `t${n}` }, expiresAt: clock + 3_600_000 } };
      },
      apply(req, _config, credential) {
        req.headers["authorization"] = `Bearer ${credential?.values["token"] ?? ""}`;
      },
    };
    const http = { send: () => Promise.reject(new Error("no HTTP in this test")) };
    const runtime = (db: Db) => new CredentialRuntime(credentialStore(db.kysely), box, () => clock);
    const session = (rt: CredentialRuntime, id: string, version = "v1"): AuthSession =>
      rt.session(
        { id, version, auth: { type: "test_token" }, timeoutMs: 2000 },
        strategy,
        http,
        createRedactor(),
      );
    const tokenOf = async (s: AuthSession): Promise<string> => {
      const req = newRequest("POST", "http://vendor.test/push");
      const got = await s.prepare(req);
      return got.ok ? (req.headers["authorization"] ?? "") : got.code;
    };

    before(async () => {
      fresh = await freshDatabase(backend);
      // One after the other: the first one runs the migrations.
      for (let i = 0; i < 3; i++) dbs.push(await openDb(parseDatabaseUrl(fresh.url, fresh.dir)));
    });
    after(async () => {
      for (const db of dbs) await db.close();
      await fresh?.drop();
    });

    test("one handshake for all; after a refusal seen by all, one new one", async () => {
      vendor.requests = 0;
      vendor.answer = "ok";
      const runtimes = dbs.map(runtime);
      const sessions = runtimes.map((rt) => session(rt, "d-flight"));
      assert.deepEqual(await Promise.all(sessions.map(tokenOf)), Array(3).fill("Bearer t1"));
      assert.equal(vendor.requests, 1);
      // Every process was refused with t1: they all invalidate it, and fetch one new token.
      await Promise.all(sessions.map((s) => s.invalidate()));
      assert.deepEqual(await Promise.all(sessions.map(tokenOf)), Array(3).fill("Bearer t2"));
      assert.equal(vendor.requests, 2);
      // One is refused and fetches t3; another, refused with t2 after that, takes t3 from the store
      // (compare-and-swap: it does not drop the token it was not refused with).
      await sessions[0]!.invalidate();
      assert.equal(await tokenOf(sessions[0]!), "Bearer t3");
      await sessions[1]!.invalidate();
      assert.equal(await tokenOf(sessions[1]!), "Bearer t3");
      assert.equal(vendor.requests, 3);
    });

    test("a crashed fetcher's lease runs out; until then the others wait for it", async () => {
      vendor.requests = 0;
      vendor.answer = "ok";
      const store = credentialStore(dbs[0]!.kysely);
      assert.ok(await store.takeLease("d-crash", "crashed", clock, clock + CREDENTIAL_LEASE_MS, "v1"));
      const waiting = tokenOf(session(runtime(dbs[1]!), "d-crash"));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(vendor.requests, 0, "no handshake while the lease is live");
      clock += CREDENTIAL_LEASE_MS + 1;
      assert.equal(await waiting, "Bearer t1");
      assert.equal(vendor.requests, 1);
    });

    test("a handshake that got no answer is not held for the others: the next one tries", async () => {
      vendor.requests = 0;
      vendor.answer = "no answer once";
      const sessions = dbs.map((db) => session(runtime(db), "d-unreachable"));
      const got = await Promise.all(sessions.map(tokenOf));
      assert.deepEqual(got.sort(), ["Bearer t2", "Bearer t2", "auth_unreachable"]);
      assert.equal(vendor.requests, 2);
    });

    test("a failed handshake is held for all processes, until the destination changes", async () => {
      vendor.requests = 0;
      vendor.answer = "refused";
      const sessions = dbs.map((db) => session(runtime(db), "d-fail"));
      assert.deepEqual(await Promise.all(sessions.map(tokenOf)), Array(3).fill("auth_rejected"));
      assert.equal(vendor.requests, 1);
      // A process that started later answers with the held failure too.
      assert.equal(await tokenOf(session(runtime(dbs[2]!), "d-fail")), "auth_rejected");
      assert.equal(vendor.requests, 1);
      // Edited settings (a new version) are tried at once.
      vendor.answer = "ok";
      assert.equal(await tokenOf(session(runtime(dbs[1]!), "d-fail", "v2")), "Bearer t2");
      assert.equal(vendor.requests, 2);
    });
  });
}
