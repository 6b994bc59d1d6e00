// The delivery and batch statuses: the one list every layer (and the dashboard, through the
// generated `web/statuses.js`) takes them from. This folder imports nothing.

/**
 * A delivery's status, in the order the API and the dashboard show them.
 * `pending` → (claimed) → `delivered` | `retrying` | `failed` | `awaiting` | (`blocked` waits for a person);
 * `blocked` is also where a delivery waits for its `after` destinations.
 */
export const DELIVERY_STATUSES = [
  "pending",
  "retrying",
  "awaiting",
  "blocked",
  "delivered",
  "failed",
] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Statuses after which nothing more happens to a delivery (unless retried by hand). */
export const FINAL_STATUSES = ["delivered", "failed"] as const satisfies readonly DeliveryStatus[];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** Statuses that still have something to happen: every status that is not final. */
export const OPEN_STATUSES: readonly Exclude<DeliveryStatus, FinalStatus>[] = DELIVERY_STATUSES.filter(
  (s): s is Exclude<DeliveryStatus, FinalStatus> => !(FINAL_STATUSES as readonly string[]).includes(s),
);

/** What a new delivery starts as: due now, or waiting for its `after` destinations. */
export type InitialStatus = Extract<DeliveryStatus, "pending" | "blocked">;

/** What an attempt (or a batch) leaves a delivery in. */
export type CompletedStatus = Exclude<DeliveryStatus, "pending">;

/** Statuses a replay (`POST /v1/deliveries/replay`) may select. */
export const REPLAYABLE_STATUSES = [
  "failed",
  "retrying",
  "delivered",
] as const satisfies readonly DeliveryStatus[];

/** A vendor batch (`GET /v1/batches`): `submitting` → `processing` → `completed` | `failed`. */
export const BATCH_STATUSES = ["submitting", "processing", "completed", "failed"] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** A destination's `state` (the API contract; `delivery/health.ts` decides it). */
export const DESTINATION_STATES = [
  "active",
  "degraded",
  "circuit_open",
  "auth_failing",
  "needs_reconnect",
  "paused",
  "disabled",
] as const;
export type DestinationStateName = (typeof DESTINATION_STATES)[number];
