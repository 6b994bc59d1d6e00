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
  headers(h: Record<string, string>): Record<string, string>;
  /** Add secret values learned at run time (tokens, cookies). */
  add(...secrets: (string | undefined)[]): void;
}

/**
 * Hides known secret values wherever they appear (including a token endpoint's body echoed into an
 * error), and the values of secret-bearing headers. Values shorter than 4 characters are not
 * searched for, to avoid blanking ordinary text.
 */
export function createRedactor(initial: Iterable<string> = []): Redactor {
  const secrets = new Set<string>();
  let pattern: RegExp | undefined;
  const add = (...values: (string | undefined)[]) => {
    let changed = false;
    for (const v of values) {
      if (typeof v !== "string" || v.length < 4 || secrets.has(v)) continue;
      secrets.add(v);
      // As it appears in a URL, a form body (`+` for spaces, `!'()~` escaped), a JSON string, base64.
      const variants = [
        encodeURIComponent(v),
        new URLSearchParams({ v }).toString().slice(2),
        JSON.stringify(v).slice(1, -1),
        Buffer.from(v).toString("base64"),
      ];
      for (const variant of variants) {
        if (variant !== v && variant.length >= 4) secrets.add(variant);
      }
      changed = true;
    }
    if (changed) {
      const parts = [...secrets]
        .sort((a, b) => b.length - a.length)
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      pattern = new RegExp(parts.join("|"), "g");
    }
  };
  add(...initial);
  const text = (s: string) => (pattern ? s.replace(pattern, REDACTED) : s);
  return {
    add,
    text,
    headers(h) {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(h))
        out[k] = SECRET_HEADERS.has(k.toLowerCase()) ? REDACTED : text(v);
      return out;
    },
  };
}

/** Every string inside a value (for collecting secrets out of a config object). */
export function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value && typeof value === "object") for (const v of Object.values(value)) stringsIn(v, out);
  return out;
}
