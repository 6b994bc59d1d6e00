import { randomUUID } from "node:crypto";
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ENRICHMENT_COLUMNS, lc, reworkedEnrichment } from "./reworked-enrichment.ts";
import type {
  ReworkedAccount,
  ReworkedControl,
  ReworkedJob,
  ReworkedSettings,
  ReworkedSimulator,
  ReworkedSimulatorOptions,
  ReworkedState,
  ReworkedStatus,
} from "./reworked-state.ts";
import {
  PendingWork,
  TokenStore,
  bearerToken,
  ctl,
  hash32,
  installRawBodyParser,
  isoNow,
  mountStateAndControl,
  publicBaseUrl,
  readJsonObject,
} from "./vendor-async-common.ts";

/**
 * Reworked.ai (the Reworked API document), base URL https://app.reworked.ai/bnd/api: user-authenticate →
 * api_secret_key, generate-token → bearer token (24 h), process-leads (downloads `file_url` for
 * real, parses the CSV, processes it asynchronously, then POSTs `callback_url`), file-status.
 * The processed file is served at `GET <prefix>/files/<file_upload_identifier>.csv`.
 */

const STATUS_MSG: Record<ReworkedStatus, string> = {
  STARTED: "File processing started",
  PROCESSING: "File is being processed",
  PROCESSED: "File Processed Successfully",
  FAILED: "File processing failed",
};
const derivedKey = (email: string): string =>
  `rwk_${hash32(`k1:${email}`).toString(16)}${hash32(`k2:${email}`).toString(16)}`;
const DEFAULTS: ReworkedSettings = {
  tokenLifetimeSeconds: 86400,
  processingDelayMs: 300,
  callbackMode: "once",
  failJobs: false,
  failNextJob: false,
  outageStatus: 0,
  dropFraction: 0,
  dropEmails: [],
  publicBaseUrl: null,
  downloadTimeoutMs: 10000,
  callbackTimeoutMs: 10000,
};

export function createReworkedSimulator(opts: ReworkedSimulatorOptions = {}): ReworkedSimulator {
  const now = opts.now ?? Date.now;
  const prefix = opts.prefix ?? "/reworked";
  const tokens = new TokenStore<"token" | "status">(now);
  const pending = new PendingWork();
  const state = {} as ReworkedState;
  const at = (): string => isoNow(now);
  let generation = 0;

  function reset(): void {
    generation++;
    pending.clear();
    tokens.clear();
    const accounts = opts.accounts ?? [{ email: "demo@reworked.test", password: "reworked-demo" }];
    const given = Object.entries(opts).filter(([k, v]) => k in DEFAULTS && v !== undefined);
    Object.assign(state, {
      accounts: accounts.map((a) => ({ ...a, apiKey: a.apiKey ?? derivedKey(a.email) })),
      ...{ authRequests: [], tokenRequests: [], jobs: [], downloads: [], callbacks: [] },
      ...{ statusRequests: [], fileRequests: [], rejected: [] },
      settings: { ...DEFAULTS, dropEmails: [], ...Object.fromEntries(given) },
    } satisfies ReworkedState);
  }
  reset();

  function control(c: ReworkedControl): Record<string, unknown> {
    const b = c as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    if (ctl(b, "reset", "boolean")) reset();
    const s = state.settings as unknown as Record<string, unknown>;
    for (const [k, d] of Object.entries(DEFAULTS)) {
      const v = b[k];
      if (v === undefined) continue;
      const ok =
        k === "dropEmails"
          ? Array.isArray(v) && v.every((e) => typeof e === "string")
          : k === "callbackMode"
            ? v === "none" || v === "once" || v === "twice"
            : typeof v === typeof d || (k === "publicBaseUrl" && (v === null || typeof v === "string"));
      if (!ok) throw new Error(`control field ${k} has a wrong type or value`);
      s[k] = v;
    }
    if (ctl(b, "expireTokens", "boolean")) out.expiredTokens = tokens.expireAll();
    if (ctl(b, "revokeTokens", "boolean")) out.revokedTokens = tokens.revoke(() => true);
    return { ...out, settings: { ...s } };
  }

  function reject(reply: FastifyReply, req: FastifyRequest, status: number, msg: string, reason = msg) {
    state.rejected.push({ at: at(), path: req.url, status, reason });
    return reply.code(status).send({ msg });
  }
  const setStatus = (job: ReworkedJob, status: ReworkedStatus): void => {
    job.status = status;
    job.history.push({ status, at: at() });
  };

  async function sendCallbacks(job: ReworkedJob, gen: number): Promise<void> {
    const times = { none: 0, once: 1, twice: 2 }[state.settings.callbackMode];
    const { file_upload_identifier, status, processed_file_url } = job;
    const body = { file_upload_identifier, status, processed_file_url };
    for (let i = 0; i < times && gen === generation; i++) {
      const { signal, done } = pending.signal(state.settings.callbackTimeoutMs);
      const entry: ReworkedState["callbacks"][number] = {
        at: at(),
        url: job.callback_url,
        body,
        status: null,
      };
      try {
        const res = await fetch(job.callback_url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal,
        });
        await res.arrayBuffer();
        entry.status = res.status;
      } catch (err) {
        entry.error = err instanceof Error ? err.message : String(err);
      } finally {
        done();
      }
      if (gen === generation) state.callbacks.push(entry);
    }
  }

  function finish(job: ReworkedJob, gen: number): Promise<void> {
    if (job.willFail) {
      setStatus(job, "FAILED");
      job.processed_file_url = null;
    } else {
      const s = state.settings;
      const drop = new Set(s.dropEmails.map(lc));
      const emailCol = job.columns.find((c) => lc(c) === "email") ?? "email";
      const extra = ENRICHMENT_COLUMNS.filter((c) => !job.columns.includes(c));
      job.output = [];
      for (const row of job.rows) {
        const email = lc(row[emailCol] ?? "");
        if (email && (drop.has(email) || hash32(`drop:${email}`) % 10000 < s.dropFraction * 10000)) {
          job.dropped.push(email);
          continue;
        }
        const e = reworkedEnrichment(row);
        const out: Record<string, string> = { ...row };
        for (const c of ENRICHMENT_COLUMNS) if (extra.includes(c) || !out[c]) out[c] = e[c];
        job.output.push(out);
      }
      setStatus(job, "PROCESSED");
    }
    return sendCallbacks(job, gen);
  }

  /** The account behind the bearer token, or undefined after answering 401. */
  function bearerAccount(req: FastifyRequest, reply: FastifyReply): Required<ReworkedAccount> | undefined {
    const c = tokens.check(bearerToken(req), ["token", "status"]);
    if (!c.ok) return void reject(reply, req, 401, "Unauthorized", `token ${c.reason}`);
    const acc = state.accounts.find((a) => a.email === c.token.subject);
    if (!acc) return void reject(reply, req, 401, "Unauthorized", "account gone");
    return acc;
  }
  /** A JSON body with these string fields, or undefined after answering `status`. */
  function fields<K extends string>(
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    keys: K[],
    opt: string[] = [],
  ) {
    const body = readJsonObject(req);
    const ct =
      body.ok || body.reason !== "content-type"
        ? "Invalid JSON body"
        : "Content-Type must be application/json";
    if (!body.ok) return void reject(reply, req, status, ct, body.reason);
    const v = body.value;
    const bad = keys.find((k) => typeof v[k] !== "string" || (v[k] as string).trim() === "");
    const badOpt = opt.find((k) => v[k] !== undefined && typeof v[k] !== "string");
    if (bad ?? badOpt) return void reject(reply, req, status, `${bad ?? badOpt} is required`);
    return v as Record<K, string> & Record<string, string | undefined>;
  }
  const isHttpUrl = (u: string): boolean => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol);

  function register(app: FastifyInstance): void {
    installRawBodyParser(app);
    app.addHook("onClose", async () => pending.clear());
    mountStateAndControl(app, () => ({ ...state, tokens: tokens.list() }), control);

    app.post("/user-authenticate", async (req, reply) => {
      const b = fields(req, reply, 403, ["email", "password"]);
      const acc = b && state.accounts.find((a) => lc(a.email) === lc(b.email) && a.password === b.password);
      state.authRequests.push({ at: at(), email: b?.email ?? null, status: acc ? 200 : 403 });
      if (!b) return reply;
      if (!acc) return reject(reply, req, 403, "Invalid email or password");
      return {
        msg: "User Authenticated Successfully",
        data: { api_secret_key: acc.apiKey, email: acc.email },
      };
    });

    app.post("/generate-token", async (req, reply) => {
      const b = fields(req, reply, 403, ["api_key", "email"]);
      const acc = b && state.accounts.find((a) => lc(a.email) === lc(b.email) && a.apiKey === b.api_key);
      state.tokenRequests.push({ at: at(), email: b?.email ?? null, status: acc ? 200 : 403 });
      if (!b) return reply;
      if (!acc) return reject(reply, req, 403, "Invalid api key or email");
      const lifetime = state.settings.tokenLifetimeSeconds;
      return {
        msg: "Token generated successfully",
        data: { token: tokens.issue("token", acc.email, lifetime).token, expires_in: lifetime },
      };
    });

    const outage = (req: FastifyRequest, reply: FastifyReply): boolean => {
      const status = state.settings.outageStatus;
      if (status > 0) void reject(reply, req, status, "Service unavailable", "outage");
      return status > 0;
    };

    app.post("/process-leads", async (req, reply) => {
      if (outage(req, reply)) return reply;
      const acc = bearerAccount(req, reply);
      if (!acc) return reply;
      const b = fields(req, reply, 400, ["file_url", "email", "callback_url"]);
      if (!b) return reply;
      if (!isHttpUrl(b.file_url) || !isHttpUrl(b.callback_url))
        return reject(reply, req, 400, "file_url and callback_url must be http(s) URLs");
      if (lc(b.email) !== lc(acc.email)) return reject(reply, req, 403, "Email does not match the token");
      const s = state.settings;
      const dl: ReworkedState["downloads"][number] = { at: at(), url: b.file_url, status: null, bytes: 0 };
      state.downloads.push(dl);
      const { signal, done } = pending.signal(s.downloadTimeoutMs);
      let text: string;
      try {
        const res = await fetch(b.file_url, { signal });
        text = await res.text();
        dl.status = res.status;
        dl.bytes = Buffer.byteLength(text);
        if (!res.ok) return reject(reply, req, 400, `Unable to download file (HTTP ${res.status})`);
      } catch (err) {
        dl.error = err instanceof Error ? err.message : String(err);
        return reject(reply, req, 400, "Unable to download file", dl.error);
      } finally {
        done();
      }
      let records: string[][];
      try {
        records = parse(text, { bom: true, skip_empty_lines: true }) as string[][];
      } catch (err) {
        return reject(reply, req, 400, "Invalid CSV file", err instanceof Error ? err.message : String(err));
      }
      const columns = (records[0] ?? []).map((c) => c.trim());
      if (!columns.some((c) => lc(c) === "email"))
        return reject(reply, req, 400, "CSV file must have an email column");
      if (records.length < 2) return reject(reply, req, 400, "CSV file has no leads");
      const id = randomUUID();
      const willFail = s.failJobs || s.failNextJob;
      s.failNextJob = false;
      const job: ReworkedJob = {
        file_upload_identifier: id,
        email: acc.email,
        file_url: b.file_url,
        callback_url: b.callback_url,
        status: "STARTED",
        history: [{ status: "STARTED", at: at() }],
        columns,
        rows: records.slice(1).map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? ""]))),
        willFail,
        processed_file_url: willFail
          ? null
          : `${publicBaseUrl(req, prefix, s.publicBaseUrl ?? undefined)}/files/${id}.csv`,
        output: null,
        dropped: [],
      };
      state.jobs.push(job);
      const gen = generation;
      pending.after(s.processingDelayMs / 2, () => {
        if (job.status === "STARTED") setStatus(job, "PROCESSING");
      });
      pending.after(s.processingDelayMs, () => finish(job, gen));
      const statusToken = tokens.issue("status", acc.email, s.tokenLifetimeSeconds, {
        file_upload_identifier: id,
      }).token;
      return { msg: "File processing started", data: { token: statusToken, file_upload_identifier: id } };
    });

    app.post("/file-status", async (req, reply) => {
      if (outage(req, reply)) return reply;
      const acc = bearerAccount(req, reply);
      if (!acc) return reply;
      const b = fields(req, reply, 400, ["email"], ["file_upload_identifier", "file_url"]);
      if (!b) return reply;
      const { file_upload_identifier: id, file_url: url } = b;
      const record = (status: number, job?: ReworkedJob): void =>
        void state.statusRequests.push({
          at: at(),
          file_upload_identifier: id ?? job?.file_upload_identifier ?? null,
          status,
          ...(job ? { jobStatus: job.status } : {}),
        });
      if (!id && !url)
        return (record(400), reject(reply, req, 400, "file_upload_identifier or file_url is required"));
      if (lc(b.email) !== lc(acc.email))
        return (record(403), reject(reply, req, 403, "Email does not match the token"));
      const job = id
        ? state.jobs.find((j) => j.file_upload_identifier === id)
        : state.jobs.findLast((j) => j.file_url === url && lc(j.email) === lc(b.email));
      if (!job || lc(job.email) !== lc(b.email))
        return (record(404), reject(reply, req, 404, "File not found"));
      record(200, job);
      const processed = job.status === "PROCESSED" ? job.processed_file_url : null;
      return {
        msg: STATUS_MSG[job.status],
        data: {
          status: job.status,
          processed_file_url: processed,
          file_upload_identifier: job.file_upload_identifier,
        },
      };
    });

    app.get("/files/:file", async (req, reply) => {
      const file = (req.params as { file: string }).file;
      const job = state.jobs.find((j) => `${j.file_upload_identifier}.csv` === file);
      const ok = job?.status === "PROCESSED" && job.output !== null;
      state.fileRequests.push({ at: at(), file, status: ok ? 200 : 404 });
      if (!job || !ok || !job.output) return reply.code(404).send({ msg: "File not found" });
      const columns = [...job.columns, ...ENRICHMENT_COLUMNS.filter((c) => !job.columns.includes(c))];
      return reply.type("text/csv; charset=utf-8").send(stringify(job.output, { header: true, columns }));
    });
  }

  return {
    name: "reworked",
    prefix,
    register,
    reset,
    control,
    close: () => pending.clear(),
    get state() {
      return state;
    },
  };
}
