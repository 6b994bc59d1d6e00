/** Row types of the database, for Kysely. Times are integer milliseconds since the epoch; JSON is text. */
import type { ColumnType } from "kysely";
import type { BatchStatus, DeliveryStatus } from "../domain/status.ts";
export interface ApiKeysTable {
  id: string;
  name: string;
  prefix: string;
  hash: string;
  scopes: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface DestinationsTable {
  id: string;
  name: string;
  connector: string;
  enabled: number;
  /** The destination's settings with secret fields removed (JSON). */
  config: string;
  /** The secret fields, sealed with the master key (JSON inside). */
  secrets: string | null;
  /** `active`, `degraded`, `circuit_open`, `auth_failing` or `needs_reconnect` (src/delivery/health.ts). */
  state: string;
  /** Consecutive retryable failures (migration 007; absent in rows written before it). */
  failure_streak?: number | undefined;
  /** When an open circuit (or refused credentials) is probed next, ms. */
  probe_at?: number | null | undefined;
  /** Why the state is what it is (the last transition's reason). */
  state_reason?: string | null | undefined;
  created_at: number;
  updated_at: number;
}

/**
 * Traffic control columns of `destinations` (migration 008), read and written only by
 * store/traffic-repo.ts: not part of the row the destination service stores and reads.
 */
export interface DestinationTrafficColumns {
  /** The whole destination is not claimed before this time (ms): a Retry-After or adaptive back-off. */
  hold_until: ColumnType<number | null, number | null | undefined, number | null>;
  /** Why it is held (the code and the vendor's hint), null without a hold. */
  hold_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** Adaptive throttle after 429s without Retry-After: 0 none; each level halves the rate. */
  throttle_level: ColumnType<number, number | undefined, number>;
  /** The rate limit's shared budget: GCRA theoretical arrival time (ms), null when never used. */
  rate_tat: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface LeadsTable {
  id: string;
  created_at: number;
  source: string | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  /** The whole canonical lead (JSON). */
  data: string;
  idempotency_key: string | null;
  erased_at: number | null;
  /** The first lead with the same email or phone within the duplicate window. */
  duplicate_of: string | null;
  /** Search keys (migration 012; `lead/search.ts`): lower-cased, null when absent or erased. */
  name_key: string | null;
  last_name_key: string | null;
  city_key: string | null;
  /** The API key that sent the lead (`admin-token` for LEADPUSH_ADMIN_TOKEN; null before 012). */
  api_key_id: string | null;
}

export interface DeliveriesTable {
  id: string;
  lead_id: string;
  destination_id: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the delivery may be claimed; null unless it is `pending` or `retrying` (the queue index). */
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  last_error: string | null;
  last_status: number | null;
  external_id: string | null;
  /** What the client returned that is worth keeping (JSON). */
  result: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
  /** The batch an `awaiting` delivery is in (batching connectors); null otherwise. */
  batch_id: string | null;
}

export interface AttemptsTable {
  id: string;
  delivery_id: string;
  lead_id: string;
  destination_id: string;
  number: number;
  started_at: number;
  duration_ms: number;
  outcome: string;
  /** The HTTP exchanges of the attempt, redacted (JSON array). */
  exchanges: string;
  response_status: number | null;
  error_code: string | null;
  error_message: string | null;
}

export interface CredentialsTable {
  destination_id: string;
  /** Sealed JSON of the credential (token, cookies, refresh token). */
  data: string;
  expires_at: number | null;
  updated_at: number;
}

/** Who is fetching a destination's credential, until when (migration 014). */
/**
 * A settled hour's aggregate of one destination's attempts (migration 015, store/destination-stats.ts):
 * `data` is JSON, written once by the first read that needed the hour.
 */
export interface AttemptHoursTable {
  destination_id: string;
  /** The hour's start (ms). */
  hour: number;
  data: string;
}

export interface CredentialLeasesTable {
  destination_id: string;
  /** The fetching runtime's id; empty while the row holds a failed handshake's result. */
  holder: string;
  /** ms: a fetcher's lease end (renewed while it runs), or the end of a failure's hold. */
  held_until: number;
  /** The destination version a failure was obtained with. */
  version: string | null;
  /** Sealed JSON of a failed handshake's result (code, message), held until `held_until`. */
  failure: string | null;
}

export interface OAuthStatesTable {
  /** SHA-256 (base64url) of the `state` sent to the provider. */
  id: string;
  destination_id: string;
  /** Sealed JSON: the PKCE code verifier and the nonce. */
  data: string;
  redirect_uri: string;
  created_at: number;
  expires_at: number;
  /** Set when a callback presented it: a state is good once. */
  used_at: number | null;
}

/** A batch of a batching connector (reworked): deliveries that go to the vendor as one file. */
export interface BatchesTable {
  id: string;
  destination_id: string;
  /** `submitting` → `processing` → `completed` | `failed`. */
  status: BatchStatus;
  size: number;
  /** The vendor's id for the batch (Reworked's file_upload_identifier). */
  external_id: string | null;
  /** The vendor's last word on it (STARTED, PROCESSING, PROCESSED, FAILED). */
  vendor_status: string | null;
  /** Sealed JSON the connector keeps between steps (e.g. a status token). */
  vendor_state: string | null;
  /** The latest body posted to the batch's callback URL (JSON). */
  callback: string | null;
  callback_at: number | null;
  callbacks: number;
  /** Check steps so far (after a callback, or a poll on the schedule; also counts submit retries). */
  checks: number;
  /** When the next step (submit, check) is due; null once the batch is finished. */
  next_check_at: number | null;
  deadline_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  /** `code: message` of the last failure. */
  error: string | null;
  /** The batch's recent HTTP exchanges, redacted (JSON array). */
  log: string;
  created_at: number;
  updated_at: number;
  submitted_at: number | null;
  finished_at: number | null;
}

export interface BatchItemsTable {
  batch_id: string;
  delivery_id: string;
  lead_id: string;
  /** The delivery's attempt number this batch carries. */
  attempt: number;
  /**
   * `waiting`, then `delivered`, `failed`, `retrying` (the batch failed) or `superseded` (the
   * delivery had moved on meanwhile: its lead erased, a newer batch).
   */
  status: string;
  error: string | null;
}

/** Why a lead did not go to a destination: one row per destination it skipped (see RoutingDecision). */
export interface LeadRoutingTable {
  lead_id: string;
  destination_id: string;
  /** The destination's name then (it may be renamed or deleted later). */
  destination_name: string;
  /** `filtered`, `filter_error`, `disabled` or `duplicate`. */
  decision: string;
  reason: string;
  /** For `duplicate`: the earlier lead that destination already got. */
  duplicate_of: string | null;
  created_at: number;
}

export interface Database {
  api_keys: ApiKeysTable;
  destinations: DestinationsTable & DestinationTrafficColumns;
  leads: LeadsTable;
  /** `replay` (migration 008): 1 when made due again by a replay (rate-limited claims favour live rows). */
  deliveries: DeliveriesTable & { replay: number };
  attempts: AttemptsTable;
  attempt_hours: AttemptHoursTable;
  credentials: CredentialsTable;
  credential_leases: CredentialLeasesTable;
  oauth_states: OAuthStatesTable;
  batches: BatchesTable;
  batch_items: BatchItemsTable;
  lead_routing: LeadRoutingTable;
  alert_targets: AlertTargetsTable;
  notifications: NotificationsTable;
  alert_debounce: AlertDebounceTable;
}

/** Where alerts go (migration 009). `secret` is sealed. */
export interface AlertTargetsTable {
  id: string;
  name: string;
  url: string;
  format: "standard" | "slack";
  secret: string;
  created_at: number;
  updated_at: number;
}

/**
 * One alert to one target: `pending` → `sent` | `failed` (after its retries). `attempts` counts
 * claims (a process that died mid-send spent one).
 */
export interface NotificationsTable {
  id: string;
  target_id: string;
  kind: string;
  destination_id: string | null;
  /** The JSON sent (no lead data, no secrets). */
  payload: string;
  status: "pending" | "sent" | "failed";
  attempts: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  /** Alerts of the same target, destination and kind suppressed by the debounce since this one (010). */
  suppressed: number;
  /** Pending: when it is due, or when the lease of the process sending it ends; else NULL (010). */
  next_attempt_at: number | null;
  lease_owner: string | null;
}

/**
 * The debounce of one target, destination and kind, shared by every process (migration 010):
 * when the last alert was sent (`notification_id`), how many were suppressed since (`suppressed`),
 * and how many the one sent last carried from before it (`carried`).
 */
export interface AlertDebounceTable {
  target_id: string;
  destination_id: string;
  kind: string;
  sent_at: number;
  notification_id: string;
  suppressed: number;
  carried: number;
}
