import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { SCOPES } from "../store/keys-repo.ts";
import { notFound } from "../util/errors.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { json } from "./openapi.ts";

const createSchema = z
  .object({
    name: z.string().trim().min(1).max(100).describe("What the key is for: a form, a script, a person"),
    scopes: z
      .array(z.enum(SCOPES))
      .min(1)
      .max(SCOPES.length)
      .default(["ingest"])
      .describe("`ingest` sends leads; `admin` may do everything"),
  })
  .strict();

const keySchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe("The key's first 7 characters: enough to recognise it"),
  scopes: z.array(z.string()),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().describe("Recorded at most once a minute per process"),
  revoked: z.boolean(),
  revokedAt: z.string().nullable(),
  current: z.boolean().describe("The key this request was sent with"),
});
const keyExample = {
  id: "01JTX4KEY001",
  name: "website-form",
  prefix: "lp_Ab12",
  scopes: ["ingest"],
  createdAt: "2026-05-04T09:30:00.000Z",
  lastUsedAt: "2026-05-04T10:02:00.000Z",
  revoked: false,
  revokedAt: null,
  current: false,
};

/** API keys (`POST/GET /v1/keys`, `DELETE /v1/keys/:id`): the `admin` scope. */
export function keyRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ["keys"];
  app.get(
    "/v1/keys",
    {
      schema: {
        tags,
        summary: "Every API key (never the key itself: its prefix), oldest first",
        response: {
          200: json("The keys", z.object({ data: z.array(keySchema) }), { data: [keyExample] }),
        },
      },
    },
    async (req) => ({
      data: (await deps.keys.list()).map((k) => ({ ...k, current: k.id === req.apiKeyId })),
    }),
  );
  app.post(
    "/v1/keys",
    {
      schema: {
        tags,
        summary: "Create an API key: the key is in this answer only, never shown again",
        body: doc(createSchema),
        response: {
          201: json("Created: keep `key` now", keySchema.extend({ key: z.string() }), {
            ...keyExample,
            lastUsedAt: null,
            key: "lp_Ab12cD34eF56gH78iJ90kL12mN34oP56",
          }),
        },
      },
    },
    async (req, reply) => {
      const body = parseInput(createSchema, req.body);
      const created = await deps.keys.create(body.name, body.scopes);
      deps.log.info({ key: created.id, name: created.name, scopes: created.scopes }, "API key created");
      return reply
        .code(201)
        .header("cache-control", "no-store")
        .send({ ...created, current: false });
    },
  );
  app.delete(
    "/v1/keys/:id",
    {
      schema: {
        tags,
        summary: "Revoke an API key: every process refuses it from the next request on",
        description:
          "The key stays listed as revoked. A key from leadpush.config.yaml is set again (not revoked) " +
          "at the next start: remove it from the file too.",
        response: {
          200: json("Revoked", keySchema, {
            ...keyExample,
            revoked: true,
            revokedAt: "2026-05-04T10:05:00.000Z",
          }),
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      if (!(await deps.keys.revoke(id))) throw notFound("API key", id);
      const k = (await deps.keys.find(id))[0];
      if (!k) throw notFound("API key", id);
      deps.log.info({ key: k.id, name: k.name }, "API key revoked");
      return { ...k, current: k.id === req.apiKeyId };
    },
  );
}
