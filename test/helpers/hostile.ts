// The hostile JSONata expressions of issue 12 (item 4), and the limit each one must hit.

export const HOSTILE = {
  /** Tail recursion without end: no stack growth, only time. */
  loop: { expr: "($f := function($n){ $f($n+1) }; $f(0))", code: "expression_timeout" },
  /** Ten million items, then ten million calls. */
  reduce: { expr: "$reduce([1..9999999], function($a,$b){$a+$b})", code: "expression_too_large" },
  /** Non-tail recursion: grows memory until the depth bound. */
  deep: { expr: "($f := function($n){ 1 + $f($n+1) }; $f(0))", code: "expression_too_deep" },
} as const;
