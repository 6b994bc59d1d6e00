import { z } from "zod";
import type { AuthStrategy } from "./strategy.ts";

const schema = z.object({ type: z.literal("none") }).strict();

/** The Housing lead-push document's "No Authentication Handler": a plain POST of the payload. */
export const noneAuth: AuthStrategy<z.infer<typeof schema>> = {
  type: "none",
  schema,
  secretFields: [],
  apply: () => undefined,
};
