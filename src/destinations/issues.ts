import type { z } from "zod";
import type { ErrorDetail } from "../util/errors.ts";

/**
 * zod's issues as error details, one per problem, each with the path of the field it concerns (the
 * dashboard puts the message next to that field). An unknown key is reported by zod once for the
 * object that holds it, with the keys in a list: here it becomes one detail per key, at its own path.
 */
export function issues(err: z.ZodError, prefix: (string | number)[] = []): ErrorDetail[] {
  return err.issues.flatMap((i): ErrorDetail[] => {
    const path = [...prefix, ...i.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    if (i.code === "unrecognized_keys" && i.keys.length > 0)
      return i.keys.map((k) => ({ path: [...path, k], message: `unknown field "${k}"`, code: i.code }));
    return [{ path, message: i.message, code: i.code }];
  });
}
