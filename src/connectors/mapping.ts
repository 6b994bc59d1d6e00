import { AppError } from "../util/errors.ts";
import {
  type BoundedExpression,
  compileExpression,
  EXPRESSION_MAX_RESULT_BYTES,
  ExpressionError,
  serializedSizeUpTo,
} from "./expression.ts";

/** A compiled payload mapping: renders the body sent to a client from the lead. */
export interface Mapping {
  /** Rejects with an `ExpressionFailure` (`mapping_error`) when the mapping fails or hits a limit. */
  render(input: Record<string, unknown>): Promise<unknown>;
}

export type MappingSpec = string | Record<string, string>;

/**
 * A filter or mapping that failed on a lead: `code` says which (`filter_error`, `mapping_error`),
 * `reason` the limit hit or `expression_error` (see `expression.ts`), `path` the field.
 */
export class ExpressionFailure extends Error {
  readonly code: "mapping_error" | "filter_error";
  readonly reason: ExpressionError["code"];
  readonly path: (string | number)[];
  /** Where in the expression, when JSONata says. */
  readonly position: number | undefined;
  constructor(code: ExpressionFailure["code"], path: (string | number)[], err: ExpressionError) {
    super(`${path.join(".")}: ${err.message} [${err.code}]`, { cause: err });
    this.code = code;
    this.reason = err.code;
    this.path = path;
    this.position = err.position;
  }
}

function compile(
  expr: string,
  path: (string | number)[],
  code: "invalid_mapping" | "invalid_filter" = "invalid_mapping",
): BoundedExpression {
  try {
    return compileExpression(expr);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    throw new AppError(400, code, `JSONata expression does not compile: ${e.message ?? String(err)}`, [
      {
        path,
        message: `${e.message ?? "syntax error"}${e.position !== undefined ? ` at ${e.position}` : ""}`,
        code: "expression_error",
        ...(typeof e.position === "number" ? { position: e.position } : {}),
      },
    ]);
  }
}

async function run(
  expr: BoundedExpression,
  input: unknown,
  code: ExpressionFailure["code"],
  path: (string | number)[],
): Promise<unknown> {
  try {
    return await expr.evaluate(input);
  } catch (err) {
    if (err instanceof ExpressionError) throw new ExpressionFailure(code, path, err);
    throw err;
  }
}

/**
 * `mapping` is a JSONata expression, or an object whose values are JSONata expressions (one per
 * payload field; fields evaluating to undefined are left out). Compiled once per destination
 * version; every evaluation is bounded (`expression.ts`), and so is the whole rendered object.
 */
export function compileMapping(
  spec: MappingSpec | undefined,
  fallback: (input: Record<string, unknown>) => unknown,
  path: (string | number)[] = ["mapping"],
): Mapping {
  if (spec === undefined) return { render: (input) => Promise.resolve(fallback(input)) };
  if (typeof spec === "string") {
    const expr = compile(spec, path);
    return { render: (input) => run(expr, input, "mapping_error", path) };
  }
  const fields = Object.entries(spec).map(([k, v]) => [k, compile(v, [...path, k])] as const);
  return {
    async render(input) {
      const out: Record<string, unknown> = {};
      for (const [k, expr] of fields) {
        const v: unknown = await run(expr, input, "mapping_error", [...path, k]);
        if (v !== undefined) out[k] = v;
      }
      if (serializedSizeUpTo(out, EXPRESSION_MAX_RESULT_BYTES) > EXPRESSION_MAX_RESULT_BYTES) {
        const err = new ExpressionError(
          "expression_too_large",
          `the mapped fields together serialize to more than ${EXPRESSION_MAX_RESULT_BYTES} bytes`,
        );
        throw new ExpressionFailure("mapping_error", path, err);
      }
      return out;
    },
  };
}

/** A JSONata boolean filter: which leads a destination gets. */
export interface Filter {
  /** No filter: every lead matches (callers may skip `matches`, which JSONata makes async). */
  readonly always?: boolean;
  /** Rejects with an `ExpressionFailure` (`filter_error`) when the filter fails or hits a limit. */
  matches(input: Record<string, unknown>): Promise<boolean>;
}

export function compileFilter(spec: string | undefined): Filter {
  if (spec === undefined || spec.trim() === "") return { always: true, matches: () => Promise.resolve(true) };
  const expr = compile(spec, ["filter"], "invalid_filter");
  return {
    async matches(input) {
      return Boolean(await run(expr, input, "filter_error", ["filter"]));
    },
  };
}
