import { z } from "zod";

/** Defaults of a destination's `circuit`: when it counts as degraded or stops being called. */
export const DEFAULT_CIRCUIT = { failureThreshold: 5, cooldownMs: 30_000, degradedFailureRate: 0.5 };

export const circuitSchema = z
  .object({
    failureThreshold: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(DEFAULT_CIRCUIT.failureThreshold)
      .describe("Consecutive retryable failures that open the circuit (stop calling the destination)."),
    cooldownMs: z
      .number()
      .int()
      .min(100)
      .max(86_400_000)
      .default(DEFAULT_CIRCUIT.cooldownMs)
      .describe("How long an open circuit (or refused credentials) waits before one probe delivery."),
    degradedFailureRate: z
      .number()
      .gt(0)
      .max(1)
      .default(DEFAULT_CIRCUIT.degradedFailureRate)
      .describe("Share of failed attempts over the last 5 minutes (10 at least) that marks it degraded."),
  })
  .strict()
  .default(DEFAULT_CIRCUIT);

export type CircuitConfig = z.infer<typeof circuitSchema>;
