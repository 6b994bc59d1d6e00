import type { Logger } from "pino";
import { z } from "zod";
import type { Events } from "../events.ts";
import type { Transport } from "../http/http-client.ts";
import type { AlertsRepo } from "../store/alerts-repo.ts";
import type { AlertTargetsTable, NotificationsTable } from "../store/schema.ts";
import { AppError, notFound } from "../util/errors.ts";
import { newId } from "../util/ids.ts";
import type { SecretBox } from "../util/secret-box.ts";
import { type Alert, alertBody, failedAlert, stateAlert } from "./messages.ts";
import { isWebhookSecret, newWebhookSecret, signWebhook } from "./sign.ts";

/** An alert target as the API and the config file take it. */
export const alertTargetSchema = z
  .object({
    name: z.string().min(1).max(100),
    url: z
      .string()
      .url()
      .max(2000)
      .refine((u) => /^https?:\/\//.test(u), "an http(s) URL"),
    format: z.enum(["standard", "slack"]).default("standard"),
    secret: z
      .string()
      .refine(isWebhookSecret, "a Standard Webhooks secret: whsec_ and 16–64 bytes in base64")
      .optional()
      .describe("whsec_… (generated when absent and shown once)"),
  })
  .strict();
export type AlertTargetInput = z.input<typeof alertTargetSchema>;

export interface AlertOptions {
  /** At most one alert per destination and kind within this window; the rest are counted. */
  debounceMs: number;
  /** Waits between a notification's attempts (its attempts are one more than this list). */
  retryDelaysMs: number[];
  timeoutMs: number;
}

export const DEFAULT_ALERT_OPTIONS: AlertOptions = {
  debounceMs: 10 * 60_000,
  retryDelaysMs: [5_000, 30_000, 120_000, 600_000],
  timeoutMs: 10_000,
};

/** A target without its secret; a Slack webhook's URL is a secret too, so only its origin shows. */
function view(t: AlertTargetsTable) {
  const url = t.format === "slack" ? `${new URL(t.url).origin}/[redacted]` : t.url;
  return { id: t.id, name: t.name, url, format: t.format, secret: "[redacted]", createdAt: t.created_at };
}

interface AlerterDeps {
  repo: AlertsRepo;
  box: SecretBox;
  transport: Transport;
  events: Events;
  log: Logger;
  now: () => number;
}

/**
 * Alerts: on destination state changes and deliveries failed for good, a signed message to every
 * target, debounced per destination and kind in this process, each one recorded in `notifications`
 * and retried on its own schedule (a failing target delays nothing else).
 */
export class Alerter {
  readonly options: AlertOptions;
  readonly #last = new Map<string, { at: number; suppressed: number }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inFlight = new Set<Promise<void>>();
  #off: (() => void)[] = [];
  #stopped = false;
  readonly deps: AlerterDeps;
  constructor(deps: AlerterDeps, options: Partial<AlertOptions> = {}) {
    this.deps = deps;
    this.options = { ...DEFAULT_ALERT_OPTIONS, ...options };
  }

  start(): void {
    const { events } = this.deps;
    this.#off = [
      events.on("destination:state", (e) => this.#raise(stateAlert(e))),
      events.on("delivery:completed", (e) => this.#raise(failedAlert(e))),
    ];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const f of this.#off) f();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#inFlight]);
  }

  async upsert(
    input: AlertTargetInput,
  ): Promise<{ created: boolean; target: ReturnType<typeof view>; secret?: string }> {
    const parsed = alertTargetSchema.parse(input);
    const generated = parsed.secret ? undefined : newWebhookSecret();
    const t = this.deps.now();
    const row: AlertTargetsTable = {
      id: newId(),
      name: parsed.name,
      url: parsed.url,
      format: parsed.format,
      secret: this.deps.box.seal(parsed.secret ?? generated!),
      created_at: t,
      updated_at: t,
    };
    const created = await this.deps.repo.upsertTarget(row);
    const saved = await this.deps.repo.target(parsed.name);
    return { created, target: view(saved!), ...(generated ? { secret: generated } : {}) };
  }

  async list() {
    return (await this.deps.repo.targets()).map(view);
  }

  async remove(idOrName: string): Promise<void> {
    const t = await this.deps.repo.target(idOrName);
    if (!t || !(await this.deps.repo.deleteTarget(t.id))) throw notFound("alert target", idOrName);
  }

  async notifications(limit?: number) {
    return (await this.deps.repo.notifications(limit)).map((n) => ({
      id: n.id,
      targetId: n.target_id,
      kind: n.kind,
      destinationId: n.destination_id,
      status: n.status,
      attempts: n.attempts,
      lastError: n.last_error,
      payload: JSON.parse(n.payload) as unknown,
      createdAt: n.created_at,
      updatedAt: n.updated_at,
    }));
  }

  #raise(alert: Alert | undefined): void {
    if (!alert || this.#stopped) return;
    const key = `${alert.destinationId}:${alert.kind}`;
    const t = this.deps.now();
    const last = this.#last.get(key);
    if (last && t - last.at < this.options.debounceMs) {
      last.suppressed++;
      return;
    }
    if (this.#last.size > 10_000) this.#last.clear();
    this.#last.set(key, { at: t, suppressed: 0 });
    this.#track(this.#fanOut(alert, last?.suppressed ?? 0));
  }

  #track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) =>
      this.deps.log.error({ err: err instanceof Error ? err.message : String(err) }, "alert not recorded"),
    );
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  async #fanOut(alert: Alert, suppressed: number): Promise<void> {
    const at = this.deps.now();
    for (const target of await this.deps.repo.targets()) {
      const n: NotificationsTable = {
        id: `msg_${newId()}`,
        target_id: target.id,
        kind: alert.kind,
        destination_id: alert.destinationId,
        payload: alertBody(alert, target.format, at, suppressed),
        status: "pending",
        attempts: 0,
        last_error: null,
        created_at: at,
        updated_at: at,
      };
      await this.deps.repo.insertNotification(n);
      this.#track(this.#attempt(target, n));
    }
  }

  async #attempt(target: AlertTargetsTable, n: NotificationsTable): Promise<void> {
    const { transport, box, repo, log, now } = this.deps;
    const headers = {
      "content-type": "application/json",
      ...signWebhook(box.open(target.secret), n.id, Math.floor(now() / 1000), n.payload),
    };
    const res = await transport.send(
      { method: "POST", url: target.url, headers, query: {}, body: n.payload, contentType: "raw" },
      this.options.timeoutMs,
    );
    const ok = res.ok && res.response.status >= 200 && res.response.status < 300;
    // Codes only: a transport's message may name the URL, and a Slack webhook's URL is a secret.
    const error = ok ? null : res.ok ? `http_${res.response.status}` : res.error.code;
    n.attempts++;
    const more = n.attempts <= this.options.retryDelaysMs.length && !this.#stopped;
    n.status = ok ? "sent" : more ? "pending" : "failed";
    // A sent notification keeps the error of its last failed attempt (what the retries were for).
    if (error) n.last_error = error;
    await repo.updateNotification(n.id, {
      status: n.status,
      attempts: n.attempts,
      last_error: n.last_error,
      updated_at: now(),
    });
    if (ok) return;
    if (!more) {
      log.warn(
        { alertTarget: target.name, notification: n.id, kind: n.kind, code: error },
        "alert not delivered",
      );
      return;
    }
    const timer = setTimeout(
      () => {
        this.#timers.delete(timer);
        this.#track(this.#attempt(target, n));
      },
      this.options.retryDelaysMs[n.attempts - 1],
    );
    this.#timers.add(timer);
  }
}

/** A bad alert target from the API: 400 `invalid_request` with zod's details. */
export function invalidTarget(err: z.ZodError): AppError {
  return new AppError(
    400,
    "invalid_request",
    "the alert target is not valid",
    err.issues.map((i) => ({ path: i.path.map((p) => String(p)), message: i.message, code: i.code })),
  );
}
