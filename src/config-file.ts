import { existsSync, readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import { z } from "zod";
import { alertTargetSchema, type AlertTargetInput } from "./alerts/alerter.ts";
import { validateDestination } from "./destinations/model.ts";
import { SCOPES } from "./store/keys-repo.ts";
import { AppError } from "./util/errors.ts";

/** `leadpush.config.yaml`: destinations and API keys as code, applied at start (by name). */
export interface ConfigFile {
  path: string;
  destinations: Record<string, unknown>[];
  apiKeys: { name: string; scopes: (typeof SCOPES)[number][]; key: string }[];
  /** Alert targets, created or replaced by name (a secret is required here: `${ENV}`). */
  alertTargets?: AlertTargetInput[];
}

export class ConfigFileError extends Error {
  readonly code = "invalid_config_file";
}

const fileSchema = z
  .object({
    destinations: z.array(z.record(z.string(), z.unknown())).default([]),
    apiKeys: z
      .array(
        z
          .object({
            name: z.string().min(1),
            scopes: z.array(z.enum(SCOPES)).min(1),
            key: z.string().min(16, "an API key must be at least 16 characters (use ${ENV_VAR})"),
          })
          .strict(),
      )
      .default([]),
    alertTargets: z.array(alertTargetSchema.required({ secret: true })).default([]),
  })
  .strict();

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Reads and checks the config file before anything starts. `${NAME}` (or `${NAME:-default}`) in
 * any string is replaced from the environment; a missing variable is an error. Every error names
 * the file, the line, the path in it, and what was expected.
 */
export function loadConfigFile(
  path: string,
  env: Record<string, string | undefined> = process.env,
): ConfigFile | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, "utf8");
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const where = (p: (string | number)[]) => lineOf(doc, lines, p);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigFileError(
      `${path}${line ? `:${line}` : ""}: not valid YAML: ${e.message.split("\n")[0]}`,
    );
  }
  const problems: string[] = [];
  const interpolate = (value: unknown, p: (string | number)[]): unknown => {
    if (typeof value === "string") {
      // An unquoted value that is exactly one ${VAR} takes the variable's type, as YAML would
      // (numbers, booleans); quote it ("${VAR}") to keep a string, e.g. for an all-digit password.
      const node = doc.getIn(p, true);
      const whole = /^\$\{[^}]+\}$/.test(value) && isScalar(node) && node.type === "PLAIN";
      const replaced = value.replace(VAR, (_m, name: string, fallback: string | undefined) => {
        const v = env[name] ?? fallback;
        if (v === undefined)
          problems.push(`${path}${where(p)}: ${fmt(p)}: environment variable ${name} is not set`);
        return v ?? "";
      });
      if (whole && /^-?\d+(\.\d+)?$/.test(replaced)) return Number(replaced);
      if (whole && (replaced === "true" || replaced === "false")) return replaced === "true";
      return replaced;
    }
    if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...p, i]));
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...p, k])]));
    }
    return value;
  };
  const raw = interpolate(doc.toJS() ?? {}, []);
  if (problems.length > 0) throw new ConfigFileError(problems.join("\n"));
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigFileError(
      parsed.error.issues
        .map((i) => {
          const p = i.path.map((x) => (typeof x === "symbol" ? String(x) : x));
          return `${path}${where(p)}: ${fmt(p)}: ${i.message}`;
        })
        .join("\n"),
    );
  }
  const names = new Set<string>();
  parsed.data.destinations.forEach((d, i) => {
    try {
      validateDestination(d);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      for (const detail of err.details.length > 0 ? err.details : [{ path: [], message: err.message }]) {
        const p = ["destinations", i, ...detail.path];
        problems.push(`${path}${where(p)}: ${fmt(p)}: ${detail.message}`);
      }
    }
    if (typeof d.name === "string") {
      if (names.has(d.name))
        problems.push(
          `${path}${where(["destinations", i, "name"])}: destinations[${i}].name: "${d.name}" is declared twice`,
        );
      names.add(d.name);
    }
  });
  if (problems.length > 0) throw new ConfigFileError(problems.join("\n"));
  return {
    path,
    destinations: parsed.data.destinations,
    apiKeys: parsed.data.apiKeys,
    alertTargets: parsed.data.alertTargets,
  };
}

function fmt(p: (string | number)[]): string {
  return (
    p.reduce<string>((acc, x) => (typeof x === "number" ? `${acc}[${x}]` : acc ? `${acc}.${x}` : x), "") ||
    "(top level)"
  );
}

/** ":LINE" of the deepest node of `p` that exists in the document. */
function lineOf(doc: Document, lines: LineCounter, p: (string | number)[]): string {
  for (let n = p.length; n >= 0; n--) {
    const node = doc.getIn(p.slice(0, n), true);
    if (node && (isMap(node) || isSeq(node) || isScalar(node)) && node.range) {
      return `:${lines.linePos(node.range[0]).line}`;
    }
  }
  return "";
}
