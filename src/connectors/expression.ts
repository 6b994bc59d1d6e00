import { setFlagsFromString } from "node:v8";
import jsonata, { type Expression } from "jsonata";

// A regular expression that backtracks catastrophically (`/^(a+)+$/` on 30 a's takes ~20 s) runs
// inside one native call that no JSONata limit can interrupt. With this flag V8 moves a match that
// backtracks too much to its linear-time engine; the patterns that engine cannot run
// (backreferences, lookaround) are refused below instead.
setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");

/**
 * CPU time (of the thread running it) one evaluation may take. JSONata evaluates on microtasks
 * only, so a runaway expression starves the event loop (no request, timer or health check runs)
 * until it ends: this bound is how long one filter or mapping can hold the whole process.
 * Legitimate mappings take well under 1 ms. It is CPU time, not wall time: on a loaded machine a
 * valid 25 ms filter took over 200 ms of wall time, twice in a row, and the lead was not routed.
 */
export const EXPRESSION_TIMEOUT_MS = 200;
/** Wall time one evaluation may take whatever its CPU: a thread starved this long gives up too. */
export const EXPRESSION_WALL_LIMIT_MS = 2000;
/** The thread's CPU is read every this many evaluation steps (a read costs ~2 µs). */
const CPU_CHECK_EVERY = 64;

/**
 * Nesting of JSONata's internal `evaluate` calls (each function call adds several levels). Bounds
 * non-tail recursion such as `$f := function($n){ 1 + $f($n+1) }`, which otherwise grows to GBs.
 */
export const EXPRESSION_MAX_DEPTH = 500;

/**
 * Longest sequence an evaluation may build (the range operator `[1..n]`, path results). JSONata's
 * own cap on ranges is 10 000 000 items, ~50 ms of allocation before anything can stop it.
 */
export const EXPRESSION_MAX_SEQUENCE = 100_000;

/** `$distinct` compares every pair (100 000 items take seconds): its input is bounded tighter. */
export const EXPRESSION_MAX_DISTINCT = 10_000;

/** Serialized size of a result, and longest string `$pad` may build: the lead body limit (1 MB). */
export const EXPRESSION_MAX_RESULT_BYTES = 1024 * 1024;

export type ExpressionErrorCode =
  | "expression_timeout"
  | "expression_too_deep"
  | "expression_too_large"
  | "expression_regex_unsupported"
  | "expression_error";

/** An evaluation that failed: a limit was hit, or JSONata itself raised an error (`jsonataCode`). */
export class ExpressionError extends Error {
  readonly code: ExpressionErrorCode;
  readonly jsonataCode: string | undefined;
  /** The character offset in the expression JSONata names, when it names one. */
  readonly position: number | undefined;
  constructor(
    code: ExpressionErrorCode,
    message: string,
    jsonataCode?: string,
    cause?: unknown,
    position?: number,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.jsonataCode = jsonataCode;
    this.position = position;
  }
}

/** A compiled expression whose every evaluation is bounded in time, depth and size. */
export interface BoundedExpression {
  evaluate(input: unknown): Promise<unknown>;
}

/** Backreferences and lookaround: a linear-time engine cannot run them, so their time is unbounded. */
const UNBOUNDED_REGEX = /\\[1-9]|\\k<|\(\?<?[=!]/;

/** The regular expressions of JSONata expressions (literals, and those `$eval` builds). */
class BoundedRegExp extends RegExp {
  constructor(pattern: string | RegExp, flags?: string) {
    const source = typeof pattern === "string" ? pattern : pattern.source;
    if (UNBOUNDED_REGEX.test(source))
      throw new ExpressionError(
        "expression_regex_unsupported",
        `regular expression /${source.slice(0, 80)}/ uses a backreference or lookaround, which cannot be bounded in time`,
      );
    super(pattern, flags);
  }
}

const OPTIONS = {
  // JSONata's type asks for RegExpConstructor (callable without `new`); it only ever uses `new`.
  RegexEngine: BoundedRegExp as unknown as RegExpConstructor,
  timeout: EXPRESSION_WALL_LIMIT_MS,
  stack: EXPRESSION_MAX_DEPTH,
  sequence: EXPRESSION_MAX_SEQUENCE,
};

type JsonataFunction = { implementation: (...args: unknown[]) => unknown } & Record<string, unknown>;

/** JSONata's own `$distinct` and `$pad`, read once, wrapped with a size check. */
let bounded: Promise<{ distinct: JsonataFunction; pad: JsonataFunction }> | undefined;

function boundedNatives() {
  bounded ??= (jsonata("[$distinct, $pad]").evaluate({}) as Promise<JsonataFunction[]>).then(
    ([distinct, pad]) => ({
      distinct: wrap(distinct!, (arr) => {
        if (Array.isArray(arr) && arr.length > EXPRESSION_MAX_DISTINCT)
          throw tooLarge(`$distinct of ${arr.length} items (at most ${EXPRESSION_MAX_DISTINCT})`);
      }),
      pad: wrap(pad!, (str, width) => {
        if (typeof width === "number" && Math.abs(width) > EXPRESSION_MAX_RESULT_BYTES)
          throw tooLarge(`$pad to ${width} characters (at most ${EXPRESSION_MAX_RESULT_BYTES})`);
        void str;
      }),
    }),
  );
  return bounded;
}

function wrap(fn: JsonataFunction, check: (...args: unknown[]) => void): JsonataFunction {
  const impl = fn.implementation;
  return {
    ...fn,
    implementation(this: unknown, ...args: unknown[]) {
      check(...args);
      return impl.apply(this, args);
    },
  };
}

const tooLarge = (what: string) =>
  new ExpressionError("expression_too_large", `expression too large: ${what}`);

/**
 * Compiles a JSONata expression (throws JSONata's syntax error as is). Every evaluation gets
 * JSONata's own guardrails (time, depth, sequence length), which it keeps per evaluation (a fresh
 * frame per `evaluate` call), so concurrent evaluations of one compiled expression do not share
 * a deadline or a depth; strings longer than the result bound are refused as they are built, and
 * the result's serialized size is checked at the end.
 */
export function compileExpression(source: string): BoundedExpression {
  const expr = jsonata(source, OPTIONS);
  // A string past the bound is refused where it appears, before it is copied any further.
  expr.assign(Symbol.for("jsonata.__evaluate_exit") as unknown as string, checkIntermediate);
  let ready: Promise<void> | undefined;
  return {
    async evaluate(input) {
      ready ??= boundedNatives().then((n) => {
        expr.assign("distinct", n.distinct);
        expr.assign("pad", n.pad);
      });
      await ready;
      let result: unknown;
      try {
        result = await oneAtATime(() => evaluateOwnTime(expr, input));
      } catch (err) {
        throw asExpressionError(err);
      }
      const size = serializedSizeUpTo(result, EXPRESSION_MAX_RESULT_BYTES);
      if (size > EXPRESSION_MAX_RESULT_BYTES)
        throw tooLarge(`the result serializes to more than ${EXPRESSION_MAX_RESULT_BYTES} bytes`);
      return result;
    },
  };
}

/**
 * Evaluations run one at a time in a process. An evaluation yields between its steps
 * (microtasks): evaluations started together interleave, and with a clock per evaluation each one
 * was charged all the others' steps — sixteen leads of a burst through a filter of ~25 ms each all
 * timed out at 200 ms. Queued, each has the thread's CPU clock to itself from when its turn comes
 * (`running`); CPU-bound work on one thread loses nothing by waiting its turn. Between two
 * evaluations the event loop gets a turn: twenty leads through a runaway filter queued back to
 * back (200 ms each) froze the process for 4 s, and requests went unanswered.
 */
let turn: Promise<unknown> = Promise.resolve();
/** The next evaluation starts after a turn of the event loop: queued ones never block it back to back. */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = turn.then(yieldToIo).then(fn);
  turn = run.catch(() => undefined);
  return run;
}

/** The CPU clock of the evaluation running now (one at a time: `oneAtATime`). */
let running: { cpu: NodeJS.CpuUsage; steps: number } | undefined;

async function evaluateOwnTime(expr: Expression, input: unknown): Promise<unknown> {
  running = { cpu: process.threadCpuUsage(), steps: 0 };
  try {
    return await expr.evaluate(input);
  } finally {
    running = undefined;
  }
}

function checkIntermediate(_expr: unknown, _input: unknown, _env: unknown, result: unknown): void {
  if (running && ++running.steps % CPU_CHECK_EVERY === 0) {
    const used = process.threadCpuUsage(running.cpu);
    if ((used.user + used.system) / 1000 > EXPRESSION_TIMEOUT_MS)
      throw new ExpressionError(
        "expression_timeout",
        `expression used more than ${EXPRESSION_TIMEOUT_MS} ms of CPU`,
      );
  }
  if (typeof result === "string" && result.length > EXPRESSION_MAX_RESULT_BYTES)
    throw tooLarge(`a string of ${result.length} characters (at most ${EXPRESSION_MAX_RESULT_BYTES})`);
}

function asExpressionError(err: unknown): ExpressionError {
  if (err instanceof ExpressionError) return err;
  const e = err as { code?: unknown; message?: unknown; position?: unknown };
  const jc = typeof e?.code === "string" ? e.code : undefined;
  const said = typeof e?.message === "string" ? e.message : String(err);
  switch (jc) {
    case "D1012":
      return new ExpressionError(
        "expression_timeout",
        `expression ran longer than ${EXPRESSION_WALL_LIMIT_MS} ms`,
        jc,
        err,
      );
    case "D1011":
      return new ExpressionError(
        "expression_too_deep",
        `expression nested deeper than ${EXPRESSION_MAX_DEPTH} levels (runaway recursion?)`,
        jc,
        err,
      );
    case "D2014":
    case "D2015":
      return new ExpressionError(
        "expression_too_large",
        `expression too large: a sequence longer than ${EXPRESSION_MAX_SEQUENCE} items`,
        jc,
        err,
      );
    default: {
      const at = typeof e?.position === "number" ? ` at ${e.position}` : "";
      const code = jc ? ` (${jc})` : "";
      const position = typeof e?.position === "number" ? e.position : undefined;
      return new ExpressionError("expression_error", `${said}${code}${at}`, jc, err, position);
    }
  }
}

/**
 * The length of `JSON.stringify(value)`, roughly (strings count their characters, not escapes),
 * counting no further than `limit`: the walk stops as soon as the bound is passed, so a huge
 * value costs no more than the bound. Cycles cannot occur in JSONata results built from JSON.
 */
export function serializedSizeUpTo(value: unknown, limit: number): number {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && size <= limit) {
    const v = stack.pop();
    if (typeof v === "string") size += v.length + 2;
    else if (typeof v === "number" || typeof v === "boolean") size += 8;
    else if (v === null || v === undefined || typeof v === "function") size += 4;
    else if (Array.isArray(v)) {
      size += 2 + v.length;
      for (const x of v) stack.push(x);
    } else if (typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        size += k.length + 4;
        stack.push(x);
        if (size > limit) break;
      }
      size += 2;
    }
  }
  return size;
}
