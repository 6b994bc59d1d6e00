/**
 * `{{path}}` text templates over the lead, for prose sent to a vendor (Ejento's prompt). A path is
 * dotted (`city`, `attributes.budget`, `enrichment.reworked-main.company`); a key that itself
 * holds dots (a destination named `crm.eu`) is matched whole. Missing values render as nothing,
 * objects as JSON; runs of spaces left by missing values are collapsed.
 */
export function renderTemplate(template: string, input: Record<string, unknown>): string {
  const out = template.replace(/\{\{\s*([^{}]+?)\s*\}\}/g, (_m, path: string) =>
    text(lookup(input, path.split("."))),
  );
  return out.replace(/[ \t]{2,}/g, " ").trim();
}

function lookup(value: unknown, parts: string[]): unknown {
  if (parts.length === 0) return value;
  if (value === null || typeof value !== "object") return undefined;
  const obj = value as Record<string, unknown>;
  // Longest key first, so `enrichment.crm.eu.score` finds the destination "crm.eu".
  for (let n = parts.length; n >= 1; n--) {
    const key = parts.slice(0, n).join(".");
    if (Object.hasOwn(obj, key)) {
      const found = lookup(obj[key], parts.slice(n));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}
