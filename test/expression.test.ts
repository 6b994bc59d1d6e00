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
    // JSONata's deadline is wall-clock and its evaluation yields between steps: interleaved
    // evaluations each ran on the clock of all of them together, and a burst of leads through a
    // legitimately slow filter was recorded as filter_error. Here 160 evaluations of a few ms each
    // take longer together than one budget; every one must succeed.
    const e = compileExpression("$count([1..1000].($ * 2))");
    await e.evaluate({});
    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 160 }, () => e.evaluate({})));
    const together = performance.now() - started;
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as ExpressionError).code)),
      results.map(() => 1000),
    );
    assert.ok(together > EXPRESSION_TIMEOUT_MS, `together ${Math.round(together)} ms: the test needs more`);
  });

  test("the budget is CPU time: waiting costs nothing, computing does", async () => {
    // `wait` stands for a starved process: 250 ms of wall-clock time with next to no CPU. JSONata's
    // own wall-clock deadline failed this (a loaded machine once failed a valid 25 ms filter so).
    const wait = () => new Promise((r) => setTimeout(() => r(1), 250));
    assert.equal(await compileExpression("wait() + wait() + 1").evaluate({ wait }), 3);
    const runaway = compileExpression("($f := function($n){ $f($n+1) }; $f(0))");
    const started = process.threadCpuUsage();
    assert.equal((await failure(runaway.evaluate({}))).code, "expression_timeout");
    const used = process.threadCpuUsage(started);
    assert.ok((used.user + used.system) / 1000 >= EXPRESSION_TIMEOUT_MS, "stopped after its CPU budget");
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
