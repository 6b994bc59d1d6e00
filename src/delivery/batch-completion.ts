import type { BatchStep, ItemResult } from "../connectors/batching.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { LoadedItem } from "../store/batches-repo.ts";
import type { BatchesTable } from "../store/schema.ts";
import { newId } from "../util/ids.ts";
import { type Redactor, redactValue } from "../util/redact.ts";
import type { Exchange } from "../http/http-client.ts";
import type { Completion } from "../store/completions.ts";
import { buildCompletion } from "./completion.ts";
import { nextRetryDelay } from "./schedule.ts";

/**
 * What a finished batch means for one of its deliveries, as a queue `Completion` guarded by the
 * batch: delivered (with its enrichment), failed (`missing_from_result`, or nothing left to
 * retry), or back on its retry schedule (the batch failed). The attempt log gets the step's
 * exchanges.
 */
export function batchCompletion(input: {
  owner: string;
  batch: BatchesTable;
  destination: ResolvedDestination | undefined;
  item: LoadedItem;
  /** The item's result when the batch is done (undefined: the batch failed as a whole). */
  result: ItemResult | undefined;
  step: Extract<BatchStep, { kind: "done" | "failed" }>;
  exchanges: Exchange[];
  started: number;
  now: number;
  /**
   * The destination is held until then (the failed batch opened its circuit, or its credentials
   * are refused): a delivery back from a failed batch waits without spending a retry.
   */
  holdUntil?: number | undefined;
}): Completion {
  const { owner, batch, destination: d, item, result: r, step, exchanges, started, now } = input;
  const stored = item.stored ? (JSON.parse(item.stored) as Record<string, unknown>) : {};
  let status: Completion["status"];
  let nextAttemptAt: number | null = null;
  let code: string | undefined;
  let message: string | undefined;
  if (r?.ok) {
    status = "delivered";
    if (r.result !== undefined) stored.response = r.result;
  } else if (r) {
    status = "failed";
    code = r.code;
    message = r.message;
  } else {
    const failed = step as Extract<BatchStep, { kind: "failed" }>;
    code = failed.code;
    message = failed.message;
    const delay =
      d && failed.code !== "destination_deleted"
        ? nextRetryDelay(item.attempt, d.retry, undefined)
        : undefined;
    status = delay === undefined ? "failed" : "retrying";
    if (delay !== undefined) nextAttemptAt = now + delay;
    if (d && input.holdUntil !== undefined) {
      status = "retrying";
      nextAttemptAt = Math.max(now, input.holdUntil);
    }
  }
  // Held with its destination: the attempt that joined the batch is not spent.
  const attempts = !r && d && input.holdUntil !== undefined ? item.attempt - 1 : item.attempt;
  return buildCompletion(
    {
      deliveryId: item.deliveryId,
      owner,
      batchId: batch.id,
      leadId: item.leadId,
      destinationId: batch.destination_id,
    },
    {
      status,
      attempts,
      nextAttemptAt,
      code,
      message: message ?? null,
      lastStatus: null,
      externalId: status === "delivered" && batch.external_id ? batch.external_id : null,
      result: stored,
      enrichment:
        r?.ok && r.enrichment !== undefined && d ? { name: d.name, value: r.enrichment } : undefined,
    },
    {
      id: newId(),
      number: item.attempt,
      startedAt: started,
      durationMs: now - started,
      outcome: status === "delivered" ? "delivered" : status === "retrying" ? "retry" : "failed",
      exchanges,
      errorSuffix: ` (batch ${batch.id})`,
    },
    now,
  );
}

/** Each delivery's result from a vendor's processed file, redacted as a single push's answer is. */
export function redactItems(items: Map<string, ItemResult>, redactor: Redactor): Map<string, ItemResult> {
  const out = new Map<string, ItemResult>();
  for (const [id, r] of items) {
    out.set(id, r.ok ? redactValue(r, redactor) : { ...r, message: redactor.text(r.message) });
  }
  return out;
}
