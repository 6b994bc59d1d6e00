import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { compileExpression, ExpressionError } from "../connectors/expression.ts";
import { compileFilter, compileMapping, ExpressionFailure } from "../connectors/mapping.ts";
import { destinationFormSchemas } from "../destinations/form-schemas.ts";
import { AppError, type ErrorDetail } from "../util/errors.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { json } from "./openapi.ts";
import { dryRun, dryRunResultSchema, TEST_LEAD_ID, testLead, testLeadFields } from "./dry-run.ts";

/** The error shape of a 4xx answer (`details` may carry more than these fields). */
const errorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(
      z.looseObject({
        path: z.array(z.union([z.string(), z.number()])),
        message: z.string(),
        code: z.string().optional(),
        position: z.number().int().optional().describe("Offset in a JSONata expression"),
      }),
    ),
  }),
});
const errors = { 400: doc(errorSchema), 404: doc(errorSchema) };

/** One expression, or one per payload field (a mapping), each bounded like a destination's. */
const expressionText = z.string().max(100_000);
const previewSchema = z
  .object({
    expression: z
      .union([expressionText, z.record(z.string().max(200), expressionText)])
      .describe("JSONata: a filter, or a mapping (one expression, or one per payload field)"),
    kind: z.enum(["filter", "mapping"]),
    ...testLeadFields,
  })
  .strict();

const previewResultSchema = z.object({
  ok: z.boolean(),
  result: z.unknown().optional().describe("What the expression gave (absent: undefined)"),
  matches: z.boolean().optional().describe("A filter: whether the lead would go to the destination"),
  error: z
    .object({
      code: z.string().describe("`expression_error` (does not compile, or fails) or the limit hit"),
      message: z.string(),
      path: z
        .array(z.union([z.string(), z.number()]))
        .describe('["filter"], ["mapping"] or ["mapping", field]'),
      position: z.number().int().optional().describe("Offset in the expression where JSONata saw the error"),
    })
    .optional(),
});

const unsavedTestSchema = z
  .object({
    destination: z
      .looseObject({})
      .describe("A destination body as POST /v1/destinations takes it (or a PATCH over `id`)"),
    id: z
      .string()
      .optional()
      .describe('A saved destination (id or name) the body is merged over: "[redacted]" keeps its secrets'),
    ...testLeadFields,
    send: z.boolean().default(false).describe("Really send the test lead and return the client's answer"),
  })
  .strict();

/** The form tools of the dashboard: the schemas forms are built from, expression previews, unsaved tests. */
export function destinationToolRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ["destinations"];
  app.get(
    "/v1/schemas/destinations",
    {
      schema: {
        tags,
        summary:
          "The schemas destinations are validated with, as JSON Schema: common fields, connectors, auth types",
        response: {
          200: json(
            "Common fields, each connector's fields and auth types, each auth type's fields (JSON Schema)",
            z.object({
              common: z.record(z.string(), z.unknown()),
              connectors: z.array(z.looseObject({ name: z.string(), secretFields: z.array(z.string()) })),
              authTypes: z.array(z.looseObject({ type: z.string(), secretFields: z.array(z.string()) })),
            }),
            {
              common: { type: "object", properties: { name: { type: "string" } } },
              connectors: [{ name: "http", secretFields: [], authTypes: ["none", "basic", "bearer"] }],
              authTypes: [
                {
                  type: "basic",
                  secretFields: ["password"],
                  schema: { type: "object", properties: { username: { type: "string" } } },
                },
              ],
            },
          ),
        },
      },
    },
    () => destinationFormSchemas(),
  );

  app.post(
    "/v1/expressions/preview",
    {
      schema: {
        tags,
        summary: "Evaluate a filter or mapping on a lead with the bounded evaluator deliveries use",
        description:
          "A wrong expression is an answer, not a request error: `ok: false` with the error's code, " +
          "message and position. The lead is `lead`, the stored lead `leadId`, or the sample lead.",
        body: doc(previewSchema),
        response: {
          200: json("What the expression gives for the lead, or its error", previewResultSchema, {
            ok: false,
            error: {
              code: "expression_error",
              message: 'Expected ")", got end of expression',
              path: ["filter"],
              position: 14,
            },
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const body = parseInput(previewSchema, req.body);
      const lead = (await testLead(deps, body)) as unknown as Record<string, unknown>;
      return preview(body.kind, body.expression, lead);
    },
  );

  app.post(
    "/v1/destinations/test",
    {
      schema: {
        tags,
        summary: "Dry run (or test send) of a destination that is not saved: the Test button of a form",
        description:
          "Validated as a save is (400 `invalid_destination` with a path per problem), never stored. " +
          "The auth handshake is real and keeps nothing; the push is only recorded unless `send`. " +
          "Nothing is stored as a delivery; secrets in the answer are redacted.",
        body: doc(unsavedTestSchema),
        response: {
          200: json("The handshake's result and every exchange, redacted", dryRunResultSchema, {
            destination: "crm",
            sent: false,
            auth: { type: "basic", ok: true },
            outcome: { kind: "dry_run" },
            requests: [
              {
                step: "push",
                method: "POST",
                url: "https://crm.example.com/api/leads",
                requestHeaders: { authorization: "[redacted]" },
              },
            ],
            durationMs: 12,
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const body = parseInput(unsavedTestSchema, req.body);
      const lead = await testLead(deps, body);
      const destination = await deps.destinations.draft(body.destination, body.id);
      return dryRun(deps, destination, { lead, send: body.send, credentials: deps.credentials.detached() });
    },
  );
}

async function preview(
  kind: "filter" | "mapping",
  expression: string | Record<string, string>,
  lead: Record<string, unknown>,
): Promise<z.infer<typeof previewResultSchema>> {
  try {
    if (kind === "filter") {
      if (typeof expression !== "string")
        throw new AppError(400, "invalid_request", "a filter is one expression", [
          { path: ["expression"], message: "expected a string" },
        ]);
      if (expression.trim() === "") return { ok: true, matches: true };
      compileFilter(expression); // a syntax error as a destination's save reports it (400 details)
      const result = await compileExpression(expression).evaluate(lead);
      return { ok: true, result, matches: Boolean(result) };
    }
    const result = await compileMapping(expression, () => undefined).render({ ...lead, id: TEST_LEAD_ID });
    return { ok: true, result };
  } catch (err) {
    if (err instanceof ExpressionFailure) return failed(err.reason, err.message, err.path, err.position);
    if (err instanceof ExpressionError) return failed(err.code, err.message, ["filter"], err.position);
    if (err instanceof AppError && (err.code === "invalid_mapping" || err.code === "invalid_filter")) {
      const d = err.details[0] as ErrorDetail;
      return failed("expression_error", d.message, d.path, d.position);
    }
    throw err;
  }
}

const failed = (code: string, message: string, path: (string | number)[], position: number | undefined) => ({
  ok: false,
  error: { code, message, path, ...(position !== undefined ? { position } : {}) },
});
