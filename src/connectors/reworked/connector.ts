import { z } from "zod";
import { type ReworkedAuthConfig, reworkedUrl } from "../../auth/reworked.ts";
import { newRequest, type HttpResponse, type OutboundRequest } from "../../http/http-client.ts";
import type { BatchContext, BatchPolicy, BatchStep, Batching } from "../batching.ts";
import type { Connector } from "../connector.ts";
import { sendWithAuth, transportFailure } from "../push.ts";
import { readResult, renderFile, renderRows } from "./csv.ts";

export const REWORKED_BASE_URL = "https://app.reworked.ai/bnd/api";

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const optionsSchema = z
  .object({
    /** A batch is closed at this many leads… */
    batchSize: int(1, 10_000).default(100),
    /** …or when its oldest lead has waited this long, whichever comes first. */
    batchWindowMs: int(0, 86_400_000).default(60_000),
    /** First file-status poll after process-leads; then twice as long each time, up to the max. */
    pollIntervalMs: int(50, 3_600_000).default(30_000),
    pollMaxIntervalMs: int(50, 86_400_000).default(600_000),
    /** A batch not PROCESSED this long after it was closed fails; its leads get a new file later. */
    deadlineMs: int(1000, 7 * 86_400_000).default(86_400_000),
    /** Timeout of the processed-file download. */
    downloadTimeoutMs: int(1000, 600_000).default(60_000),
    /** Where the token goes (the document does not say): `Authorization: Bearer <token>`. */
    headerName: z.string().min(1).default("authorization"),
    headerPrefix: z.string().default("Bearer "),
  })
  .strict();

const schema = z
  .object({
    baseUrl: z.url({ protocol: /^https?$/ }).default(REWORKED_BASE_URL),
    /** The Reworked account's email (sent with process-leads and file-status). */
    email: z.string().trim().min(3).max(255),
    /** Password for user-authenticate, or the `apiKey` Reworked provides (then it is skipped). */
    password: z.string().min(1).optional(),
    apiKey: z.string().min(1).optional(),
    options: optionsSchema.prefault({}),
  })
  .strict()
  .refine((c) => c.password !== undefined || c.apiKey !== undefined, {
    message: "give password or apiKey",
    path: ["password"],
  });

export type ReworkedConfig = z.infer<typeof schema>;

type Ctx = BatchContext<ReworkedConfig>;

const batching: Batching<ReworkedConfig> = {
  policy: (cfg): BatchPolicy => ({
    size: cfg.options.batchSize,
    windowMs: cfg.options.batchWindowMs,
    pollIntervalMs: cfg.options.pollIntervalMs,
    pollMaxIntervalMs: Math.max(cfg.options.pollMaxIntervalMs, cfg.options.pollIntervalMs),
    deadlineMs: cfg.options.deadlineMs,
    downloadTimeoutMs: cfg.options.downloadTimeoutMs,
  }),

  async renderFile({ items, mapping }) {
    return { contentType: "text/csv; charset=utf-8", body: await renderFile(items, mapping) };
  },

  /** process-leads with the signed file and callback URLs. */
  async submit(ctx) {
    const cfg = ctx.destination.config;
    const body = { file_url: ctx.batch.fileUrl, email: cfg.email, callback_url: ctx.batch.callbackUrl };
    const res = await call(ctx, () => post(cfg, "/process-leads", body), "process-leads");
    if ("kind" in res) return res;
    if (!ok(res)) {
      const said = message(res);
      const hint = /download/i.test(said) ? " (can Reworked reach LEADPUSH_PUBLIC_URL?)" : "";
      return transient(res)
        ? {
            kind: "retry",
            code: `http_${res.status}`,
            message: `process-leads answered ${res.status}${said}`,
          }
        : {
            kind: "failed",
            code: "process_leads_rejected",
            message: `process-leads refused (${res.status}${said})${hint}`,
          };
    }
    const data = (res.json() as { data?: { file_upload_identifier?: unknown; token?: unknown } } | undefined)
      ?.data;
    const id = data?.file_upload_identifier;
    if (typeof id !== "string" && typeof id !== "number") {
      return {
        kind: "failed",
        code: "bad_response",
        message: "process-leads answered without data.file_upload_identifier",
      };
    }
    return {
      kind: "submitted",
      externalId: String(id),
      vendorStatus: "STARTED",
      vendorState: typeof data?.token === "string" ? { statusToken: data.token } : {},
    };
  },

  /** The callback's word when it came (PROCESSED with a file, or FAILED); else file-status. */
  async check(ctx) {
    const cb = (ctx.batch.callback ?? {}) as { status?: unknown; processed_file_url?: unknown };
    const cbStatus = typeof cb.status === "string" ? cb.status.toUpperCase() : undefined;
    if (cbStatus === "PROCESSED" && typeof cb.processed_file_url === "string")
      return collect(ctx, cb.processed_file_url);
    if (cbStatus === "FAILED")
      return {
        kind: "failed",
        code: "batch_failed",
        message: "Reworked reported FAILED (callback)",
        vendorStatus: "FAILED",
      };
    return poll(ctx);
  },
};

async function poll(ctx: Ctx): Promise<BatchStep> {
  const cfg = ctx.destination.config;
  const body = {
    file_upload_identifier: ctx.batch.externalId,
    file_url: ctx.batch.fileUrl,
    email: cfg.email,
  };
  const statusToken = ctx.batch.vendorState.statusToken;
  let res: HttpResponse | undefined;
  if (typeof statusToken === "string") {
    // process-leads returned a token "to be used in file status api": try it first.
    const req = post(cfg, "/file-status", body);
    req.headers[cfg.options.headerName.toLowerCase()] = `${cfg.options.headerPrefix}${statusToken}`;
    const sent = await ctx.http.send(req, { timeoutMs: ctx.destination.timeoutMs, step: "file-status" });
    if (sent.ok && sent.response.status !== 401 && sent.response.status !== 403) res = sent.response;
  }
  if (!res) {
    const r = await call(ctx, () => post(cfg, "/file-status", body), "file-status");
    if ("kind" in r) return r;
    res = r;
  }
  if (!ok(res)) {
    if (transient(res))
      return {
        kind: "retry",
        code: `http_${res.status}`,
        message: `file-status answered ${res.status}${message(res)}`,
      };
    return {
      kind: "failed",
      code: "file_status_rejected",
      message: `file-status refused (${res.status}${message(res)})`,
    };
  }
  const data = (res.json() as { data?: { status?: unknown; processed_file_url?: unknown } } | undefined)
    ?.data;
  const status = typeof data?.status === "string" ? data.status.toUpperCase() : "";
  if (status === "PROCESSED") {
    if (typeof data?.processed_file_url !== "string") {
      return { kind: "retry", code: "bad_response", message: "PROCESSED without processed_file_url" };
    }
    return collect(ctx, data.processed_file_url);
  }
  if (status === "FAILED")
    return {
      kind: "failed",
      code: "batch_failed",
      message: "Reworked reported FAILED",
      vendorStatus: status,
    };
  return { kind: "pending", vendorStatus: status || "UNKNOWN" };
}

/** Downloads the processed file and reads it as a stream. */
async function collect(ctx: Ctx, url: string): Promise<BatchStep> {
  const dl = await ctx.download(url, ctx.policy.downloadTimeoutMs);
  if (!dl.ok)
    return { kind: "retry", code: "download_failed", message: `processed file: ${dl.error.message}` };
  if (dl.status < 200 || dl.status >= 300) {
    dl.body.resume();
    return { kind: "retry", code: "download_failed", message: `processed file answered ${dl.status}` };
  }
  const { columns, failed } = await renderRows(ctx.items, ctx.mapping);
  const batch = { batchId: ctx.batch.id, fileUploadIdentifier: ctx.batch.externalId };
  try {
    const read = await readResult(dl.body, ctx.items, columns, (enrichment) => ({ ...batch, enrichment }));
    return { kind: "done", vendorStatus: "PROCESSED", items: new Map([...read.results, ...failed]) };
  } catch (err) {
    dl.body.destroy();
    return { kind: "retry", code: "bad_result_file", message: `processed file: ${(err as Error).message}` };
  }
}

function post(cfg: ReworkedConfig, path: string, body: unknown): OutboundRequest {
  const req = newRequest("POST", reworkedUrl(cfg.baseUrl, path));
  req.contentType = "json";
  req.body = body;
  req.headers["accept"] = "application/json";
  return req;
}

/** A call with the account token; handshake and transport problems become batch steps. */
async function call(ctx: Ctx, build: () => OutboundRequest, step: string): Promise<HttpResponse | BatchStep> {
  const sent = await sendWithAuth(ctx, build, step);
  if (sent.ok) return sent.response;
  const o = sent.outcome;
  // Refused credentials will not get better by waiting: fail the batch (its leads retry on schedule).
  if (!("code" in o))
    return { kind: "retry", code: "internal_error", message: `unexpected outcome ${o.kind}` };
  if (o.kind === "failed" || o.code === "auth_rejected")
    return { kind: "failed", code: o.code, message: o.message };
  return { kind: "retry", code: o.code, message: o.message };
}

const ok = (res: HttpResponse) => res.status >= 200 && res.status < 300;
const transient = (res: HttpResponse) => res.status === 408 || res.status === 429 || res.status >= 500;
function message(res: HttpResponse): string {
  const msg = (res.json() as { msg?: unknown } | undefined)?.msg;
  return typeof msg === "string" ? `: ${msg.slice(0, 200)}` : "";
}

/**
 * Reworked.ai (the Reworked API document): asynchronous, file-based enrichment. A lead joins the
 * destination's next batch (`awaiting`); the batch service serves the batch as a CSV at a signed URL, calls
 * process-leads, waits for the callback or polls file-status, reads the processed file and merges
 * its new columns into `lead.enrichment[<destination>]`. See docs/connectors-ejento-reworked.md.
 */
export const reworkedConnector: Connector<ReworkedConfig> = {
  name: "reworked",
  schema: schema as unknown as z.ZodType<ReworkedConfig>,
  secretFields: ["password", "apiKey"],
  defaultAuth: { type: "reworked" },
  authTypes: ["reworked"],
  authFrom: (cfg): ReworkedAuthConfig => ({
    type: "reworked",
    baseUrl: cfg.baseUrl,
    email: cfg.email,
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    ...(cfg.apiKey !== undefined ? { apiKey: cfg.apiKey } : {}),
    headerName: cfg.options.headerName,
    headerPrefix: cfg.options.headerPrefix,
  }),
  async deliver(ctx) {
    if (!ctx.lead.email) {
      return {
        kind: "failed",
        code: "no_email",
        message: "Reworked enriches leads by email; this lead has none",
      };
    }
    // The account token (cached: usually no request). A lead joins a batch only with working
    // credentials, and a destination's dry run (`/test`) checks them.
    const ready = await ctx.auth.prepare(post(ctx.destination.config, "/process-leads", {}));
    // Retried on the schedule; final when the account's address is refused (`blocked_address`).
    if (!ready.ok) return transportFailure(ready);
    return { kind: "awaiting", reason: "waiting for the next Reworked batch" };
  },
  batching,
};
