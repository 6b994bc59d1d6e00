import type { Logger } from "pino";
import type { BatchStep } from "../connectors/batching.ts";
import type { Outcome } from "../connectors/connector.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { HealthTracker } from "./health-tracker.ts";

/**
 * What a batch step shows about its destination, as the outcome the health tracker reads (the
 * same `healthSignal` as a single push): the vendor accepting, reporting on or finishing a batch
 * is a success; a step to try again (a 5xx, no answer, a token endpoint down) is a retryable
 * failure; a batch failed as a whole (its deliveries go back on their retry schedule) is one too,
 * unless the credentials were refused (`auth_rejected`: `auth_failing`). A batch whose destination
 * is gone says nothing.
 */
export function batchStepOutcome(step: BatchStep): Outcome | undefined {
  switch (step.kind) {
    case "submitted":
    case "pending":
    case "done":
      return { kind: "delivered" };
    case "retry":
      return { kind: "retry", code: step.code, message: step.message };
    case "failed":
      if (step.code === "destination_deleted") return undefined;
      return { kind: "retry", code: step.code, message: step.message };
    default: {
      const never: never = step;
      throw new Error(`unknown batch step ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Feeds a batch step's outcome to its destination's health (the tracker the worker uses); returns
 * until when the destination is held, if the step left it held (circuit open, credentials refused).
 */
export async function observeBatchStep(
  health: HealthTracker,
  d: ResolvedDestination,
  step: BatchStep,
  log: Logger,
): Promise<number | undefined> {
  const outcome = batchStepOutcome(step);
  if (!outcome) return undefined;
  return health.observe(d, outcome).catch((err: unknown) => {
    log.error({ err, destination: d.name }, "recording the destination's health failed");
    return undefined;
  });
}
