import type { Readable } from "node:stream";
import { parse } from "csv-parse";
import type { ErrorDetail } from "../util/errors.ts";

/** Header names (normalized: lower case, letters and digits only) → canonical lead fields. */
const KNOWN_HEADERS: Record<string, string> = {};
const FIELD_ALIASES: Record<string, string[]> = {
  name: ["name", "firstname", "fullname", "customername", "leadname", "contactname"],
  lastName: ["lastname", "surname", "familyname"],
  email: ["email", "emailaddress", "mail", "emailid"],
  phone: [
    "phone",
    "mobile",
    "mobilenumber",
    "mobileno",
    "phonenumber",
    "phoneno",
    "contactnumber",
    "whatsapp",
    "cell",
  ],
  city: ["city", "town", "location"],
  projectId: ["projectid", "project"],
  source: ["source", "leadsource", "utmsource"],
  context: ["context", "message", "comments", "notes", "requirement"],
  additionalInformation: ["additionalinformation", "additionalinformationline", "additionalinfo"],
  externalId: ["externalid", "leadid", "ref", "reference"],
};
for (const [field, names] of Object.entries(FIELD_ALIASES)) for (const n of names) KNOWN_HEADERS[n] = field;

const normalize = (h: string) => h.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * How CSV columns become lead fields: common header names are recognized; `overrides` maps a
 * column to a field (`--map "Mobile No=phone"`), to `attributes.<key>`, or to `-` (ignored).
 * Unrecognized columns are kept as attributes under their own name.
 */
export function columnMapper(
  headers: string[],
  overrides: Record<string, string> = {},
): (values: string[]) => Record<string, unknown> {
  const byNormalized = Object.fromEntries(Object.entries(overrides).map(([k, v]) => [normalize(k), v]));
  const targets = headers.map(
    (h) => byNormalized[normalize(h)] ?? KNOWN_HEADERS[normalize(h)] ?? `attributes.${h.trim()}`,
  );
  return (values) => {
    const lead: Record<string, unknown> = {};
    const attributes: Record<string, unknown> = {};
    targets.forEach((target, i) => {
      const v = values[i]?.trim();
      if (target === "-" || v === undefined || v === "") return;
      if (target.startsWith("attributes.")) attributes[target.slice(11)] = v;
      else if (lead[target] === undefined) lead[target] = v;
    });
    if (Object.keys(attributes).length > 0) lead.attributes = attributes;
    return lead;
  };
}

/** Parses `--map a=b` options. */
export function parseMapOptions(list: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.lastIndexOf("=");
    if (eq <= 0) throw new Error(`--map expects column=field, got "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export interface CsvRow {
  /** Line number in the file (the header is line 1). */
  line: number;
  lead: Record<string, unknown>;
  raw: string[];
}

export interface RejectedRow {
  row: number;
  error: { code: string; message: string; details?: ErrorDetail[] };
  raw?: string[];
}

/**
 * Streams a CSV (header row first) and hands rows to `onBatch` in batches, awaiting each, so the
 * file is never held in memory whole (backpressure through the async iterator).
 */
export async function streamCsv(
  input: Readable,
  opts: { map?: Record<string, string>; batchSize?: number; onHeaders?: (h: string[]) => void },
  onBatch: (rows: CsvRow[]) => Promise<void>,
): Promise<{ rows: number; malformed: RejectedRow[] }> {
  const parser = input.pipe(
    parse({ bom: true, skip_empty_lines: true, relax_column_count: true, info: true, trim: false }),
  );
  let mapper: ((values: string[]) => Record<string, unknown>) | undefined;
  let batch: CsvRow[] = [];
  let rows = 0;
  const malformed: RejectedRow[] = [];
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!mapper) {
        opts.onHeaders?.(item.record);
        mapper = columnMapper(item.record, opts.map);
        continue;
      }
      rows++;
      batch.push({ line: item.info.lines, lead: mapper(item.record), raw: item.record });
      if (batch.length >= (opts.batchSize ?? 500)) {
        await onBatch(batch);
        batch = [];
      }
    }
  } catch (err) {
    const e = err as { code?: string; message?: string; lines?: number };
    malformed.push({
      row: e.lines ?? rows + 1,
      error: { code: "invalid_csv", message: e.message ?? String(err) },
    });
  }
  if (batch.length > 0) await onBatch(batch);
  if (!mapper && malformed.length === 0) {
    malformed.push({
      row: 1,
      error: { code: "invalid_csv", message: "the file is empty: expected a header row" },
    });
  }
  return { rows, malformed };
}
