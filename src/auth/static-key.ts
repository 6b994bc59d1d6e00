import { z } from "zod";
import type { AuthStrategy } from "./strategy.ts";

const schema = z
  .object({
    type: z.literal("static_key"),
    /** The key fields, e.g. the Housing lead-push document's `{ "vendor": "…", "vendory_key": "…" }`. */
    fields: z
      .record(z.string().min(1), z.string())
      .refine((f) => Object.keys(f).length > 0, "at least one field"),
    /**
     * Fields sent the same way that are not secret (the Housing lead-push document's `vendor`, the vendor's
     * name): stored in plain, shown in API answers and left alone in the attempt log. In `fields`, every
     * value is sealed and hidden wherever it appears — a vendor name there blanks each mention of it.
     */
    publicFields: z.record(z.string().min(1), z.string()).default({}),
    /**
     * Where the fields go: `body` (default: form-encoded with the lead, as the Housing lead-push document
     * shows), `header` or `query`.
     */
    in: z.enum(["body", "header", "query"]).default("body"),
  })
  .strict();

/** The Housing lead-push document's "Static Key Based Auth Handler": fixed key fields sent on every push. */
export const staticKeyAuth: AuthStrategy<z.infer<typeof schema>> = {
  type: "static_key",
  schema,
  secretFields: ["fields"],
  apply(req, config) {
    for (const [k, v] of Object.entries({ ...config.publicFields, ...config.fields })) {
      if (config.in === "header") req.headers[k.toLowerCase()] = v;
      else if (config.in === "query") req.query[k] = v;
      else {
        req.contentType = "form";
        req.body = { ...(isObject(req.body) ? req.body : { payload: req.body }), [k]: v };
      }
    }
  },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
