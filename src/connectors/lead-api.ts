import { z } from "zod";
import { newRequest } from "../http/http-client.ts";
import type { Connector } from "./connector.ts";
import { classify, renderPayload, sendWithAuth } from "./push.ts";

/**
 * The shape both Cognito-backed vendors of the 7targets and Eminence API documents share: `POST /leads` with
 * a bearer, JSON lead fields, 201 with the created lead. A preset is data: defaults, options, the payload
 * mapping, the fields the document marks mandatory and the answer's fields worth keeping.
 */
export interface LeadApiPreset<O> {
  /** Connector name (contract). */
  name: string;
  /** The vendor, as messages name it. */
  vendor: string;
  /** Default `url`. */
  url: string;
  defaultAuth: { type: string } & Record<string, unknown>;
  /** The `options` object of a destination; its defaults fill the payload. */
  options: z.ZodType<O>;
  /** Payload fields the document marks mandatory: a lead that lacks one fails (`missing_field`). */
  mandatory: readonly string[];
  /** The default mapping: canonical lead + options → the vendor's fields. */
  payload(lead: Record<string, unknown>, options: O): Record<string, unknown>;
  /** Fields of the 201 answer stored on the delivery (`deliveries[].response`). */
  keep: readonly string[];
}

export interface LeadApiConfig<O> {
  url: string;
  options: O;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const isEmpty = (v: unknown) => v === undefined || v === null || (typeof v === "string" && v.trim() === "");

/** The vendor's own words about a refusal (`{"message": …}`), one short line. */
function vendorMessage(body: unknown): string | undefined {
  const said = isObject(body) ? (body["message"] ?? body["Message"] ?? body["error"]) : undefined;
  return typeof said === "string" && said.trim() ? said.replace(/\s+/g, " ").trim().slice(0, 200) : undefined;
}

/** The canonical lead fields both documents share. */
export function commonLeadFields(lead: Record<string, unknown>): Record<string, unknown> {
  return {
    name: lead["name"],
    lastName: lead["lastName"],
    context: lead["context"],
    additionalInformationLine: lead["additionalInformation"],
    email: lead["email"],
    phone: lead["phone"],
  };
}

export function leadApiConnector<O>(preset: LeadApiPreset<O>): Connector<LeadApiConfig<O>> {
  const schema = z
    .object({
      /** Where leads are pushed. */
      url: z.url({ protocol: /^https?$/ }).default(preset.url),
      /** Vendor options: defaults of the payload. */
      options: preset.options,
    })
    .strict() as unknown as z.ZodType<LeadApiConfig<O>>;
  const base = (input: Record<string, unknown>, cfg: LeadApiConfig<O>) => preset.payload(input, cfg.options);
  return {
    name: preset.name,
    schema,
    secretFields: [],
    defaultAuth: preset.defaultAuth,
    defaultPayload: base,
    async deliver(ctx) {
      const cfg = ctx.destination.config;
      const input = { ...ctx.lead, id: ctx.leadId };
      // A destination `mapping` overrides the preset's fields one by one; a field mapped to null is left out.
      const mapped = await renderPayload(ctx.mapping, input);
      if (!mapped.ok) return mapped.outcome;
      const rendered = mapped.payload;
      const merged = isObject(rendered) ? { ...base(input, cfg), ...rendered } : rendered;
      const payload = isObject(merged)
        ? Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined && v !== null))
        : merged;
      const missing = preset.mandatory.filter((f) => !isObject(payload) || isEmpty(payload[f]));
      if (missing.length > 0) {
        return {
          kind: "failed",
          code: "missing_field",
          message: `${preset.vendor} requires ${missing.join(", ")}; this lead has none`,
        };
      }
      const sent = await sendWithAuth(ctx, () => {
        const req = newRequest("POST", cfg.url);
        req.headers["accept"] = "application/json";
        req.headers["idempotency-key"] = ctx.deliveryId;
        req.contentType = "json";
        req.body = payload;
        return req;
      });
      if (!sent.ok) return sent.outcome;
      const res = sent.response;
      const body = res.json();
      const outcome = classify(res);
      if (outcome.kind === "delivered") {
        const result = isObject(body)
          ? Object.fromEntries(preset.keep.filter((k) => body[k] !== undefined).map((k) => [k, body[k]]))
          : undefined;
        const id = isObject(body) ? body["id"] : undefined;
        return {
          kind: "delivered",
          status: res.status,
          ...(typeof id === "string" || typeof id === "number" ? { externalId: String(id) } : {}),
          ...(result && Object.keys(result).length > 0 ? { result } : {}),
        };
      }
      const said = vendorMessage(body);
      if ("message" in outcome)
        outcome.message = `${preset.vendor} answered ${res.status}${said ? `: ${said}` : ""}`;
      return outcome;
    },
  };
}

/** An id as the documents show them: a number or a string. */
export const vendorId = z.union([z.string().min(1), z.number().int()]);
