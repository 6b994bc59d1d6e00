import { z } from "zod";
import { commonLeadFields, leadApiConnector, vendorId } from "./lead-api.ts";

const optionsShape = z
  .object({
    /** Sent as `source` (the Eminence API document: optional, "Website" when absent). */
    source: z.string().min(1).default("Website"),
    /** Absent: the vendor's default assistant. */
    assistantId: vendorId.optional(),
    /** Absent: the vendor's default schedule. */
    scheduleId: vendorId.optional(),
    /** Sent as `context` when the lead has none. */
    context: z.string().min(1).optional(),
  })
  .strict();
// Absent `options` is validated as `{}`, so a missing mandatory option is reported at its own path.
const options = optionsShape.prefault({} as z.input<typeof optionsShape>);

/** The Eminence Co (its API document): `POST /leads` with the id_token of the Cognito hosted-UI connect. */
export const eminenceConnector = leadApiConnector({
  name: "eminence",
  vendor: "Eminence",
  url: "https://api.theeminenceco.com/leads",
  defaultAuth: { type: "oauth2_code" },
  options,
  mandatory: ["name", "email"],
  payload: (lead, o) => ({
    ...commonLeadFields(lead),
    context: lead["context"] ?? o.context,
    source: o.source,
    scheduleId: o.scheduleId,
    assistantId: o.assistantId,
  }),
  keep: ["id", "state", "subState", "nextScheduleTime", "followup"],
});
