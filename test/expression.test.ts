import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  compileExpression,
  EXPRESSION_TIMEOUT_MS,
  EXPRESSION_MAX_RESULT_BYTES,
  ExpressionError,
  serializedSizeUpTo,
} from "../src/connectors/expression.ts";
import { compileFilter, compileMapping, ExpressionFailure } from "../src/connectors/mapping.ts";
import { HOSTILE } from "./helpers/hostile.ts";

async function failure(p: Promise<unknown>): Promise<ExpressionError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ExpressionError, `an ExpressionError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the evaluation to fail");
}

describe("bounded JSONata evaluation", () => {
  for (const [name, h] of Object.entries(HOSTILE)) {
    test(`${name}: ends with ${h.code}, within 2 s`, async () => {
      const t0 = performance.now();
      const err = await failure(compileExpression(h.expr).evaluate({}));
      assert.equal(err.code, h.code, err.message);
      assert.ok(performance.now() - t0 < 2000);
    });
  }

  test("sizes: $distinct, $pad, long strings and large results are refused", async () => {
    const cases: [string, unknown][] = [
      ["$distinct([1..20000])", {}],
      ['$pad("", 100000000)', {}],
      ['($s := $pad("", 900000); $s & $s)', {}],
      ["$", { big: "x".repeat(EXPRESSION_MAX_RESULT_BYTES + 10) }],
    ];
    for (const [expr, input] of cases) {
      const err = await failure(compileExpression(expr).evaluate(input));
      assert.equal(err.code, "expression_too_large", `${expr}: ${err.message}`);
    }
    // The wrapped natives still work within the bounds.
    assert.deepEqual(await compileExpression("$distinct([1,2,2,3])").evaluate({}), [1, 2, 3]);
    assert.equal(await compileExpression('$pad("ab", 4)').evaluate({}), "ab  ");
  });

  test("regular expressions: catastrophic backtracking ends quickly; unboundable patterns are refused", async () => {
    const input = { name: `${"a".repeat(34)}!` };
    // Without V8's linear-time fallback each of these takes tens of seconds (one native call that
    // no JSONata limit can interrupt), also when the pattern is built at run time by $eval.
    for (const src of ["$contains(name, /^(a+)+$/)", '$eval("$contains(name, /^(a|aa)+$/)")']) {
      const t0 = performance.now();
      assert.equal(await compileExpression(src).evaluate(input), false, src);
      assert.ok(performance.now() - t0 < 2000, `${src} took ${performance.now() - t0} ms`);
    }
    for (const src of ["$contains(name, /(a+)+\\1$/)", "$match(name, /(?=a)a/)", "$match(name, /(?<!b)a/)"]) {
      const err = await failure(compileExpression(src).evaluate(input));
      assert.equal(err.code, "expression_regex_unsupported", src);
    }
    assert.equal(await compileExpression('$replace(name, /a+/, "b")').evaluate(input), "b!");
  });

  test("JSONata's own errors are expression_error with its code", async () => {
    const err = await failure(compileExpression('$number("x")').evaluate({}));
    assert.equal(err.code, "expression_error");
    assert.equal(err.jsonataCode, "D3030");
  });

  test("depth is counted per evaluation: two concurrent evaluations of one expression", async () => {
    // Each recursion nests about three levels: 120 fits alone (~360 of 500), not twice over.
    const e = compileExpression("($f := function($n){ $n <= 0 ? 0 : 1 + $f($n-1) }; $f($))");
    assert.equal((await failure(e.evaluate(400))).code, "expression_too_deep");
    assert.deepEqual(await Promise.all([e.evaluate(120), e.evaluate(120), e.evaluate(120)]), [120, 120, 120]);
  });

  test("the deadline is per evaluation: a runaway one does not fail its neighbour or the next", async () => {
    const e = compileExpression('$ = "loop" ? ($f := function($n){ $f($n+1) }; $f(0)) : "fine"');
    const [bad, good] = await Promise.allSettled([e.evaluate("loop"), e.evaluate("ok")]);
    assert.equal(bad.status, "rejected");
    assert.equal((bad.reason as ExpressionError).code, "expression_timeout");
    assert.deepEqual(good, { status: "fulfilled", value: "fine" });
    assert.equal(await e.evaluate("ok"), "fine");
  });

  test("evaluations running at once do not spend each other's time: each gets its own 200 ms", async () => {
    // A tenth of the budget or so each. JSONata's deadline is wall-clock and its evaluation yields
    // between steps: sixteen interleaved evaluations used to take ~16× as long each and all timed
    // out (a burst of leads through a legitimately slow filter was recorded as filter_error).
    const e = compileExpression("$count([1..5000].($ * 2))");
    const started = performance.now();
    await e.evaluate({});
    const alone = performance.now() - started;
    assert.ok(alone < EXPRESSION_TIMEOUT_MS / 2, `one evaluation alone took ${Math.round(alone)} ms`);
    const results = await Promise.allSettled(Array.from({ length: 16 }, () => e.evaluate({})));
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as ExpressionError).code)),
      results.map(() => 5000),
    );
  });

  test("a timeout while the process was starved of CPU is tried once more; a second one stands", async () => {
    // `wait` stands for a starved process: 250 ms of wall-clock time with next to no CPU.
    const sleep = () => new Promise((r) => setTimeout(() => r(1), 250));
    let calls = 0;
    const once = { wait: () => (calls++ === 0 ? sleep() : 1) };
    assert.equal(await compileExpression("wait() + 1").evaluate(once), 2);
    assert.equal(calls, 2, "evaluated again after the starved timeout");
    let slowCalls = 0;
    const always = { wait: () => (slowCalls++, sleep()) };
    assert.equal(
      (await failure(compileExpression("wait() + 1").evaluate(always))).code,
      "expression_timeout",
    );
    assert.equal(slowCalls, 2, "tried twice, then the timeout stands");
  });

  test("serializedSizeUpTo stops counting past its bound", () => {
    assert.ok(serializedSizeUpTo({ a: "xx", b: [1, 2] }, 1000) < 100);
    const huge = Array.from({ length: 1000 }, () => "y".repeat(1000));
    const size = serializedSizeUpTo(huge, 5000);
    assert.ok(size > 5000 && size < 10_000, String(size));
  });

  test("filters and mappings reject with filter_error / mapping_error naming the field", async () => {
    const filter = compileFilter(HOSTILE.deep.expr);
    await assert.rejects(filter.matches({}), (err: ExpressionFailure) => {
      assert.equal(err.code, "filter_error");
      assert.equal(err.reason, "expression_too_deep");
      assert.match(err.message, /^filter: .*expression_too_deep/);
      return true;
    });
    const mapping = compileMapping({ ok: "name", bad: HOSTILE.reduce.expr }, () => undefined);
    await assert.rejects(mapping.render({ name: "A" }), (err: ExpressionFailure) => {
      assert.equal(err.code, "mapping_error");
      assert.deepEqual(err.path, ["mapping", "bad"]);
      return true;
    });
    // Fields that are each under the bound but together over it.
    const half = `$pad("", ${Math.ceil(EXPRESSION_MAX_RESULT_BYTES / 2)})`;
    const wide = compileMapping({ a: half, b: half }, () => undefined);
    await assert.rejects(wide.render({}), (err: ExpressionFailure) => err.reason === "expression_too_large");
    // A filter that merely does not match is false, not an error.
    assert.equal(await compileFilter("nosuchfield = 1").matches({}), false);
  });
});
