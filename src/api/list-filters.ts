import { z } from "zod";
import { DELIVERY_STATUSES } from "../domain/status.ts";
import { SEARCH_FIELDS } from "../store/lead-search.ts";
import type { ApiDeps } from "./deps.ts";

/**
 * The filters of the lead and delivery lists, shared by the lists, the replay and the CSV exports
 * (a filtered view in the dashboard is exported and replayed with exactly what it shows).
 */

const isoTime = z.iso.datetime({ offset: true });

export const deliveryFilter = z.object({
  status: z.enum(DELIVERY_STATUSES).optional(),
  destination: z.string().max(200).optional().describe("Destination id or name"),
  lead: z.string().max(100).optional(),
  errorCode: z
    .string()
    .regex(/^[a-z0-9_]{1,64}$/, "an error code: lower-case letters, digits and _")
    .optional()
    .describe("The last error's code, e.g. http_500 or network_error"),
  since: isoTime.optional().describe("Created at or after this time (ISO 8601)"),
  until: isoTime.optional().describe("Created before this time (ISO 8601)"),
});

export const leadFilter = z.object({
  source: z.string().max(200).optional(),
  q: z
    .string()
    .max(200)
    .optional()
    .describe(
      "Search: name, last name, email or city (prefix, any case), phone in any format " +
        '("+91 98200 12345", "098200-12345", "9820012345" are one number), a vendor\'s id on a delivery',
    ),
  field: z.enum(SEARCH_FIELDS).optional().describe("Search only this field"),
});

const ms = (iso: string | undefined) => (iso === undefined ? undefined : Date.parse(iso));

/** A delivery filter as the store reads it (a destination name becomes its id: 404 when unknown). */
export async function deliveryQuery(deps: ApiDeps, f: z.infer<typeof deliveryFilter>) {
  return {
    status: f.status,
    leadId: f.lead,
    destinationId: f.destination ? (await deps.destinations.get(f.destination)).id : undefined,
    errorCode: f.errorCode,
    since: ms(f.since),
    until: ms(f.until),
  };
}
