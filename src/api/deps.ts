import type { Logger } from "pino";
import type { Alerter } from "../alerts/alerter.ts";
import { z } from "zod";
import type { CredentialRuntime } from "../auth/runtime.ts";
import type { Config } from "../config.ts";
import type { ApiErrorCode } from "../domain/codes.ts";
import type { Transport } from "../http/http-client.ts";
import type { BatchService } from "../delivery/batches.ts";
import type { Worker } from "../delivery/worker.ts";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import type { Ingest } from "../ingest/ingest.ts";
import type { Metrics } from "../metrics.ts";
import type { DeliveryStore } from "../store/delivery-store.ts";
import type { ApiKeys } from "../store/keys-repo.ts";
import type { OAuthStates } from "../store/oauth-states-repo.ts";
import { AppError } from "../util/errors.ts";
import type { UrlSigner } from "../util/signed-url.ts";

/** What route handlers may use. */
export interface ApiDeps {
  config: Config;
  /** Delivery transitions and read models (routes get no database handle). */
  store: DeliveryStore;
  log: Logger;
  events: Events;
  ingest: Ingest;
  destinations: DestinationService;
  credentials: CredentialRuntime;
  transport: Transport;
  keys: ApiKeys;
  /** Pending browser OAuth connects (oauth2_code). */
  oauthStates: OAuthStates;
  metrics: Metrics;
  worker: Worker | undefined;
  /** Batches of batching connectors (runs where the worker runs). */
  batches: BatchService | undefined;
  /** Signs and verifies the URLs vendors call without an API key (batch files, callbacks). */
  signer: UrlSigner;
  now: () => number;
  /** Alert targets and notifications. */
  alerts: Alerter;
}

/** A zod schema as JSON Schema for the OpenAPI document (validation itself is `parseInput`). */
export function doc(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: "openapi-3.0", io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}

/** Validates input with the same zod schema that documents it; `code` names what was wrong. */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  code: ApiErrorCode = "invalid_request",
): z.infer<T> {
  if (input === undefined || input === null)
    throw new AppError(400, "empty_body", "the body is empty; send a JSON object");
  const r = schema.safeParse(input);
  if (!r.success) {
    throw new AppError(
      400,
      code,
      "the request is not valid",
      r.error.issues.map((i) => ({
        path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
        message: i.message,
        code: i.code,
      })),
    );
  }
  return r.data;
}

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional().describe("nextCursor of the previous page"),
});
