import type { Logger } from "pino";
import { z } from "zod";
import type { Events } from "../events.ts";
import type { Transport } from "../http/http-client.ts";
import type { AlertsRepo } from "../store/alerts-repo.ts";
import type { AlertTargetsTable } from "../store/schema.ts";
import { AppError, notFound } from "../util/errors.ts";
import { newId } from "../util/ids.ts";
import type { SecretBox } from "../util/secret-box.ts";
import { type Alert, alertBody, failedAlert, stateAlert } from "./messages.ts";
import { type SenderOptions, NotificationSender } from "./sender.ts";
import { isWebhookSecret, newWebhookSecret } from "./sign.ts";

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

export interface AlertOptions extends SenderOptions {
  /**
   * At most one alert per target, destination and kind within this window, across every process
   * sharing the database; the rest are counted on the one sent and carried by the next.
   */
  debounceMs: number;
}

export const DEFAULT_ALERT_OPTIONS: AlertOptions = {
  debounceMs: 10 * 60_000,
  retryDelaysMs: [5_000, 30_000, 120_000, 600_000],
  maxAgeMs: 6 * 3600_000,
  timeoutMs: 10_000,
  leaseMs: 30_000,
  pollMs: 2_000,
  concurrency: 16,
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
 * target. The debounce is decided in the database (one alert per target, destination and kind per
 * window, whichever process raises it), each notification is recorded in `notifications`, and the
 * sending and retrying is `NotificationSender`'s, shared by every process (a failing target
 * delays nothing else).
 */
export class Alerter {
  readonly options: AlertOptions;
  readonly #sender: NotificationSender;
  readonly #inFlight = new Set<Promise<void>>();
  #off: (() => void)[] = [];
  #stopped = false;
  readonly deps: AlerterDeps;
  constructor(deps: AlerterDeps, options: Partial<AlertOptions> = {}) {
    this.deps = deps;
    this.options = { ...DEFAULT_ALERT_OPTIONS, ...options };
    // The sender reads the same options object: a change (tests shorten the delays) reaches it.
    this.#sender = new NotificationSender(deps, this.options);
  }

  start(): void {
    const { events } = this.deps;
    this.#off = [
      events.on("destination:state", (e) => this.#raise(stateAlert(e))),
      events.on("delivery:completed", (e) => this.#raise(failedAlert(e))),
    ];
    this.#sender.start();
  }

  /** Sends nothing more from now on (a shutdown, before the transport closes); alerts are still recorded. */
  pause(): void {
    this.#sender.pause();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const f of this.#off) f();
    await Promise.allSettled([...this.#inFlight]);
    await this.#sender.stop();
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
    if (!t || !(await this.deps.repo.deleteTarget(t.id, this.deps.now())))
      throw notFound("alert target", idOrName);
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
      suppressed: n.suppressed,
      nextAttemptAt: n.status === "pending" ? n.next_attempt_at : null,
      payload: JSON.parse(n.payload) as unknown,
      createdAt: n.created_at,
      updatedAt: n.updated_at,
    }));
  }

  #raise(alert: Alert | undefined): void {
    if (!alert || this.#stopped) return;
    const p = this.#open(alert).catch((err: unknown) =>
      this.deps.log.error({ err: err instanceof Error ? err.message : String(err) }, "alert not recorded"),
    );
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  /** One notification per target unless the debounce (in the database) suppresses it there. */
  async #open(alert: Alert): Promise<void> {
    const at = this.deps.now();
    let opened = false;
    for (const target of await this.deps.repo.targets()) {
      const n = await this.deps.repo.openNotification({
        id: `msg_${newId()}`,
        targetId: target.id,
        kind: alert.kind,
        destinationId: alert.destinationId,
        now: at,
        windowMs: this.options.debounceMs,
        payload: (carried) => alertBody(alert, target.format, at, carried),
      });
      if (n) opened = true;
      else
        this.deps.log.debug(
          { alertTarget: target.name, kind: alert.kind, destinationId: alert.destinationId },
          "alert suppressed by the debounce (counted on the one sent)",
        );
    }
    if (opened) this.#sender.wake();
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
