// Every stable error code leadpush gives, one family per table, each with a one-line meaning.
// The unions below are what the compiler checks `code` fields against; README.md's error-code
// table is generated from these tables (`npm run docs:codes`) and a test keeps the two in step.
// This folder imports nothing.

type Meanings = Record<string, string>;

/** Errors the HTTP API answers with: `{"error": {"code", "message", "details"}}` (the status in brackets). */
export const API_ERROR_CODES = {
  invalid_request: "(400) the body or query does not fit the endpoint; `details` has the paths",
  bad_request: "(400) a malformed HTTP request (the message says what)",
  invalid_url: "(400) a URL that is not valid percent-encoding, or has a NUL character (`%00`)",
  headers_too_large: "(431) the request's headers are over 16 KB",
  request_timeout: "(408) the request was not received in time",
  empty_body: "(400) the body is empty",
  invalid_json: "(400) the body is not valid JSON",
  invalid_content_length: "(400) `Content-Length` does not match the body",
  unsupported_media_type: "(415) a `Content-Type` the endpoint does not read",
  payload_too_large: "(413) the body, or an import file, is over its size limit",
  unauthorized: "(401) no API key, or one that is not valid",
  forbidden: "(403) the API key lacks the scope the call needs",
  not_found: "(404) no such resource, route, batch or dashboard file",
  internal_error:
    "(500) a bug inside leadpush (the log has details); as a batch item: that lead was not stored",
  database_unavailable: "(503) `GET /readyz`: the database does not answer",
  invalid_lead: "(400) the lead is not valid; `details` has the paths and detail codes",
  invalid_idempotency_key: "(400) the `Idempotency-Key` header is too long",
  invalid_csv: "an import file that is not readable CSV, or empty (no header row); the import stops there",
  row_too_large: "an import row over the row size limit; the import stops there",
  invalid_destination: "(400) the destination's settings are not valid; `details` has the paths",
  invalid_mapping: "(400) the mapping does not compile, or fails on a sample lead",
  invalid_filter: "(400) the filter does not compile, or fails on a sample lead",
  destination_exists: "(409) a destination with that name exists",
  lead_erased: "(409) a retry of a delivery whose lead was erased (it is never sent again)",
  connect_not_supported: "(400) a browser connect for a destination whose auth is not `oauth2_code`",
  connect_ticket_invalid:
    "(401) a connect link whose ticket is unknown, used or expired: press Connect in the dashboard again",
  wrong_connector: "(400) an Ejento account call on a destination of another connector",
  ejento_user_exists: "(409) Ejento already has that user",
  vendor_rejected: "(422) the vendor refused the account call (its status in `details`)",
  vendor_unavailable: "(502) the vendor did not answer the account call, or answered 5xx/429",
  invalid_signature: "(403) a signed file or callback link that is not valid",
  link_expired: "(410) a signed file or callback link past its lifetime",
  file_expired: "(410) a batch file asked for after its batch finished",
  oauth_state_missing: "(connect page) the provider's redirect has no `state`",
  oauth_state_unknown: "(connect page) a `state` this leadpush did not issue",
  oauth_state_used: "(connect page) a sign-in link used a second time",
  oauth_state_expired: "(connect page) a sign-in that took longer than 10 minutes",
  oauth_destination_missing: "(connect page) the destination was deleted during the sign-in",
  oauth_destination_changed: "(connect page) the destination no longer uses `oauth2_code`",
} as const satisfies Meanings;
export type ApiErrorCode = keyof typeof API_ERROR_CODES;

/** `details[].code` of an `invalid_lead` or `invalid_mapping`/`invalid_filter` error (zod's own codes too). */
export const DETAIL_CODES = {
  missing_contact: "a lead with neither `email` nor `phone`",
  invalid_phone:
    "a `phone` that is not a valid number (in `LEADPUSH_DEFAULT_REGION` when it has no country code)",
  invalid_type: "a value of the wrong type (a lead that is not an object, …)",
  too_deep: "`attributes` nested deeper than 32 levels",
  nul_character: "a NUL character in a text or a key",
  expression_timeout: "a JSONata evaluation over its time limit",
  expression_too_deep: "a JSONata evaluation over its recursion depth",
  expression_too_large: "a JSONata expression or result over its size limit",
  expression_error: "a JSONata expression that does not compile or fails (its message says why)",
  expression_regex_unsupported:
    "a regular expression with a backreference or lookaround (its time cannot be bounded)",
} as const satisfies Meanings;
export type DetailCode = keyof typeof DETAIL_CODES;

/**
 * A failed auth handshake (`ObtainResult`, the runtime's `PrepareResult`): the delivery retries on
 * its schedule (never fails for it), except `needs_reconnect`, which waits for a person.
 */
export const AUTH_CODES = {
  auth_rejected:
    "the vendor refused the credentials (401/403, an OAuth 400 such as `invalid_grant`, `success: false`)",
  auth_unreachable: "the token endpoint did not answer, timed out, or answered 5xx, 408, 425 or 429",
  auth_bad_response: "a 2xx answer without a usable token",
  auth_challenge_required: "Cognito asks for a challenge leadpush cannot answer (new password, MFA)",
  auth_password_reset_required: "Cognito: the user must reset the password",
  auth_user_not_confirmed: "Cognito: the user is not confirmed",
  auth_misconfigured: "Cognito: the pool, app client or a parameter is wrong",
  needs_reconnect:
    "an `oauth2_code` destination not connected yet, or its refresh token was refused: deliveries wait",
  oauth_provider_error: "the provider answered a connect with an OAuth error",
  oauth_exchange_failed: "the provider refused a connect's code exchange",
} as const satisfies Meanings;
export type AuthCode = keyof typeof AUTH_CODES;

/** A request that got no answer (`HttpFailure`): in an attempt's exchanges and, for a push, its outcome. */
export const TRANSPORT_CODES = {
  timeout: "no complete answer within the destination's timeout",
  network_error: "refused, reset, DNS failure or an invalid URL (the message has the system's code)",
  blocked_address: "a private address while private networks are not allowed: final, also for a handshake",
  aborted: "cut off by leadpush (shutdown)",
  dry_run: "`destinations test` without `send`: the request was built, not sent",
} as const satisfies Meanings;
export type TransportCode = keyof typeof TRANSPORT_CODES;

/** What a handshake fails with: an auth code, or a refused private address. */
export type AuthFailureCode = AuthCode | Extract<TransportCode, "blocked_address">;

/** Why an attempt did not deliver (`Outcome`, a batch step): besides these, any auth or transport code. */
export const DELIVERY_CODES = {
  http_NNN:
    "the client answered status NNN: 408, 425, 429 and 5xx retry (honouring `Retry-After`), others fail",
  mapping_error: "the payload mapping failed on this lead or hit a JSONata limit: final",
  filter_error:
    "the destination's filter failed on this lead: not routed there (the lead's `routing` says so)",
  missing_field: "a field the vendor requires is empty for this lead",
  no_email: "Reworked enriches by email; the lead has none",
  bad_response: "the vendor's answer lacks what the next step needs (an id, a file URL)",
  thread_gone: "Ejento: the delivery's chat thread no longer exists (a new one is made next time)",
  process_leads_rejected: "Reworked refused the batch's `process-leads`",
  file_status_rejected: "Reworked refused the batch's `file-status`",
  batch_failed: "the vendor reports the batch failed: its deliveries go back to their retry schedule",
  batch_deadline: "the batch did not finish before its deadline",
  download_failed: "the processed file could not be downloaded",
  bad_result_file: "the processed file could not be read",
  missing_from_result: "the processed file has no row for this lead",
  destination_deleted: "the destination was deleted while the delivery was queued",
  internal_error: "an exception inside leadpush during the attempt (a bug): retried",
  shutdown_aborted: "cut off at the end of the shutdown grace: due again at once, no retry spent",
  lead_erased: "the lead was erased before it was delivered: final",
} as const satisfies Meanings;
/** `http_NNN` stands for every HTTP status. */
export type DeliveryCode = Exclude<keyof typeof DELIVERY_CODES, "http_NNN"> | `http_${number}`;

/** The code of an `Outcome` that did not deliver. */
export type OutcomeCode = DeliveryCode | AuthFailureCode | TransportCode;

/**
 * A notification's `lastError` (`GET /v1/notifications`) besides `http_NNN` (the receiver's
 * answer) and the transport codes: codes only, a Slack webhook's URL is a secret.
 */
export const ALERT_CODES = {
  target_deleted: "the alert target was deleted before the notification was sent: failed",
  alert_expired:
    "not sent within its attempts or its age (the process sending it stopped, none took it in time): failed",
} as const satisfies Meanings;
export type AlertCode = keyof typeof ALERT_CODES;

/** Errors of the command line (besides the API's, which it prints as the server gave them). */
export const CLI_ERROR_CODES = {
  server_unreachable: "`leadpush` commands could not reach the server (`--url`, `LEADPUSH_URL`)",
  invalid_option: "a command-line option with a value it does not take",
  invalid_config: "an environment variable with a bad value: leadpush does not start",
  invalid_config_file: "`LEADPUSH_CONFIG` is not valid: leadpush does not start",
  http_NNN: "the server answered status NNN without an error body (a proxy in between?)",
  rejected: "`leadpush import`: a row the server refused without an error (not expected)",
  port_in_use: "`leadpush demo`: a port it needs is taken (the message names the option that picks another)",
} as const satisfies Meanings;
export type CliErrorCode = Exclude<keyof typeof CLI_ERROR_CODES, "http_NNN"> | `http_${number}`;

/** What an `AppError` carries: an API error, an auth failure passed on (an account call), or a CLI error. */
export type AppErrorCode = ApiErrorCode | AuthFailureCode | CliErrorCode;

/** Every family, in the order the README lists them, with what the README says about it. */
export const CODE_FAMILIES: readonly { title: string; about: string; codes: Meanings }[] = [
  {
    title: "API errors",
    about:
      'Every 4xx/5xx of the API is `{"error": {"code", "message", "details"}}`; the status is in brackets.',
    codes: API_ERROR_CODES,
  },
  {
    title: "Detail codes",
    about:
      "`details[].code` of an `invalid_lead`, `invalid_mapping` or `invalid_filter` (besides zod's own, e.g. `too_small`).",
    codes: DETAIL_CODES,
  },
  {
    title: "Auth handshake",
    about:
      "A token request that failed: the delivery retries (an auth failure never fails a lead); `auth_unreachable` and `auth_rejected` hold the destination (`circuit_open`, `auth_failing`) without spending retries; `needs_reconnect` waits for a person.",
    codes: AUTH_CODES,
  },
  {
    title: "Transport",
    about:
      "A request that got no answer, as an attempt's exchange shows it; for a push, also the delivery's code (retried, except `blocked_address`).",
    codes: TRANSPORT_CODES,
  },
  {
    title: "Delivery outcomes",
    about:
      "Why an attempt did not deliver (`lastError` and the attempt's `error`); an auth or transport code may stand there too.",
    codes: DELIVERY_CODES,
  },
  {
    title: "Alert notifications",
    about:
      "`lastError` of a notification (`GET /v1/notifications`): besides these, `http_NNN` (the receiver's answer) or a transport code. Codes only: a Slack webhook's URL is a secret.",
    codes: ALERT_CODES,
  },
  {
    title: "Command line",
    about:
      "What `leadpush` commands exit with, besides the API's codes, which they print as the server gave them.",
    codes: CLI_ERROR_CODES,
  },
];
