import type { AuthSession, CredentialRuntime } from "../auth/runtime.ts";
import { authTarget, type ResolvedDestination } from "../destinations/model.ts";
import { createRedactor, type Redactor } from "../util/redact.ts";
import type { Exchange, HttpClient, Transport } from "../http/http-client.ts";
import { recordingClient, redactRecorded } from "../http/recording.ts";

/** What one attempt (a push, a batch step) talks to a vendor with, and what it recorded. */
export interface AttemptSession {
  /** Knows the destination's secrets, and the run-time ones (tokens) as the auth session learns them. */
  redactor: Redactor;
  /** Every exchange of the attempt, as recorded (redacted again by `recorded()` at the end). */
  exchanges: Exchange[];
  /** The recording, redacting HTTP client (wrapped by `wrap` when given). */
  http: HttpClient;
  /** The destination's auth, through the credential runtime. */
  auth: AuthSession;
  /** The exchanges as they may be stored: a token learned after its own response was recorded is redacted too. */
  recorded(): Exchange[];
}

/**
 * Builds an attempt's recording client, redactor and auth session for a destination: the one
 * place the worker's pushes, the dry run and the batch steps get them.
 */
export function openAttemptSession(input: {
  destination: ResolvedDestination;
  transport: Transport;
  credentials: CredentialRuntime;
  signal?: AbortSignal | undefined;
  /** Handshakes of a dry run are not held after a failure. */
  failureHoldMs?: number;
  /** Wraps the recording client (the dry run records pushes without sending them). */
  wrap?: (recorded: HttpClient, redactor: Redactor, exchanges: Exchange[]) => HttpClient;
}): AttemptSession {
  const d = input.destination;
  const exchanges: Exchange[] = [];
  const redactor = createRedactor(d.secretValues);
  // The destination's own connections: a hanging one cannot hold those another destination needs.
  const pool = { id: d.id, connections: d.concurrency };
  const recorded = recordingClient(input.transport, redactor, exchanges, input.signal, pool);
  const http = input.wrap ? input.wrap(recorded, redactor, exchanges) : recorded;
  const target = authTarget(
    d,
    input.failureHoldMs !== undefined ? { failureHoldMs: input.failureHoldMs } : {},
  );
  return {
    redactor,
    exchanges,
    http,
    auth: input.credentials.session(target, d.strategy, http, redactor),
    recorded: () => redactRecorded(exchanges, redactor),
  };
}
