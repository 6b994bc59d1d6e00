import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { z } from "zod";
import type { ErrorDetail } from "../util/errors.ts";

/** The canonical lead, as stored and as handed to connectors. */
export interface Lead {
  name: string;
  lastName?: string;
  email?: string;
  phone?: string;
  city?: string;
  projectId?: string;
  source?: string;
  context?: string;
  additionalInformation?: string;
  externalId?: string;
  attributes: Record<string, unknown>;
  /** Written by enrichment connectors, keyed by destination name. */
  enrichment: Record<string, unknown>;
}

/** The largest lead, as JSON: the body limit of `POST /v1/leads` and of one CSV row. */
export const MAX_LEAD_BYTES = 1024 * 1024;
/** Objects and arrays nest at most this many levels inside `attributes` (34 in the whole lead). */
export const MAX_ATTRIBUTES_DEPTH = 32;
/** Problems listed per lead before the check stops looking. */
const MAX_PROBLEMS = 20;

const text = (max: number) => z.string().trim().min(1).max(max);
const idLike = z.union([z.string().trim().min(1).max(200), z.number()]).transform((v) => String(v));

/** The body of `POST /v1/leads`: one source for validation, types and the OpenAPI document. */
export const leadInputSchema = z
  .object({
    name: text(200).describe("Required. The lead's (first) name."),
    lastName: text(200).optional(),
    email: z
      .string()
      .trim()
      .toLowerCase()
      .max(320)
      .pipe(z.email())
      .optional()
      .describe("Trimmed and lower-cased."),
    phone: z
      .union([z.string().max(64), z.number()])
      .transform((v) => String(v).trim())
      .optional()
      .describe("Normalized to E.164; numbers without a country code use the default region (IN)."),
    city: text(200).optional(),
    projectId: idLike.optional(),
    source: text(200).optional(),
    context: z.string().max(10_000).optional(),
    additionalInformation: z.string().max(10_000).optional(),
    externalId: idLike.optional(),
    attributes: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Anything else; unknown top-level fields land here."),
  })
  .meta({
    description:
      "A lead. At least one of email / phone is required. Aliases accepted: mobile_number, mobile → phone; " +
      "project_id → projectId; additionalInformationLine → additionalInformation; last_name → lastName; " +
      "external_id → externalId. Unknown top-level fields are kept under attributes.",
  });

type LeadInput = z.infer<typeof leadInputSchema>;

const ALIASES: Record<string, keyof LeadInput> = {
  mobile_number: "phone",
  mobile: "phone",
  project_id: "projectId",
  additionalInformationLine: "additionalInformation",
  additional_information: "additionalInformation",
  last_name: "lastName",
  external_id: "externalId",
};
const KNOWN = new Set<string>(Object.keys(leadInputSchema.shape));

export type LeadParse = { ok: true; lead: Lead } | { ok: false; details: ErrorDetail[] };

/**
 * Checks the raw input before anything recursive touches it (zod, JSON.stringify, JSONata): no
 * object or array nested deeper than `MAX_ATTRIBUTES_DEPTH` levels inside `attributes` (the
 * whole lead: two more), and no NUL character (U+0000) in any string or key — Postgres cannot
 * store it in text, and no lead source means it. Iterative, so a body nested 20 000 levels deep
 * (which JSON.parse accepts) costs one pass and no stack.
 */
export function checkLeadShape(body: object): ErrorDetail[] {
  const maxDepth = MAX_ATTRIBUTES_DEPTH + 2;
  interface Node {
    value: unknown;
    key: string | number | undefined;
    parent: Node | undefined;
    depth: number;
  }
  const pathOf = (node: Node): (string | number)[] => {
    const path: (string | number)[] = [];
    for (let n: Node | undefined = node; n?.key !== undefined; n = n.parent) path.push(n.key);
    return path.reverse();
  };
  const problems: ErrorDetail[] = [];
  const stack: Node[] = [{ value: body, key: undefined, parent: undefined, depth: 1 }];
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const node = stack.pop() as Node;
    const { value } = node;
    if (typeof value === "string") {
      if (value.includes("\u0000")) {
        problems.push({
          path: pathOf(node),
          message: "text may not contain the NUL character (\\u0000)",
          code: "nul_character",
        });
      }
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (node.depth > maxDepth) {
      problems.push({
        path: pathOf(node),
        message: `objects and arrays may nest at most ${MAX_ATTRIBUTES_DEPTH} levels deep inside attributes`,
        code: "too_deep",
      });
      continue;
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        stack.push({ value: value[i], key: i, parent: node, depth: node.depth + 1 });
      }
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const child: Node = {
        value: (value as Record<string, unknown>)[key],
        key,
        parent: node,
        depth: node.depth + 1,
      };
      if (key.includes("\u0000")) {
        problems.push({
          path: pathOf(child),
          message: "a key may not contain the NUL character (\\u0000)",
          code: "nul_character",
        });
        continue;
      }
      stack.push(child);
    }
  }
  return problems;
}

export function parseLead(body: unknown, defaultRegion: string): LeadParse {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return {
      ok: false,
      details: [{ path: [], message: "a lead must be a JSON object", code: "invalid_type" }],
    };
  }
  const shape = checkLeadShape(body);
  if (shape.length > 0) return { ok: false, details: shape };
  const canonical: Record<string, unknown> = {};
  let extra: Record<string, unknown> | undefined;
  for (const key in body) {
    if (!Object.hasOwn(body, key)) continue;
    const value = (body as Record<string, unknown>)[key];
    const target = ALIASES[key] ?? key;
    if (KNOWN.has(target)) {
      // Empty canonical fields count as absent (the first non-empty spelling wins).
      if (canonical[target] === undefined && value !== null && value !== "") canonical[target] = value;
    } else {
      (extra ??= {})[key] = value;
    }
  }
  const parsed = leadInputSchema.safeParse(canonical);
  if (!parsed.success) {
    return {
      ok: false,
      details: parsed.error.issues.map((i) => ({
        path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
        message: i.message,
        code: i.code,
      })),
    };
  }
  const input = parsed.data;
  const details: ErrorDetail[] = [];
  let phone: string | undefined;
  if (input.phone !== undefined && input.phone !== "") {
    const number = parsePhoneNumberFromString(input.phone, defaultRegion as CountryCode);
    if (!number || !number.isPossible()) {
      details.push({
        path: ["phone"],
        message: `"${input.phone}" is not a possible phone number`,
        code: "invalid_phone",
      });
    } else {
      phone = number.number;
    }
  }
  if (input.email === undefined && phone === undefined && details.length === 0) {
    details.push({
      path: ["email"],
      message: "at least one of email or phone is required",
      code: "missing_contact",
    });
  }
  if (details.length > 0) return { ok: false, details };
  const lead = { name: input.name } as Lead;
  for (const key in input) {
    if (key === "name" || key === "phone" || key === "attributes") continue;
    const value = input[key as keyof LeadInput];
    if (value !== undefined) (lead as unknown as Record<string, unknown>)[key] = value;
  }
  lead.attributes =
    extra && input.attributes ? { ...extra, ...input.attributes } : (input.attributes ?? extra ?? {});
  lead.enrichment = {};
  if (phone !== undefined) lead.phone = phone;
  return { ok: true, lead };
}

/** Fields that identify a person: removed by `DELETE /v1/leads/:id`. */
export function eraseLead(lead: Lead): Lead {
  return {
    name: "[erased]",
    attributes: {},
    enrichment: {},
    ...(lead.source ? { source: lead.source } : {}),
  };
}
