import { z } from "zod";
import { AUTH_STRATEGIES } from "../auth/registry.ts";
import { CONNECTORS } from "../connectors/registry.ts";
import { destinationCommonSchema } from "./model.ts";

type JsonSchema = Record<string, unknown>;

/** A zod schema as JSON Schema, as the input it accepts (defaults shown, optional where defaulted). */
function jsonSchema(schema: z.ZodType): JsonSchema {
  const s = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  delete s.$schema;
  return s;
}

/**
 * What a destination form is generated from, built from the very schemas `validateDestination`
 * uses: the common fields; per connector its own fields, which of them are secret and which auth
 * types it takes; per auth type its fields (defaults and `.describe()` help included) and secrets.
 * Built once (z.toJSONSchema of every schema takes ~20 ms), again after a registration.
 */
export function destinationFormSchemas() {
  // Registries only grow (a name is never replaced): their sizes say whether the last build holds.
  const key = `${Object.keys(CONNECTORS).length}/${Object.keys(AUTH_STRATEGIES).length}`;
  if (built?.key !== key) built = { key, schemas: build() };
  return built.schemas;
}

let built: { key: string; schemas: ReturnType<typeof build> } | undefined;

function build() {
  const authTypes = Object.values(AUTH_STRATEGIES).map((s) => ({
    type: s.type,
    schema: jsonSchema(s.schema),
    secretFields: [...s.secretFields],
    /** A person connects it in a browser (OAuth authorization code) before the first push. */
    connect: s.connect !== undefined,
  }));
  const connectors = Object.values(CONNECTORS).map((c) => ({
    name: c.name,
    schema: jsonSchema(c.schema),
    secretFields: [...c.secretFields],
    defaultAuth: c.defaultAuth,
    /** The auth types it accepts; empty when its auth is built from its own fields (no `auth`). */
    authTypes: c.authFrom ? [] : [...(c.authTypes ?? authTypes.map((a) => a.type))],
    authFromFields: c.authFrom !== undefined,
  }));
  return { common: jsonSchema(destinationCommonSchema), connectors, authTypes };
}
