// The benchmark's receiving client: a bearer-protected lead endpoint and an OAuth-style token
// endpoint, on node:http so the sink costs as little as possible. Run as its own process.
import { createServer } from "node:http";

const TOKEN = "bench-token-" + Math.random().toString(36).slice(2);
let tokenRequests = 0;
let received = 0;
let unauthorized = 0;
const latencies: number[] = [];
const seen = new Set<string>();
/** Per lead (its email): how often it arrived and with which Idempotency-Keys (the crash run's check). */
const byLead = new Map<string, { n: number; keys: Set<string> }>();
let lastAt = 0;
let throttledSecond = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    if (req.url === "/token") {
      tokenRequests++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ access_token: TOKEN, token_type: "Bearer", expires_in: 3600 }));
      return;
    }
    if (req.url === "/stats") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ tokenRequests, received, unauthorized, unique: seen.size, lastAt, latencies }),
      );
      return;
    }
    if (req.url === "/check") {
      // Which of these leads (by email) never arrived, arrived again with the same key, or with another.
      const { emails } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { emails: string[] };
      let missing = 0;
      let repeatedSameKey = 0;
      let repeatedNewKey = 0;
      for (const e of emails) {
        const got = byLead.get(e);
        if (!got) missing++;
        else if (got.keys.size > 1) repeatedNewKey++;
        else if (got.n > 1) repeatedSameKey++;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ missing, repeatedSameKey, repeatedNewKey }));
      return;
    }
    if (req.url === "/reset") {
      byLead.clear();
      received = 0;
      unauthorized = 0;
      latencies.length = 0;
      seen.clear();
      res.end("{}");
      return;
    }
    // The isolation phase's misbehaving vendors: one never answers, one takes 1 lead a second.
    if (req.url === "/hang") return;
    if (req.url === "/throttled") {
      const second = Math.floor(Date.now() / 1000);
      if (second === throttledSecond) {
        res.writeHead(429, { "retry-after": "1" }).end();
        return;
      }
      throttledSecond = second;
      res.writeHead(201, { "content-type": "application/json" }).end("{}");
      return;
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      unauthorized++;
      res.writeHead(401).end();
      return;
    }
    received++;
    const now = performance.timeOrigin + performance.now();
    lastAt = now;
    const key = req.headers["idempotency-key"];
    if (typeof key === "string") seen.add(key);
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        attributes?: { sentAt?: number };
        sentAt?: number;
        email?: string;
      };
      const sentAt = body.attributes?.sentAt ?? body.sentAt;
      if (typeof sentAt === "number") latencies.push(now - sentAt);
      if (typeof body.email === "string") {
        const got = byLead.get(body.email) ?? { n: 0, keys: new Set<string>() };
        got.n++;
        got.keys.add(typeof key === "string" ? key : "");
        byLead.set(body.email, got);
      }
    } catch {
      // not JSON: count only
    }
    res.writeHead(201, { "content-type": "application/json" });
    res.end(`{"id":"${received}"}`);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(JSON.stringify({ port: typeof addr === "object" && addr ? addr.port : 0 }) + "\n");
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
