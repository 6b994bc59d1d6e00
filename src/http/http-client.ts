import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { Readable } from "node:stream";
import { Agent, type Dispatcher, request } from "undici";
import { blockedHost, isPrivateAddress } from "./private-address.ts";
import { DestinationPools, type PoolKey } from "./pools.ts";
import type { TransportCode } from "../domain/codes.ts";

/** A request being built by a connector; auth strategies add to it before it is sent. */
export interface OutboundRequest {
  method: string;
  url: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  /** `json`: JSON.stringify; `form`: x-www-form-urlencoded; `raw`: body is a string sent as is; `none`: no body. */
  contentType: "json" | "form" | "raw" | "none";
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Every Set-Cookie value (joined headers lose them). */
  setCookies: string[];
  text: string;
  json(): unknown;
}

export interface HttpFailure {
  code: TransportCode;
  message: string;
}

export type HttpResult = { ok: true; response: HttpResponse } | { ok: false; error: HttpFailure };

/** A response whose body is read as a stream (large files); the timeout covers the whole body. */
export type StreamResult =
  | { ok: true; status: number; headers: Record<string, string>; body: Readable }
  | { ok: false; error: HttpFailure };

/** One request/response as kept in the attempt log: redacted, bodies cut to 4 KB. */
export interface Exchange {
  step: string;
  method: string;
  url: string;
  requestHeaders: Record<string, string>;
  requestBody?: string;
  status?: number;
  responseHeaders?: Record<string, string>;
  responseBody?: string;
  /** When the exchange began, ms after its attempt (or batch step) did: steps on one time line. */
  startMs?: number;
  durationMs: number;
  error?: HttpFailure;
}

export interface HttpClient {
  send(req: OutboundRequest, opts: { timeoutMs: number; step?: string }): Promise<HttpResult>;
}

export const EXCERPT_BYTES = 4096;

export function newRequest(method: string, url: string): OutboundRequest {
  return { method, url, headers: {}, query: {}, body: undefined, contentType: "none" };
}

export function encodeForm(body: unknown): string {
  const params = new URLSearchParams();
  if (body && typeof body === "object" && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body)) {
      if (v === undefined || v === null) continue;
      params.append(k, typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v));
    }
  }
  return params.toString();
}

export function encodeBody(req: OutboundRequest): {
  body: string | undefined;
  contentType: string | undefined;
} {
  switch (req.contentType) {
    case "json":
      return { body: JSON.stringify(req.body ?? null), contentType: "application/json" };
    case "form":
      return { body: encodeForm(req.body), contentType: "application/x-www-form-urlencoded" };
    case "raw":
      return {
        body: typeof req.body === "string" ? req.body : String(req.body ?? ""),
        contentType: undefined,
      };
    case "none":
      return { body: undefined, contentType: undefined };
    default: {
      const never: never = req.contentType;
      throw new Error(`unknown content type ${String(never)}`);
    }
  }
}

export function fullUrl(req: OutboundRequest): string {
  const keys = Object.keys(req.query);
  if (keys.length === 0) return req.url;
  const u = new URL(req.url);
  for (const k of keys) u.searchParams.set(k, req.query[k] ?? "");
  return u.toString();
}

export { isPrivateAddress } from "./private-address.ts";

/**
 * The outbound transport: a shared undici Agent (a keep-alive pool per origin), and one per
 * destination for requests sent with a `PoolKey` (pushes and their handshakes), at most as wide as
 * the destination's concurrency. With `allowPrivateNetworks: false`, names resolving to
 * loopback/private addresses are refused.
 */
export function createTransport(opts: { allowPrivateNetworks: boolean; connectionsPerOrigin?: number }) {
  const lookup: typeof dnsLookup = ((hostname: string, options: object, cb: (...a: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return cb(err);
      const bad = addresses.find((a) => isPrivateAddress(a.address));
      if (bad)
        return cb(
          Object.assign(new Error(`${hostname} resolves to a private address`), { code: "EPRIVATE" }),
        );
      const all = (options as { all?: boolean }).all;
      const first = addresses[0];
      if (all) return cb(null, addresses);
      return cb(null, first?.address, first?.family);
    });
  }) as never;
  const perOrigin = opts.connectionsPerOrigin ?? 64;
  const newAgent = (connections: number) =>
    new Agent({
      keepAliveTimeout: 30_000,
      connections,
      ...(opts.allowPrivateNetworks ? {} : { connect: { lookup } }),
    });
  const agent = newAgent(perOrigin);
  const pools = new DestinationPools((connections) => newAgent(Math.min(connections, perOrigin)));

  function blocked(url: string | URL): HttpFailure | undefined {
    if (opts.allowPrivateNetworks) return undefined;
    // An unparsable URL is not refused here: the request fails with its own error.
    const host = typeof url === "string" ? URL.parse(url)?.hostname : url.hostname;
    const reason = host === undefined ? undefined : blockedHost(host);
    return reason === undefined ? undefined : { code: "blocked_address", message: reason };
  }

  function failure(err: unknown, timeoutMs: number): HttpFailure {
    const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
    if (e.name === "TimeoutError" || e.name === "AbortError") {
      return { code: "timeout", message: `no complete answer within ${timeoutMs} ms` };
    }
    const code = e.code ?? e.cause?.code;
    if (code === "EPRIVATE") return { code: "blocked_address", message: String(e.message) };
    return { code: "network_error", message: `${code ?? e.name ?? "error"}: ${e.message ?? ""}`.trim() };
  }

  function flatHeaders(raw: Record<string, string | string[] | undefined>) {
    const flat: Record<string, string> = {};
    let setCookies: string[] = [];
    for (const k in raw) {
      const v = raw[k];
      if (v === undefined) continue;
      if (k === "set-cookie") setCookies = Array.isArray(v) ? v : [v];
      flat[k] = Array.isArray(v) ? v.join(", ") : v;
    }
    return { flat, setCookies };
  }

  /** A GET whose body is handed over as a stream; `timeoutMs` also bounds reading the body. */
  async function stream(
    url: string,
    timeoutMs: number,
    headers: Record<string, string> = {},
  ): Promise<StreamResult> {
    const refused = blocked(url);
    if (refused) return { ok: false, error: refused };
    try {
      const res = await request(url, {
        method: "GET",
        headers,
        dispatcher: agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { ok: true, status: res.statusCode, headers: flatHeaders(res.headers).flat, body: res.body };
    } catch (err) {
      return { ok: false, error: failure(err, timeoutMs) };
    }
  }

  /**
   * `encoded`: the request's body as `encodeBody` makes it, when the caller already has it.
   * Sent with undici's `dispatch` and a handler that collects the body: the same transport as
   * `request()` without its stream, abort-signal and callback layers (~20 µs less per push, see
   * DEVELOPERS.md). `timeoutMs` bounds the whole exchange, waiting for a connection included.
   * `pool`: the destination whose own connections to use (the shared ones without it).
   */
  async function send(
    req: OutboundRequest,
    timeoutMs: number,
    encoded: ReturnType<typeof encodeBody> = encodeBody(req),
    signal?: AbortSignal,
    pool?: PoolKey,
  ): Promise<HttpResult> {
    if (signal?.aborted) return { ok: false, error: abortedFailure(signal) };
    let target: URL;
    try {
      target = new URL(fullUrl(req));
    } catch (err) {
      return { ok: false, error: failure(err, timeoutMs) };
    }
    const refused = blocked(target);
    if (refused) return { ok: false, error: refused };
    const { body, contentType } = encoded;
    const headers: Record<string, string> = { ...req.headers };
    if (contentType && !headers["content-type"]) headers["content-type"] = contentType;
    const lease = pool ? pools.acquire(pool) : undefined;
    const dispatcher = lease?.agent ?? agent;
    return new Promise((resolve) => {
      let controller: Dispatcher.DispatchController | undefined;
      let settled = false;
      let status = 0;
      let responseHeaders: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      const settle = (result: HttpResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        offAbort?.();
        lease?.done();
        resolve(result);
      };
      // `signal` (a shutting-down worker's) ends the exchange at once, like the timer below.
      const offAbort =
        signal &&
        onAbort(signal, () => {
          settle({ ok: false, error: abortedFailure(signal) });
          controller?.abort(new Error("aborted"));
        });
      const timer = setTimeout(() => {
        const err = new Error(`no complete answer within ${timeoutMs} ms`);
        err.name = "TimeoutError";
        // Not started yet (waiting for a connection): aborted as soon as undici starts it.
        controller?.abort(err);
        settle({ ok: false, error: failure(err, timeoutMs) });
      }, timeoutMs);
      dispatcher.dispatch(
        {
          origin: target.origin,
          path: target.pathname + target.search,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body: body ?? null,
        },
        {
          onRequestStart(c) {
            controller = c;
            if (settled) c.abort(new Error("timed out before it started"));
          },
          onResponseStart(_c, statusCode, h) {
            // 1xx (e.g. 100 Continue) precede the real answer.
            if (statusCode < 200) return;
            status = statusCode;
            responseHeaders = h;
          },
          onResponseData(_c, chunk) {
            chunks.push(chunk);
          },
          onResponseEnd() {
            const text = utf8(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
            const { flat, setCookies } = flatHeaders(responseHeaders);
            settle({ ok: true, response: httpResponse(status, flat, setCookies, text) });
          },
          onResponseError(_c, err) {
            settle({ ok: false, error: failure(err, timeoutMs) });
          },
        },
      );
    });
  }

  return {
    send,
    stream,
    /** Destination pools open now (bounded: idle ones are closed). */
    pools: () => pools.size,
    close: () => Promise.all([agent.close(), pools.close()]).then(() => undefined),
    destroy: () => Promise.all([agent.destroy(), pools.destroy()]).then(() => undefined),
  };
}

function abortedFailure(signal: AbortSignal): HttpFailure {
  const reason = signal.reason as { message?: string } | undefined;
  return { code: "aborted", message: `aborted: ${reason?.message ?? "the request was cut off"}` };
}

// One listener per signal, not per request: one worker's signal covers all of its pushes.
const aborters = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` when `signal` aborts; returns the function that forgets it. */
function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = aborters.get(signal);
  if (set === undefined) {
    const fns = (set = new Set());
    aborters.set(signal, fns);
    signal.addEventListener("abort", () => [...fns].forEach((f) => f()), { once: true });
  }
  set.add(fn);
  return () => set.delete(fn);
}

export type Transport = ReturnType<typeof createTransport>;

/** A body as text: UTF-8, without a leading byte-order mark (as undici's `body.text()` does). */
function utf8(buf: Buffer): string {
  const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
  return buf.toString("utf8", bom ? 3 : 0);
}

/** A response as connectors see it (`json()` is undefined for a body that is not JSON). */
export function httpResponse(
  status: number,
  headers: Record<string, string>,
  setCookies: string[],
  text: string,
): HttpResponse {
  return {
    status,
    headers,
    setCookies,
    text,
    json: () => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return undefined;
      }
    },
  };
}
