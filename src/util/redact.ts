/** Header names whose values are always hidden in logs and attempt records. */
const SECRET_HEADERS = new Set([
  "authorization",
  "authentication",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-csrf-token",
  "user_token",
  "x-api-key",
  "api-key",
  "x-amz-security-token",
]);

export const REDACTED = "[redacted]";

export interface Redactor {
  text(s: string): string;
  /**
   * A redacted copy; names in `omit` (lower-case) are left out. The values of secret-bearing
   * headers are also learned (`add`): a client echoing its request back in a body must not show
   * the `Authorization` value (a Basic pair's base64, a bearer token) or a cookie there either.
   */
  headers(h: Record<string, string>, omit?: ReadonlySet<string>): Record<string, string>;
  /** Add secret values learned at run time (tokens, cookies). */
  add(...secrets: (string | undefined)[]): void;
  /** Changes whenever `add` learns a new value: text redacted at an earlier one may need another pass. */
  readonly generation: number;
}

interface Compiled {
  /** The raw secret values this was built from. */
  readonly values: ReadonlySet<string>;
  /** Every form of every value that is searched for. */
  readonly forms: ReadonlySet<string>;
  readonly pattern: RegExp | undefined;
  /** This set plus one more value, as `add` met it before: every attempt adds the same token. */
  readonly plus: Map<string, Compiled>;
}

// The same secret sets recur on every attempt (a destination's secrets, then its current token),
// so compiled sets are kept, keyed by their values. A few hundred sets cover many destinations
// through several token rotations; beyond that the oldest are dropped.
const compiledSets = new Map<string, Compiled>();
const EMPTY: Compiled = { values: new Set(), forms: new Set(), pattern: undefined, plus: new Map() };

function compile(values: ReadonlySet<string>): Compiled {
  if (values.size === 0) return EMPTY;
  const key = JSON.stringify([...values].sort());
  let c = compiledSets.get(key);
  if (c) return c;
  const forms = new Set<string>();
  for (const v of values) {
    forms.add(v);
    // As it appears in a URL, a form body (`+` for spaces, `!'()~` escaped), a JSON string, base64.
    for (const variant of [
      encodeURIComponent(v),
      new URLSearchParams({ v }).toString().slice(2),
      JSON.stringify(v).slice(1, -1),
      Buffer.from(v).toString("base64"),
    ]) {
      if (variant.length >= 4) forms.add(variant);
    }
  }
  const parts = [...forms]
    .sort((a, b) => b.length - a.length)
    .map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  c = { values, forms, pattern: new RegExp(parts.join("|"), "g"), plus: new Map() };
  if (compiledSets.size >= 512) compiledSets.delete(compiledSets.keys().next().value as string);
  compiledSets.set(key, c);
  return c;
}

/**
 * Hides known secret values wherever they appear (including a token endpoint's body echoed into an
 * error), and the values of secret-bearing headers. Values shorter than 4 characters are not
 * searched for, to avoid blanking ordinary text.
 */
export function createRedactor(initial: Iterable<string> = []): Redactor {
  let current = EMPTY;
  let generation = 0;
  const add = (...values: (string | undefined)[]) => {
    for (const v of values) {
      if (typeof v !== "string" || v.length < 4 || current.values.has(v)) continue;
      let next = current.plus.get(v);
      if (next === undefined) {
        next = compile(new Set(current.values).add(v));
        // Bounded like `compiledSets`: a set meets few distinct next values (token rotations).
        if (current.plus.size >= 64) current.plus.clear();
        current.plus.set(v, next);
      }
      current = next;
      generation++;
    }
  };
  add(...initial);
  const text = (s: string) => (current.pattern ? s.replace(current.pattern, REDACTED) : s);
  return {
    add,
    text,
    get generation() {
      return generation;
    },
    headers(h, omit) {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(h)) {
        const name = k.toLowerCase();
        if (omit?.has(name)) continue;
        if (SECRET_HEADERS.has(name)) {
          add(...secretHeaderForms(v));
          out[k] = REDACTED;
        } else out[k] = text(v);
      }
      return out;
    },
  };
}

/** Shorter parts of a secret header than this are not learned (they would blank ordinary words). */
const MIN_PART = 8;

/** A secret header's value, its credential after a scheme (`Basic …`, `Bearer …`), cookie values. */
function secretHeaderForms(value: string): string[] {
  const forms = [value];
  const credential = /^[A-Za-z][\w-]*\s+(\S+)$/.exec(value.trim())?.[1];
  if (credential && credential.length >= MIN_PART) forms.push(credential);
  if (value.includes("=")) {
    for (const pair of value.split(/[;,]\s*/)) {
      const v = pair.slice(pair.indexOf("=") + 1).trim();
      if (
        pair.includes("=") &&
        v.length >= MIN_PART &&
        !/^(path|domain|expires|max-age|samesite)=/i.test(pair)
      )
        forms.push(v);
    }
  }
  return forms;
}

/**
 * A copy of a value from a vendor's answer (a parsed body, an id, enrichment) with every string in
 * it — keys included — redacted, for storing it or showing it in an API answer.
 */
export function redactValue<T>(value: T, redactor: Redactor): T {
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === "string") return redactor.text(v);
    if (v === null || typeof v !== "object") return v;
    if (depth > 64) return redactor.text(JSON.stringify(v));
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [redactor.text(k), walk(x, depth + 1)]));
  };
  return walk(value, 0) as T;
}

/** Every string inside a value (for collecting secrets out of a config object). */
export function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value && typeof value === "object") for (const v of Object.values(value)) stringsIn(v, out);
  return out;
}

const TOKEN_KEY = /token|secret|password|session|^code$|code_verifier|assertion/i;
const isTokenKey = (k: string) => TOKEN_KEY.test(k) && !/^token_?type$/i.test(k);

/**
 * For the bodies of auth handshakes: hides the values of token-like fields (`IdToken`,
 * `refresh_token`, `PASSWORD`, `client_secret`, `Session`…) of a JSON or form-encoded body, so that
 * tokens a handshake returns are hidden in the attempt log even before the redactor learns them.
 */
export function hideTokenFields(body: string): string {
  const trimmed = body.trim();
  if (trimmed.startsWith("{")) {
    try {
      const hide = (v: unknown, key = ""): unknown => {
        if (typeof v === "string") return isTokenKey(key) ? REDACTED : v;
        if (Array.isArray(v)) return v.map((x) => hide(x, key));
        if (v && typeof v === "object")
          return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hide(x, k)]));
        return v;
      };
      return JSON.stringify(hide(JSON.parse(trimmed)));
    } catch {
      return body;
    }
  }
  if (/^[\w.%+-]+=/.test(trimmed) && !/\s/.test(trimmed)) {
    const params = new URLSearchParams(trimmed);
    for (const k of [...params.keys()]) if (isTokenKey(k)) params.set(k, REDACTED);
    return params.toString();
  }
  return body;
}
