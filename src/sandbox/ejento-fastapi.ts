import type { EjentoUser } from "./ejento-state.ts";

/** The Ejento auth app's validation, answered as FastAPI (pydantic v2) does: 422 `detail` lists. */

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** One item of a FastAPI (pydantic v2) 422 `detail` list. */
export type Problem = { type: string; loc: Array<string | number>; msg: string; input: unknown };
export const P = (
  type: string,
  loc: Array<string | number>,
  msg: string,
  input: unknown = null,
): Problem => ({
  type,
  loc,
  msg,
  input,
});
export const missing = (...loc: Array<string | number>): Problem => P("missing", loc, "Field required");
export const publicUser = (u: EjentoUser) => {
  const { email, is_active, is_superuser, full_name, id } = u;
  return { email, is_active, is_superuser, full_name, id };
};

/** FastAPI-like 422 items for a body that is not a JSON object. */
export function bodyProblem(reason: "content-type" | "invalid-json" | "not-object", raw: string): Problem[] {
  if (reason === "invalid-json") return [P("json_invalid", ["body", 0], "JSON decode error", {})];
  const msg = "Input should be a valid dictionary or object to extract fields from";
  return [P("model_attributes_type", ["body"], msg, raw)];
}

/** Validates the user fields of signup (email + password required) or update (all optional). */
export function userFields(b: Record<string, unknown>, update: boolean) {
  const problems: Problem[] = [];
  const fields: Partial<EjentoUser> = {};
  for (const [k, min, max] of [
    ["email", 3, 255],
    ["password", 8, 40],
  ] as const) {
    const v = b[k];
    const loc = ["body", k];
    if (v === undefined || v === null) {
      if (!update) problems.push(missing(...loc));
    } else if (typeof v !== "string")
      problems.push(P("string_type", loc, "Input should be a valid string", v));
    else if (k === "email" && !EMAIL_RE.test(v))
      problems.push(P("value_error", loc, "value is not a valid email address", v));
    else if (v.length < min)
      problems.push(P("string_too_short", loc, `String should have at least ${min} characters`, v));
    else if (v.length > max)
      problems.push(P("string_too_long", loc, `String should have at most ${max} characters`, v));
    else fields[k] = v;
  }
  if (b.full_name !== undefined && b.full_name !== null && typeof b.full_name !== "string")
    problems.push(P("string_type", ["body", "full_name"], "Input should be a valid string", b.full_name));
  else if (b.full_name !== undefined) fields.full_name = b.full_name;
  for (const k of update ? (["is_active", "is_superuser"] as const) : []) {
    const v = b[k];
    if (v !== undefined && typeof v !== "boolean")
      problems.push(P("bool_parsing", ["body", k], "Input should be a valid boolean", v));
    else if (v !== undefined) fields[k] = v;
  }
  return { problems, fields };
}
