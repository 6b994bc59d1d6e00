import { z } from "zod";
import type { AuthStrategy } from "./strategy.ts";

const schema = z
  .object({ type: z.literal("basic"), username: z.string().min(1), password: z.string() })
  .strict();

export function basicHeader(username: string, password: string): string {
  return "Basic " + Buffer.from(`${username}:${password}`, "utf8").toString("base64");
}

/** HTTP Basic on every push. */
export const basicAuth: AuthStrategy<z.infer<typeof schema>> = {
  type: "basic",
  schema,
  secretFields: ["password"],
  apply(req, config) {
    req.headers["authorization"] = basicHeader(config.username, config.password);
  },
};
