import type { Outcome } from "../connectors/connector.ts";
import type { CircuitConfig } from "../destinations/circuit.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import { SHUTDOWN_ABORTED } from "./completion.ts";

/*
 * A destination's health state, decided in one place: what an attempt's outcome means for its
 * destination (`healthSignal`) and the state that follows (`nextHealth`). Pure: the store keeps
 * the state (`destinations.state`, `failure_streak`, `probe_at`), shared by every process.
 */

/** What an attempt shows about its destination. */
export type HealthSignal = "success" | "failure" | "auth_refused" | "unreachable" | "blocked" | "neutral";

export interface Health {
  state: string;
  streak: number;
  probeAt: number | null;
  reason: string | null;
}

/** States in which the destination is not called, except for one probe once `probeAt` is due. */
export const HELD_STATES: ReadonlySet<string> = new Set(["circuit_open", "auth_failing"]);

/**
 * Whether ingest may hand a new delivery of `d` straight to this process's worker: not when the
 * destination is off, paused, waiting for a person, held by its health or by traffic control
 * (`trafficHeld`), or rate-limited (its rows go through the shared budget).
 */
export function handOffAllowed(
  d: Pick<ResolvedDestination, "enabled" | "paused" | "state" | "rateLimit">,
  trafficHeld: boolean,
): boolean {
  return (
    d.enabled &&
    !d.paused &&
    d.state !== "needs_reconnect" &&
    !HELD_STATES.has(d.state) &&
    d.rateLimit === undefined &&
    !trafficHeld
  );
}

/** A token endpoint that did not answer is probed again this soon at most. */
export const UNREACHABLE_PROBE_MS = 5_000;

/**
 * `staticCredential`: the auth strategy has no handshake (basic, static_key, none, a fixed bearer
 * token), so a 401/403 means the credential itself is refused; a token strategy already fetched a
 * fresh token once within the attempt and reports `auth_rejected` when the handshake is refused.
 */
export function healthSignal(outcome: Outcome, staticCredential: boolean): HealthSignal {
  if (outcome.kind === "delivered") return "success";
  if (outcome.kind === "blocked") return "blocked";
  if (outcome.kind === "awaiting") return "neutral";
  const code: string = outcome.code;
  if (code === "auth_rejected") return "auth_refused";
  if ((code === "http_401" || code === "http_403") && staticCredential) return "auth_refused";
  if (code === "auth_unreachable") return "unreachable";
  if (outcome.kind === "retry" && code !== SHUTDOWN_ABORTED) return "failure";
  return "neutral";
}

/**
 * The state after one attempt's signal. `failureRate` is the share of failed attempts recently
 * (undefined: too few attempts to tell); it only moves `active` ⇄ `degraded`.
 */
export function nextHealth(
  prev: Health,
  signal: HealthSignal,
  cfg: CircuitConfig,
  now: number,
  failureRate?: number,
): Health {
  const degraded = failureRate !== undefined && failureRate > cfg.degradedFailureRate;
  const probe = now + cfg.cooldownMs;
  switch (signal) {
    case "success":
      return {
        state: degraded ? "degraded" : "active",
        streak: 0,
        probeAt: null,
        reason: degraded ? "recent failure rate above the threshold" : null,
      };
    case "blocked":
      return {
        ...prev,
        state: "needs_reconnect",
        probeAt: null,
        reason: "waiting for an admin to reconnect",
      };
    case "auth_refused":
      return {
        state: "auth_failing",
        streak: prev.streak + 1,
        probeAt: probe,
        reason: "credentials refused",
      };
    case "unreachable":
      // The credential runtime holds a failed handshake a few seconds: probe no later than that.
      return {
        state: "circuit_open",
        streak: prev.streak + 1,
        probeAt: now + Math.min(cfg.cooldownMs, UNREACHABLE_PROBE_MS),
        reason: "the token endpoint is unreachable",
      };
    case "failure": {
      const streak = prev.streak + 1;
      if (HELD_STATES.has(prev.state) || streak >= cfg.failureThreshold)
        return {
          state: "circuit_open",
          streak,
          probeAt: probe,
          reason: `${streak} consecutive retryable failures`,
        };
      if (degraded)
        return {
          state: "degraded",
          streak,
          probeAt: null,
          reason: "recent failure rate above the threshold",
        };
      return { ...prev, streak };
    }
    case "neutral":
      return prev;
  }
}

/** Until when a delivery that met `signal` waits without spending its retry schedule (held). */
export function holdUntil(health: Health, signal: HealthSignal): number | undefined {
  if (signal === "success" || signal === "neutral" || signal === "blocked") return undefined;
  return HELD_STATES.has(health.state) && health.probeAt !== null ? health.probeAt : undefined;
}
