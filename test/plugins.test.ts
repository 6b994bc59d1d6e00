// "A new plug-in = one file + one registry line": an auth strategy with its own browser connect
// flow and a connector with its own admin route and CLI command, both defined and registered here,
// at run time, and used end to end against a real server (SQLite and Postgres).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { after, before, describe, test } from "node:test";
import { z } from "zod";
import { registerAuthStrategy } from "../src/auth/registry.ts";
import type { AuthStrategy } from "../src/auth/strategy.ts";
import { main } from "../src/cli.ts";
import type { Connector } from "../src/connectors/connector.ts";
import { classify, sendWithAuth } from "../src/connectors/push.ts";
import { registerConnector } from "../src/connectors/registry.ts";
import { newRequest } from "../src/http/http-client.ts";
import { browse, createDestination, delivered, freePort, postLead } from "./helpers/connect.ts";
import { ADMIN_TOKEN, BACKENDS, startApp, type TestApp } from "./helpers/harness.ts";

let seq = 0;
/** A lead no other lead duplicates (same email/phone would not be pushed again). */
const uniqueLead = () => {
  seq++;
  return { name: "Asha", email: `plugin.${seq}@example.com`, phone: `+9197${String(seq).padStart(8, "0")}` };
};

// --- A throwaway auth strategy: a "ticket" the provider hands back to the callback. ---------------

const ticketSchema = z
  .object({
    type: z.literal("test_ticket"),
    providerUrl: z.url(),
    /** How long a connected token is used (the strategy's `lifetimeMs`). */
    lifetimeSeconds: z.number().int().positive(),
  })
  .strict();
type TicketConfig = z.infer<typeof ticketSchema>;

/** What the throwaway strategy was asked, to prove the runtime and the API went through it. */
const calls = { begin: 0, complete: 0, obtain: 0, lifetime: 0 };

const ticketAuth: AuthStrategy<TicketConfig> = {
  type: "test_ticket",
  schema: ticketSchema,
  secretFields: [],
  connect: {
    lifetimeMs: 60_000,
    async begin(config, redirectUri) {
      calls.begin++;
      const state = randomBytes(16).toString("hex");
      const secret = randomBytes(8).toString("hex");
      const url = new URL(config.providerUrl);
      url.searchParams.set("state", state);
      url.searchParams.set("redirect_uri", redirectUri);
      url.searchParams.set("challenge", secret);
      return { url: url.href, state, pending: { secret } };
    },
    async complete(_config, _ctx, { params, pending }) {
      calls.complete++;
      const ticket = params.get("ticket");
      if (ticket !== `ticket-${pending["secret"]}`)
        return { ok: false, code: "oauth_exchange_failed", message: "the ticket does not match" };
      return { ok: true, credential: { values: { token: `connected-${ticket}` }, refresh: ticket } };
    },
  },
  lifetimeMs(config) {
    calls.lifetime++;
    return config.lifetimeSeconds * 1000;
  },
  async obtain(_config, ctx) {
    calls.obtain++;
    const refresh = ctx.previous?.refresh;
    if (refresh === undefined)
      return { ok: false, code: "needs_reconnect", message: "connect first", needsReconnect: true };
    return { ok: true, credential: { values: { token: `refreshed-${refresh}` }, refresh } };
  },
  apply(req, _config, credential) {
    req.headers["authorization"] = `Ticket ${credential?.values["token"] ?? ""}`;
  },
};

// --- A throwaway connector with an admin route and a CLI command. --------------------------------

const echoSchema = z.object({ url: z.url() }).strict();
type EchoConfig = z.infer<typeof echoSchema>;
/** What the CLI command printed (it runs in this process). */
const printed: string[] = [];

const echoConnector: Connector<EchoConfig> = {
  name: "test_echo",
  schema: echoSchema,
  secretFields: [],
  defaultAuth: { type: "none" },
  async deliver(ctx) {
    const sent = await sendWithAuth(ctx, () => {
      const req = newRequest("POST", ctx.destination.config.url);
      req.contentType = "json";
      req.body = { email: ctx.lead.email, via: "test_echo" };
      return req;
    });
    return sent.ok ? classify(sent.response) : sent.outcome;
  },
  adminRoutes(app, deps) {
    app.post("/v1/destinations/:id/test-echo/ping", async (req, reply) => {
      const body = deps.parseInput(z.object({ note: z.string().max(50) }).strict(), req.body);
      const d = await deps.open((req.params as { id: string }).id);
      const ping = newRequest("POST", (d.connectorConfig as EchoConfig).url);
      ping.contentType = "json";
      ping.body = { ping: body.note };
      const prepared = await d.authSession().prepare(ping);
      if (!prepared.ok) return reply.code(409).send({ error: { code: prepared.code, message: "" } });
      const sent = await d.http.send(ping, { timeoutMs: d.timeoutMs, step: "ping" });
      return { destination: d.name, status: sent.ok ? sent.response.status : 0 };
    });
  },
  commands: [
    {
      name: "test-echo",
      usage: "  test-echo ping --destination NAME\n                        ping a test_echo destination",
      async run(argv, api) {
        const { values, positionals } = parseArgs({
          args: argv,
          options: { ...api.serverOptions, destination: { type: "string" } },
          allowPositionals: true,
        });
        if (positionals[0] !== "ping" || !values.destination) return 2;
        const server = api.server(values);
        const path = `/v1/destinations/${encodeURIComponent(values.destination)}/test-echo/ping`;
        printed.push(JSON.stringify(await server.call("POST", path, { note: "from the cli" })));
        return 0;
      },
    },
  ],
};

registerAuthStrategy(ticketAuth);
registerConnector(echoConnector);

// --- A receiver that records what it got, and the "provider" the browser is sent to. -------------

interface Received {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}
const received: Received[] = [];
let receiver: Server;
let receiverUrl = "";

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      received.push({
        path: req.url ?? "",
        authorization: req.headers.authorization,
        body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
      });
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
after(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

/** What the provider does in the browser: approve, and send the browser back with the ticket. */
function providerApproves(authorizeUrl: string): string {
  const u = new URL(authorizeUrl);
  const back = new URL(u.searchParams.get("redirect_uri")!);
  back.searchParams.set("state", u.searchParams.get("state")!);
  back.searchParams.set("ticket", `ticket-${u.searchParams.get("challenge")}`);
  return back.href;
}

for (const backend of BACKENDS) {
  void describe(`plug-ins registered at run time (${backend})`, () => {
    let t: TestApp;
    let skewMs = 0;
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

    before(async () => {
      const port = await freePort();
      t = await startApp({
        backend,
        env: { PORT: String(port), LEADPUSH_PUBLIC_URL: `http://127.0.0.1:${port}` },
        now: () => Date.now() + skewMs,
      });
    });
    after(async () => {
      await t.close();
    });

    test("a test_echo destination with test_ticket auth: connect, push, refresh by the strategy's lifetime", async () => {
      const name = `echo-${backend}`;
      const dest = await createDestination(t, {
        name,
        connector: "test_echo",
        url: `${receiverUrl}/push`,
        auth: { type: "test_ticket", providerUrl: "https://provider.invalid/authorize", lifetimeSeconds: 60 },
      });
      // The strategy has a connect flow: the destination waits for a person, and shows where to connect.
      assert.equal(dest.state, "needs_reconnect");
      assert.equal(dest["connectUrl"], `${t.url}/v1/destinations/${dest.id}/connect`);
      assert.equal(dest["redirectUrl"], `${t.url}/v1/oauth/callback`);

      const start = await browse(`${t.url}/v1/destinations/${dest.id}/connect`, admin);
      assert.equal(start.status, 302, start.text);
      assert.ok(start.location!.startsWith("https://provider.invalid/authorize?"), start.location!);
      assert.equal(calls.begin >= 1, true);

      // A ticket that does not match what `begin` kept server-side is refused by the strategy.
      const forged = new URL(providerApproves(start.location!));
      forged.searchParams.set("ticket", "ticket-forged");
      const refused = await browse(forged.href);
      assert.equal(refused.status, 502, refused.text);
      assert.match(refused.text, /oauth_exchange_failed/);

      const again = await browse(`${t.url}/v1/destinations/${dest.id}/connect`, admin);
      const callback = await browse(providerApproves(again.location!));
      assert.equal(callback.status, 200, callback.text);
      assert.match(callback.text, /id="connected"/);
      const shown = await t.api("GET", `/v1/destinations/${dest.id}`);
      assert.equal(shown.body.state, "active");
      const ticket = `ticket-${new URL(again.location!).searchParams.get("challenge")}`;

      // The first push carries the connected token: no handshake.
      const obtainsBefore = calls.obtain;
      const first = await postLead(t, uniqueLead());
      await delivered(t, first);
      const push1 = received.filter((r) => r.path === "/push").at(-1)!;
      assert.equal(push1.authorization, `Ticket connected-${ticket}`);
      assert.equal(push1.body["via"], "test_echo");
      assert.equal(calls.obtain, obtainsBefore);
      assert.ok(calls.lifetime >= 1, "the runtime asked the strategy how long the token lives");

      // Past the strategy's lifetime the runtime refreshes through the strategy's `obtain`.
      skewMs += 61_000;
      const second = await postLead(t, uniqueLead());
      await delivered(t, second);
      const push2 = received.filter((r) => r.path === "/push").at(-1)!;
      assert.equal(push2.authorization, `Ticket refreshed-${ticket}`);
      assert.equal(calls.obtain, obtainsBefore + 1);
    });

    test("the connector's admin route: admin scope, validated input, its own destinations only", async () => {
      const name = `echo-route-${backend}`;
      const dest = await createDestination(t, { name, connector: "test_echo", url: `${receiverUrl}/route` });
      const path = `/v1/destinations/${dest.id}/test-echo/ping`;
      assert.equal((await t.api("POST", path, { note: "x" }, { key: null })).status, 401);
      const bad = await t.api("POST", path, { note: 5 });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.body.error.code, "invalid_request");
      const ok = await t.api("POST", path, { note: "hello" });
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(ok.body, { destination: name, status: 200 });
      assert.deepEqual(received.at(-1)!.body, { ping: "hello" });

      const other = await createDestination(t, {
        name: `http-${backend}`,
        connector: "http",
        url: receiverUrl,
      });
      const wrong = await t.api("POST", `/v1/destinations/${other.id}/test-echo/ping`, { note: "x" });
      assert.equal(wrong.status, 400, wrong.text);
      assert.equal(wrong.body.error.code, "wrong_connector");
    });

    test("the connector's CLI command is dispatched by `leadpush <name>` and listed in the help", async () => {
      const name = `echo-cli-${backend}`;
      await createDestination(t, { name, connector: "test_echo", url: `${receiverUrl}/cli` });
      const code = await main([
        "test-echo",
        "ping",
        "--destination",
        name,
        "--url",
        t.url,
        "--key",
        ADMIN_TOKEN,
      ]);
      assert.equal(code, 0);
      assert.deepEqual(JSON.parse(printed.at(-1)!), { destination: name, status: 200 });
      assert.deepEqual(received.at(-1), {
        path: "/cli",
        authorization: undefined,
        body: { ping: "from the cli" },
      });

      const out: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string) => out.push(chunk) > 0) as typeof process.stdout.write;
      try {
        assert.equal(await main(["--help"]), 0);
      } finally {
        process.stdout.write = write;
      }
      assert.match(out.join(""), /\n {2}test-echo ping --destination NAME\n/);
      assert.match(out.join(""), /\n {2}ejento register\|users\|update-user/);
    });
  });
}

test("a taken type or name is refused: a registration never replaces a plug-in", () => {
  assert.throws(() => registerAuthStrategy(ticketAuth), /already registered/);
  assert.throws(() => registerConnector({ ...echoConnector }), /already registered/);
});

test("bin/leadpush.js (the installed command) runs the CLI, connector commands included", async () => {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ["bin/leadpush.js", "--help"], { timeout: 30_000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    ),
  );
  assert.match(out, /^leadpush — a self-hosted lead push gateway/);
  assert.match(out, /\n {2}ejento register\|users\|update-user --destination NAME\n/);
});
