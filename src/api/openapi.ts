import type { RouteOptions } from "fastify";
import { z } from "zod";
import { AUTH_STRATEGIES } from "../auth/registry.ts";
import { DELIVERY_STATUSES } from "../domain/status.ts";
import { doc } from "./deps.ts";

// What /docs (the OpenAPI document) says every operation answers. Response schemas document; they
// do not filter: the server's serializer is plain JSON.stringify (server.ts), so a field a schema
// leaves out is still sent. Rule (test/openapi.test.ts): every operation has a 2xx response with a
// schema and an example, and the shared error shape for 4xx (added to every route here).

type JsonSchema = Record<string, unknown>;

/** `{"error": {"code", "message", "details"}}`: every 4xx and 5xx answer. */
export const errorResponse: JsonSchema = {
  description:
    'An error: {"error": {"code", "message", "details"}}. `code` is stable (README: error codes); `details[].path` points at the input at fault.',
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message", "details"],
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        details: {
          type: "array",
          items: {
            type: "object",
            properties: {
              path: { type: "array", items: { oneOf: [{ type: "string" }, { type: "integer" }] } },
              message: { type: "string" },
              code: { type: "string" },
            },
          },
        },
      },
    },
  },
  examples: [
    {
      error: {
        code: "invalid_request",
        message: "the request is not valid",
        details: [{ path: ["name"], message: "Invalid input: expected string", code: "invalid_type" }],
      },
    },
  ],
};

/** A JSON response: its schema (zod or JSON Schema), what it means, and one example. */
export function json(description: string, schema: z.ZodType | JsonSchema, example: unknown): JsonSchema {
  const s = schema instanceof z.ZodType ? doc(schema) : structuredClone(schema);
  delete s.$schema;
  return { ...s, description, examples: [example] };
}

/** A response with no body (204). */
export const noContent = (description: string): JsonSchema => ({ description, type: "null" });

/** A response that is not JSON (an HTML page, a file, Prometheus text). */
export function other(description: string, contentType: string, example: string): JsonSchema {
  return { description, content: { [contentType]: { schema: { type: "string" }, example } } };
}

/**
 * Fastify `onRoute` hook: a documented route answers the shared error shape for any 4xx and 5xx
 * it has no schema of its own for.
 */
export function addErrorResponses(route: RouteOptions): void {
  const schema = route.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
  if (!schema || schema.hide) return;
  const response = (schema.response ??= {});
  const codes = Object.keys(response);
  if (!codes.some((c) => c.startsWith("4"))) response["4XX"] = errorResponse;
  if (!codes.some((c) => c.startsWith("5"))) response["5XX"] = errorResponse;
}

// ---------- shared shapes and examples ----------

const T = "2026-05-04T09:30:00.000Z";
const counts = z.object(Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, z.number().int()])));

export const exchangeSchema = z
  .looseObject({
    step: z.string().describe("`auth` steps (handshakes), then `push`"),
    method: z.string(),
    url: z.string(),
    requestHeaders: z.record(z.string(), z.string()),
    requestBody: z.string().optional(),
    status: z.number().int().optional(),
    responseHeaders: z.record(z.string(), z.string()).optional(),
    responseBody: z.string().optional().describe("An excerpt (4 KB), redacted"),
    durationMs: z.number(),
    error: z.looseObject({ code: z.string(), message: z.string() }).optional(),
  })
  .describe("One HTTP exchange, secrets redacted");
export const exchangeExample = {
  step: "push",
  method: "POST",
  url: "https://crm.example.com/api/leads",
  requestHeaders: { authorization: "[redacted]", "content-type": "application/json" },
  requestBody: '{"name":"Asha","email":"asha@example.com"}',
  status: 201,
  responseHeaders: { "content-type": "application/json" },
  responseBody: '{"id":"c-991"}',
  durationMs: 84,
};

const attemptSchema = z.looseObject({
  number: z.number().int(),
  at: z.string(),
  durationMs: z.number().nullable(),
  outcome: z.string(),
  request: z.looseObject({ method: z.string(), url: z.string() }).nullable(),
  responseStatus: z.number().int().nullable(),
  responseExcerpt: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string().nullable() }).nullable(),
  exchanges: z.array(exchangeSchema),
});

export const deliverySchema = z.looseObject({
  id: z.string(),
  leadId: z.string(),
  destinationId: z.string(),
  destination: z.string().nullable(),
  status: z.enum(DELIVERY_STATUSES),
  attemptCount: z.number().int(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
  lastStatus: z.number().int().nullable(),
  externalId: z.string().nullable(),
  response: z.unknown().describe("What the client answered (redacted), when kept"),
  createdAt: z.string(),
  updatedAt: z.string(),
  deliveredAt: z.string().nullable(),
  attempts: z.array(attemptSchema).optional().describe("On reads of one delivery or lead"),
});
export const deliveryExample = {
  id: "01JTX0Q5M4D1",
  leadId: "01JTX0Q5KZ7P",
  destinationId: "01JTWZZ3C8AA",
  destination: "crm",
  status: "delivered",
  attemptCount: 1,
  nextAttemptAt: null,
  lastError: null,
  lastStatus: 201,
  externalId: "c-991",
  response: { id: "c-991" },
  upstream: null,
  enrichmentMissing: null,
  batchId: null,
  createdAt: T,
  updatedAt: T,
  deliveredAt: T,
};

export const leadSchema = z.looseObject({
  id: z.string(),
  createdAt: z.string(),
  erased: z.boolean(),
  duplicateOf: z.string().nullable(),
  name: z.string().optional(),
  email: z.string().optional(),
  phone: z.string().optional(),
});
export const leadExample = {
  id: "01JTX0Q5KZ7P",
  createdAt: T,
  erased: false,
  duplicateOf: null,
  name: "Asha",
  lastName: "Rao",
  email: "asha@example.com",
  phone: "+919123456789",
  source: "website",
};

export const destinationSchema = z
  .looseObject({
    id: z.string(),
    name: z.string(),
    connector: z.string(),
    enabled: z.boolean(),
    state: z.string(),
    auth: z.looseObject({ type: z.string() }).describe('Secrets read as "[redacted]"'),
    connectUrl: z.string().optional().describe("Auth types connected in a browser (oauth2_code)"),
    redirectUrl: z.string().optional(),
  })
  .describe("A destination: its configuration (secrets redacted) and state");
export const destinationExample = {
  id: "01JTWZZ3C8AA",
  name: "crm",
  connector: "http",
  enabled: true,
  state: "active",
  url: "https://crm.example.com/api/leads",
  auth: { type: "bearer", token: "[redacted]" },
  timeoutMs: 10000,
  concurrency: 16,
  paused: false,
  createdAt: T,
  updatedAt: T,
};

export const statsExample = {
  leads: 1200,
  deliveries: Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, s === "delivered" ? 1180 : 0])),
  destinations: [
    {
      id: "01JTWZZ3C8AA",
      name: "crm",
      connector: "http",
      authType: "bearer",
      enabled: true,
      state: "active",
      deliveries: Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, s === "delivered" ? 1180 : 0])),
    },
  ],
};
export { counts as countsSchema };

/** A page of a keyset-paged list. */
export const page = (item: z.ZodType) =>
  z.object({ data: z.array(item), nextCursor: z.string().nullable().describe("Pass as ?cursor= for more") });

/**
 * A destination's `auth` as a union on `type`: one member per auth strategy registered when the
 * server is built, so /docs shows each type's own fields.
 */
export function authUnionDoc(): JsonSchema {
  const members = Object.values(AUTH_STRATEGIES).map((s) => {
    const d = doc(s.schema);
    delete d.$schema;
    return { title: s.type, ...d };
  });
  return {
    description: "How leadpush authenticates with the client: pick a `type`; each type takes its own fields.",
    oneOf: members,
    discriminator: { propertyName: "type" },
  };
}
