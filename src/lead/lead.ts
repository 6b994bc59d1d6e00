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

const text = (max: number) => z.string().trim().min(1).max(max);
const idLike = z.union([z.string().trim().min(1).max(200), z.number()]).transform((v) => String(v));

/** The body of `POST /v1/leads`: one source for validation, types and the OpenAPI document. */
export const leadInputSchema = z
  .object({
    name: text(200).describe("Required. The lead's (first) name."),
    lastName: text(200).optional(),
    email: z.string().trim().toLowerCase().pipe(z.email()).optional().describe("Trimmed and lower-cased."),
    phone: z
      .union([z.string(), z.number()])
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

export function parseLead(body: unknown, defaultRegion: string): LeadParse {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return {
      ok: false,
      details: [{ path: [], message: "a lead must be a JSON object", code: "invalid_type" }],
    };
  }
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
