import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Transport } from "../http/http-client.ts";
import type { AlertsRepo } from "../store/alerts-repo.ts";
import type { NotificationsTable } from "../store/schema.ts";
import { newId } from "../util/ids.ts";
import type { SecretBox } from "../util/secret-box.ts";
import { signWebhook } from "./sign.ts";

export interface SenderOptions {
  /** Waits between a notification's attempts (its attempts are one more than this list). */
  retryDelaysMs: number[];
  /** A notification is not retried past this age (ms since it was raised): it ends `failed`. */
  maxAgeMs: number;
  /** One request's whole time. */
  timeoutMs: number;
  /** A claimed notification is this process's for this long (then another process may take it). */
  leaseMs: number;
  /** Longest sleep: other processes' notifications (and expired leases) are seen this often. */
  pollMs: number;
  /** At most this many notifications are sent at once by this process. */
  concurrency: number;
}

interface SenderDeps {
  repo: AlertsRepo;
  box: SecretBox;
  transport: Transport;
  log: Logger;
  now: () => number;
}

/**
 * Sends pending notifications, shared by every process through the database: due notifications
 * are claimed with a lease, sent (signed with the notification's id, the same on every retry) and
 * recorded; a failed one is due again after its next back-off, by whichever process claims it,
 * until its attempts or its age run out, then `failed` with its error code. A process that stops
 * or dies while sending leaves the notification to the others (at once, or when the lease ends).
 */
export class NotificationSender {
  readonly id = `${hostname()}:${process.pid}:alerts:${newId().slice(-8)}`;
  readonly options: SenderOptions;
  readonly #deps: SenderDeps;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #round: Promise<void> | undefined;
  #again = false;
  #stopped = true;

  constructor(deps: SenderDeps, options: SenderOptions) {
    this.#deps = deps;
    this.options = options;
  }

  start(): void {
    this.#stopped = false;
    this.wake();
  }

  /** Claims nothing more (a shutdown, before the transport closes); what is in flight goes on. */
  pause(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops claiming; waits for the sends in flight (the transport's close cuts them off). */
  async stop(): Promise<void> {
    this.pause();
    await this.#round;
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Look for due notifications now (one was just raised in this process). */
  wake(): void {
    this.#schedule(this.#deps.now());
  }

  #schedule(at: number): void {
    if (this.#stopped || (this.#timer && this.#timerAt <= at)) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    // Always a timer, never a chain of queries: with node:sqlite a query resolves as a microtask.
    this.#timer = setTimeout(() => this.#run(), Math.max(0, at - this.#deps.now()));
    this.#timer.unref();
  }

  #run(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#round) {
      this.#again = true;
      return;
    }
    this.#round = this.#claimRound()
      .catch((err: unknown) => {
        this.#deps.log.error({ err: err instanceof Error ? err.message : String(err) }, "alert round failed");
        return undefined;
      })
      .then((next) => {
        const now = this.#deps.now();
        this.#round = undefined;
        if (this.#again) {
          this.#again = false;
          this.#schedule(now);
        } else this.#schedule(Math.min(now + this.options.pollMs, Math.max(now + 10, next ?? Infinity)));
      });
  }

  /** Claims and starts what is due; returns when the next pending notification falls due. */
  async #claimRound(): Promise<number | undefined> {
    const room = this.options.concurrency - this.#inFlight.size;
    if (this.#stopped || room <= 0) return undefined;
    const now = this.#deps.now();
    // A read first: an idle process writes nothing (on SQLite an empty UPDATE still takes the lock).
    const due = await this.#deps.repo.nextDueAt();
    if (due === undefined || due > now) return due;
    const claimed = await this.#deps.repo.claim({
      owner: this.id,
      now,
      leaseUntil: now + this.options.leaseMs,
      limit: room,
    });
    for (const n of claimed) {
      const p = this.#attempt(n).catch((err: unknown) =>
        this.#deps.log.error(
          { notification: n.id, err: err instanceof Error ? err.message : String(err) },
          "alert attempt not recorded",
        ),
      );
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
    }
    return this.#deps.repo.nextDueAt();
  }

  async #attempt(n: NotificationsTable): Promise<void> {
    const { transport, box, repo, log, now } = this.#deps;
    const target = await repo.target(n.target_id);
    if (!target) {
      await repo.finishAttempt(n.id, this.id, {
        status: "failed",
        last_error: "target_deleted",
        next_attempt_at: null,
        updated_at: now(),
      });
      return;
    }
    if (
      n.attempts > this.options.retryDelaysMs.length + 1 ||
      now() - Number(n.created_at) > this.options.maxAgeMs
    ) {
      // Claimed again after the last attempt's process died (or left waiting too long): give up.
      await repo.finishAttempt(n.id, this.id, {
        status: "failed",
        last_error: n.last_error ?? "alert_expired",
        next_attempt_at: null,
        updated_at: now(),
      });
      log.warn({ alertTarget: target.name, notification: n.id, kind: n.kind }, "alert not delivered");
      return;
    }
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
    const t = now();
    const delay = this.options.retryDelaysMs[n.attempts - 1];
    // Cut off by this process's shutdown: due again at once, for another process.
    const dueAt = delay === undefined ? undefined : this.#stopped ? t : t + delay;
    const more = !ok && dueAt !== undefined && dueAt - Number(n.created_at) <= this.options.maxAgeMs;
    const recorded = await repo.finishAttempt(n.id, this.id, {
      status: ok ? "sent" : more ? "pending" : "failed",
      // A sent notification keeps the error of its last failed attempt (what the retries were for).
      last_error: error ?? n.last_error,
      next_attempt_at: more ? dueAt : null,
      updated_at: t,
    });
    if (!recorded) {
      log.warn({ notification: n.id, kind: n.kind }, "alert attempt outlived its lease: not recorded");
      return;
    }
    if (more) this.#schedule(dueAt);
    else if (!ok)
      log.warn(
        { alertTarget: target.name, notification: n.id, kind: n.kind, attempts: n.attempts, code: error },
        "alert not delivered",
      );
  }
}
