import type { CredentialRuntime } from "../auth/runtime.ts";
import type { DeliveryContext, Outcome } from "../connectors/connector.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { Lead } from "../lead/lead.ts";
import { type Redactor, redactValue } from "../util/redact.ts";
import { openAttemptSession } from "./attempt-session.ts";
import { encodeBody, type Exchange, fullUrl, type HttpClient, type Transport } from "../http/http-client.ts";

export interface AttemptInput {
  destination: ResolvedDestination;
  lead: Lead;
  leadId: string;
  deliveryId: string;
  attempt: number;
  state: Record<string, unknown>;
  transport: Transport;
  credentials: CredentialRuntime;
  /** Dry run: auth handshakes are real, every other request is recorded but not sent. */
  dryRun?: boolean;
  /** Ends every request of the attempt at once (a worker shutting down at the end of its grace). */
  signal?: AbortSignal;
}

export interface AttemptResult {
  outcome: Outcome;
  exchanges: Exchange[];
  state: Record<string, unknown>;
  durationMs: number;
}

/** The default payload: the canonical lead with leadpush's id. */
export function defaultPayload(input: Record<string, unknown>): unknown {
  const { enrichment, attributes, ...rest } = input as { enrichment?: object; attributes?: object };
  return {
    ...rest,
    ...(attributes && Object.keys(attributes).length > 0 ? { attributes } : {}),
    ...(enrichment && Object.keys(enrichment).length > 0 ? { enrichment } : {}),
  };
}

/**
 * One attempt of one delivery: builds the connector's context (recording, redacting HTTP client;
 * the destination's auth session) and runs the connector. Used by the worker and by the dry run.
 */
export async function runAttempt(input: AttemptInput): Promise<AttemptResult> {
  const { destination } = input;
  const t0 = performance.now();
  const session = openAttemptSession({
    destination,
    transport: input.transport,
    credentials: input.credentials,
    signal: input.signal,
    ...(input.dryRun ? { failureHoldMs: 0, wrap: dryRunClient } : {}),
  });
  const { redactor, http } = session;
  let state = { ...input.state };
  const ctx: DeliveryContext<unknown> = {
    lead: input.lead,
    leadId: input.leadId,
    deliveryId: input.deliveryId,
    attempt: input.attempt,
    destination: {
      id: destination.id,
      name: destination.name,
      timeoutMs: destination.timeoutMs,
      config: destination.connectorConfig,
    },
    mapping: destination.mapping ?? {
      render: (i) => {
        const c = destination.connector;
        return Promise.resolve(
          c.defaultPayload ? c.defaultPayload(i, destination.connectorConfig) : defaultPayload(i),
        );
      },
    },
    http,
    auth: session.auth,
    state,
    setState: (patch) => {
      state = { ...state, ...patch };
    },
  };
  let outcome: Outcome;
  try {
    outcome = await destination.connector.deliver(ctx);
  } catch (err) {
    outcome = { kind: "retry", code: "internal_error", message: String((err as Error)?.message ?? err) };
  }
  if ("message" in outcome) outcome = { ...outcome, message: redactor.text(outcome.message) };
  // What is kept from the vendor's answer (many echo the request, headers and all) is redacted
  // like the attempt log: it is stored, and shown by the API and the test push.
  if (outcome.kind === "delivered") outcome = redactDelivered(outcome, redactor);
  return {
    outcome,
    exchanges: session.recorded(),
    state,
    durationMs: Math.round(performance.now() - t0),
  };
}

function redactDelivered(outcome: Extract<Outcome, { kind: "delivered" }>, redactor: Redactor) {
  const out = { ...outcome };
  if (out.result !== undefined) out.result = redactValue(out.result, redactor);
  if (out.externalId !== undefined) out.externalId = redactor.text(out.externalId);
  if (out.enrichment !== undefined) out.enrichment = redactValue(out.enrichment, redactor);
  return out;
}

function dryRunClient(real: HttpClient, redactor: Redactor, exchanges: Exchange[]): HttpClient {
  return {
    send(req, opts) {
      const step = opts.step ?? "push";
      if (step.startsWith("auth")) return real.send(req, opts);
      // What the transport would send: the encoded body and its content type, the query in the URL.
      const { body, contentType } = encodeBody(req);
      const headersWithType = { ...(contentType ? { "content-type": contentType } : {}), ...req.headers };
      exchanges.push({
        step: `${step} (dry run: not sent)`,
        method: req.method,
        url: redactor.text(fullUrl(req)),
        requestHeaders: redactor.headers(headersWithType),
        ...(body !== undefined ? { requestBody: redactor.text(body) } : {}),
        durationMs: 0,
      });
      return Promise.resolve({
        ok: false,
        error: { code: "dry_run", message: "dry run: the request was not sent" },
      });
    },
  };
}
