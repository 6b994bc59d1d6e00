// The command line as a new user meets it: exit codes of help and usage errors, keys create/list/
// revoke against a real database, an old Node, the demo's port clash and its live terminal output.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ADMIN_TOKEN, eventually, freePort, freshDatabase, SECRET_KEY, startApp } from "./helpers/harness.ts";

const BIN = join(import.meta.dirname, "..", "bin", "leadpush.js");
const dir = mkdtempSync(join(tmpdir(), "leadpush-cli-"));
const env = { ...process.env, DATABASE_URL: `file:${join(dir, "cli.db")}`, LOG_LEVEL: "error" };

/** Runs the bin with this Node (24) and returns its exit status and output. */
function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...env, ...extraEnv }, encoding: "utf8", timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

after(() => rmSync(dir, { recursive: true, force: true }));

void describe("help and usage errors", { concurrency: 4 }, () => {
  for (const args of [
    ["keys", "--help"],
    ["destinations", "--help"],
    ["ejento", "--help"],
    ["keys", "-h"],
  ]) {
    void test(`leadpush ${args.join(" ")} prints the usage and exits 0`, async () => {
      const r = await cli(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`leadpush ${args[0]} `));
      assert.equal(r.stderr, "");
    });
  }

  const usageErrors: [string[], RegExp][] = [
    [["keys", "create", "--scope", "owner"], /unknown scope "owner"/],
    [["keys", "create", "--name", "x", "--scope", "owner"], /unknown scope "owner"/],
    [["keys", "create", "--scope", "admin"], /--name is required/],
    [["keys", "create", "--name"], /--name/],
    [["keys", "bogus"], /unknown keys command "bogus"/],
    [["keys"], /which keys command/],
    [["keys", "revoke"], /which key\?/],
    [["keys", "list", "--nope"], /Unknown option '--nope'/],
    [["destinations"], /which subcommand/],
    [["destinations", "bogus"], /unknown subcommand "bogus"/],
    [["ejento", "bogus"], /unknown subcommand "bogus"/],
    [["nothing-like-this"], /unknown command/],
  ];
  for (const [args, message] of usageErrors) {
    void test(`leadpush ${args.join(" ")} is a usage error: a message, a non-zero exit`, async () => {
      const r = await cli(args);
      assert.notEqual(r.status, 0, r.stdout);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    });
  }
});

void describe("keys create, list, revoke", () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  let keyEnv: Record<string, string> = {};
  before(async () => {
    // The server and the command line share one SQLite file, as `npm start` and `leadpush keys` do.
    app = await startApp();
    keyEnv = { DATABASE_URL: app.databaseUrl };
  });
  after(async () => app?.close());

  void test("a key revoked from the command line is refused at once by the running server", async () => {
    const created = await cli(["keys", "create", "--name", "website", "--scope", "ingest"], keyEnv);
    assert.equal(created.status, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^lp_/);
    const call = () =>
      fetch(`${app.url}/v1/leads`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Cli", email: `cli-${Date.now()}@example.com` }),
      });
    assert.equal((await call()).status, 201);

    const list = await cli(["keys", "list"], keyEnv);
    assert.equal(list.status, 0, list.stderr);
    const line = list.stdout.split("\n").find((l) => l.endsWith(" website"));
    assert.ok(line, list.stdout);
    const prefix = key.slice(0, 7);
    assert.ok(line.includes(`${prefix}…`), line);
    assert.ok(!list.stdout.includes(key), "list never shows a key");

    const revoked = await cli(["keys", "revoke", prefix], keyEnv);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(revoked.stderr, /revoked key "website"/);
    // No waiting for a cache: the very next request is refused.
    const res = await call();
    assert.equal(res.status, 401);
    assert.match((await cli(["keys", "list"], keyEnv)).stdout, /website {2}\(revoked\)/);

    const again = await cli(["keys", "revoke", prefix], keyEnv);
    assert.equal(again.status, 0);
    assert.match(again.stderr, /already revoked/);
    const unknown = await cli(["keys", "revoke", "lp_zzzzzzz"], keyEnv);
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /no API key has the id or prefix/);
  });
});

void test("an old Node gets 'leadpush needs Node 24', not a stack trace", (t) => {
  const old = "/usr/bin/node";
  if (!existsSync(old)) return t.diagnostic("no /usr/bin/node on this machine");
  const version = spawnSync(old, ["--version"], { encoding: "utf8" }).stdout.trim();
  if (Number(version.replace(/^v/, "").split(".")[0]) >= 24) return t.diagnostic(`${old} is ${version}`);
  const r = spawnSync(old, [BIN, "--help"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /leadpush needs Node 24/);
  assert.doesNotMatch(r.stderr, /ERR_UNKNOWN_FILE_EXTENSION|\n\s+at /);
});

void describe("demo", () => {
  let blocker: Server;
  let takenPort = 0;
  before(async () => {
    takenPort = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(takenPort, "127.0.0.1", resolve));
  });
  after(() => blocker.close());

  for (const option of ["--port", "--sandbox-port"]) {
    void test(`a taken ${option} is named in the hint, and the demo exits non-zero`, async () => {
      const other = option === "--port" ? "--sandbox-port" : "--port";
      const r = await cli([
        "demo",
        "--once",
        option,
        String(takenPort),
        other,
        String(await freePort()),
        "--data-dir",
        join(dir, "demo-port"),
      ]);
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        new RegExp(`port ${takenPort} is already in use; pick a free one with ${option} `),
      );
      assert.doesNotMatch(r.stderr, /set PORT/);
    });
  }

  void test(
    "the live demo in a terminal also prints the dashboard, the admin key and the highlights",
    { timeout: 150_000 },
    async (t) => {
      if (!existsSync("/usr/bin/script")) return t.diagnostic("no script(1) to give the demo a terminal");
      const command = [
        process.execPath,
        BIN,
        "demo",
        "--port",
        String(await freePort()),
        "--sandbox-port",
        String(await freePort()),
        "--data-dir",
        join(dir, "demo-live"),
      ].join(" ");
      // script(1) runs the demo on a pseudo-terminal: stdout.isTTY is true, as in a person's shell.
      const child = spawn("/usr/bin/script", ["-qefc", command, "/dev/null"], {
        env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (b: Buffer) => (out += b.toString()));
      try {
        const deadline = Date.now() + 140_000;
        while (!/Ctrl-C to stop/.test(out) && Date.now() < deadline && child.exitCode === null)
          await new Promise((r) => setTimeout(r, 200));
        assert.match(out, /\x1b\[\d+A/, "the table was redrawn in place (a terminal)");
        assert.match(out, /Dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard/);
        assert.match(out, /admin key: demo-admin-token-0123456789/);
        assert.match(out, /Ejento's agent on Asha/);
        assert.match(out, /CRM after Reworked received/);
      } finally {
        child.kill("SIGTERM");
        await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
      }
    },
  );
});

void describe("serve --no-worker: an API node, with workers elsewhere", () => {
  void test("on SQLite it is refused (nothing would push), with what to do instead", async () => {
    const r = await cli(["serve", "--no-worker"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--no-worker needs Postgres[\s\S]*leadpush worker/);
  });

  void test("on Postgres it accepts leads and pushes none; a worker process pushes them", async () => {
    const db = await freshDatabase("postgres");
    const received: string[] = [];
    const sink = createHttpServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => {
        received.push(body);
        res.writeHead(201, { "content-type": "application/json" }).end('{"id":"s-1"}');
      });
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const procEnv = {
      ...env,
      DATABASE_URL: db.url,
      LEADPUSH_DATA_DIR: db.dir,
      LEADPUSH_SECRET_KEY: SECRET_KEY,
      LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
    };
    const children: ChildProcess[] = [];
    try {
      const api = spawn(process.execPath, [BIN, "serve", "--no-worker"], { env: procEnv, stdio: "pipe" });
      children.push(api);
      let banner = "";
      api.stdout!.on("data", (c: Buffer) => (banner += c.toString("utf8")));
      await eventually(async () => (await fetch(`${base}/readyz`)).ok, 30_000, "serve --no-worker");
      assert.match(banner, /no worker: `leadpush worker` processes push/);
      const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
      const dest = await fetch(`${base}/v1/destinations`, {
        method: "POST",
        headers,
        body: JSON.stringify({ name: "sink", connector: "http", url: `${sinkUrl}/leads` }),
      });
      assert.equal(dest.status, 201, await dest.text());
      const lead = await fetch(`${base}/v1/leads`, {
        method: "POST",
        headers,
        body: JSON.stringify({ name: "Nowork", email: "nowork@example.com" }),
      });
      assert.equal(lead.status, 201);
      const { id } = (await lead.json()) as { id: string };
      const status = async () =>
        (
          (await (await fetch(`${base}/v1/leads/${id}`, { headers })).json()) as {
            deliveries: { status: string }[];
          }
        ).deliveries[0]!.status;
      // Nothing in this process pushes it (a worker would have within milliseconds).
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await status(), "pending");
      assert.deepEqual(received, []);
      const worker = spawn(process.execPath, [BIN, "worker"], { env: procEnv, stdio: "ignore" });
      children.push(worker);
      await eventually(async () => (await status()) === "delivered", 30_000, "the worker to push it");
      assert.equal(received.length, 1);
      assert.match(received[0]!, /nowork@example\.com/);
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
      await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : once(c, "exit"))));
      sink.close();
      await db.drop();
    }
  });
});
