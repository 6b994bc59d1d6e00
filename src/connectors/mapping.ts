import jsonata from "jsonata";
import { AppError } from "../util/errors.ts";

/** A compiled payload mapping: renders the body sent to a client from the lead. */
export interface Mapping {
  render(input: Record<string, unknown>): Promise<unknown>;
}

export type MappingSpec = string | Record<string, string>;

function compile(expr: string, path: (string | number)[]): jsonata.Expression {
  try {
    return jsonata(expr);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    throw new AppError(
      400,
      "invalid_mapping",
      `JSONata expression does not compile: ${e.message ?? String(err)}`,
      [
        {
          path,
          message: `${e.message ?? "syntax error"}${e.position !== undefined ? ` at ${e.position}` : ""}`,
        },
      ],
    );
  }
}

/**
 * `mapping` is a JSONata expression, or an object whose values are JSONata expressions (one per
 * payload field; fields evaluating to undefined are left out). Compiled once per destination version.
 */
export function compileMapping(
  spec: MappingSpec | undefined,
  fallback: (input: Record<string, unknown>) => unknown,
  path: (string | number)[] = ["mapping"],
): Mapping {
  if (spec === undefined) return { render: (input) => Promise.resolve(fallback(input)) };
  if (typeof spec === "string") {
    const expr = compile(spec, path);
    return { render: (input) => expr.evaluate(input) };
  }
  const fields = Object.entries(spec).map(([k, v]) => [k, compile(v, [...path, k])] as const);
  return {
    async render(input) {
      const out: Record<string, unknown> = {};
      for (const [k, expr] of fields) {
        const v: unknown = await expr.evaluate(input);
        if (v !== undefined) out[k] = v;
      }
      return out;
    },
  };
}

/** A JSONata boolean filter: which leads a destination gets. */
export interface Filter {
  /** No filter: every lead matches (callers may skip `matches`, which JSONata makes async). */
  readonly always?: boolean;
  matches(input: Record<string, unknown>): Promise<boolean>;
}

export function compileFilter(spec: string | undefined): Filter {
  if (spec === undefined || spec.trim() === "") return { always: true, matches: () => Promise.resolve(true) };
  const expr = compile(spec, ["filter"]);
  return {
    async matches(input) {
      try {
        return Boolean(await expr.evaluate(input));
      } catch {
        return false;
      }
    },
  };
}
