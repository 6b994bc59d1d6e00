import { z } from "zod";
import { commonLeadFields, leadApiConnector, vendorId } from "./lead-api.ts";

const optionsShape = z
  .object({
    /** Your assistant's id (mandatory in the 7targets API document). */
    assistantId: vendorId,
    /** Lead type (mandatory in the 7targets API document). */
    type: z.string().min(1).default("SALES"),
    /** A schedule id; absent: the vendor's default schedule. */
    scheduleId: vendorId.optional(),
    /** One of the sources set up at 7targets (mandatory in its API document); not the lead's own `source`. */
    source: z.string().min(1).default("Website"),
    /** Sent as `context` when the lead has none ("Assistant will write message using this"). */
    context: z.string().min(1).optional(),
  })
  .strict();
// Absent `options` is validated as `{}`, so a missing mandatory option is reported at its own path.
const options = optionsShape.prefault({} as z.input<typeof optionsShape>);

/** 7targets AI Sales Assistant (its API document): `POST /leads` with the Cognito IdToken as bearer. */
export const sevenTargetsConnector = leadApiConnector({
  name: "seventargets",
  vendor: "7targets",
  url: "https://api.7targets.com/leads",
  defaultAuth: { type: "cognito", region: "us-east-1" },
  options,
  mandatory: ["name", "type", "source", "email", "assistantId"],
  payload: (lead, o) => ({
    ...commonLeadFields(lead),
    context: lead["context"] ?? o.context,
    type: o.type,
    source: o.source,
    scheduleId: o.scheduleId,
    assistantId: o.assistantId,
  }),
  keep: ["id", "state", "subState", "nextScheduleTime"],
});
