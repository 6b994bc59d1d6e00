import { z } from "zod";
import type { CredentialRuntime } from "../auth/runtime.ts";
import { runAttempt } from "../delivery/attempt.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import { SAMPLE_LEAD } from "../destinations/service.ts";
import { type Lead, leadInputSchema, parseLead } from "../lead/lead.ts";
import { AppError, notFound } from "../util/errors.ts";
import { newId } from "../util/ids.ts";
import type { ApiDeps } from "./deps.ts";

/** Which lead a dry run or an expression preview uses: the given one, a stored one, or the sample. */
export const testLeadFields = {
  lead: leadInputSchema.optional().describe("The lead to use; the sample lead when absent (and no leadId)"),
  leadId: z.string().min(1).max(200).optional().describe("Use this stored lead instead (a recent real one)"),
};

/**
 * The lead a dry run or a preview runs on (400 `invalid_lead`, 404 for an unknown `leadId`). Its id
 * is always `test-lead`: a vendor that keeps our ids must not take a later real push of a stored
 * lead for a repeat of its test.
 */
export async function testLead(
  deps: ApiDeps,
  body: { lead?: unknown; leadId?: string | undefined },
): Promise<Lead> {
  if (body.lead !== undefined) {
    const parsed = parseLead(body.lead, deps.config.defaultRegion);
    if (!parsed.ok) throw new AppError(400, "invalid_lead", "the lead is not valid", parsed.details);
    return parsed.lead;
  }
  if (body.leadId !== undefined) {
    const found = await deps.store.reads.lead(body.leadId);
    if (!found) throw notFound("lead", body.leadId);
    return JSON.parse(found.lead.data) as Lead;
  }
  return SAMPLE_LEAD;
}

export const TEST_LEAD_ID = "test-lead";

/** The answer of a dry run (documented as the test routes' 200). */
export const dryRunResultSchema = z.looseObject({
  destination: z.string(),
  sent: z.boolean().describe("Whether the test lead was really sent"),
  auth: z.looseObject({
    type: z.string(),
    ok: z.boolean(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  }),
  outcome: z.looseObject({ kind: z.string() }).describe('`{"kind": "dry_run"}` unless sent or failed'),
  requests: z
    .array(z.looseObject({ step: z.string(), method: z.string(), url: z.string() }))
    .describe("Every exchange, redacted: the auth handshake (really sent) and the push"),
  durationMs: z.number(),
});

/**
 * The dry run (`send: false`) or test send of one destination, saved or not: the auth handshake is
 * real, the push is recorded and not sent unless `send`. Nothing is stored as a delivery; every
 * exchange and the outcome are redacted as the attempt log is.
 */
export async function dryRun(
  deps: ApiDeps,
  destination: ResolvedDestination,
  opts: { lead: Lead; send: boolean; credentials?: CredentialRuntime },
) {
  const r = await runAttempt({
    destination,
    lead: opts.lead,
    leadId: TEST_LEAD_ID,
    deliveryId: `test-${newId()}`,
    attempt: 1,
    state: {},
    transport: deps.transport,
    credentials: opts.credentials ?? deps.credentials,
    dryRun: !opts.send,
  });
  // An auth handshake refused, unreachable or to a blocked address (no push was tried), or a
  // destination that needs a person (reconnect).
  const code = "code" in r.outcome ? r.outcome.code : undefined;
  const authFailed =
    code !== undefined &&
    (code.startsWith("auth") ||
      r.outcome.kind === "blocked" ||
      (code === "blocked_address" && r.exchanges.every((e) => e.step.startsWith("auth"))));
  const mappingFailed = code === "mapping_error";
  return {
    destination: destination.name,
    sent: opts.send,
    auth: {
      type: destination.auth.type,
      ok: !authFailed,
      ...(authFailed && "message" in r.outcome
        ? { error: { code: r.outcome.code, message: r.outcome.message } }
        : {}),
    },
    // A mapping that fails on this lead (an error or a limit) ends the attempt before any request.
    outcome: opts.send || authFailed || mappingFailed ? r.outcome : { kind: "dry_run" },
    requests: r.exchanges,
    durationMs: r.durationMs,
  };
}
