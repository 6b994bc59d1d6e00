import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { parse } from "csv-parse";
import type { AppErrorCode } from "../domain/codes.ts";
import type { ErrorDetail } from "../util/errors.ts";
import { MAX_LEAD_BYTES } from "../lead/lead.ts";

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
  error: { code: AppErrorCode; message: string; details?: ErrorDetail[] };
  raw?: string[];
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

/**
 * What makes an import the same import when it is sent again: the `Idempotency-Key` it was sent
 * with, else its header line together with the column mapping and source (a re-send with another
 * mapping makes other leads, so it is another import).
 */
export function importIdentity(opts: {
  key: string | undefined;
  headers: string[];
  map: Record<string, string>;
  source: string | undefined;
}): string {
  if (opts.key !== undefined) return digest(`key\u0000${opts.key}`);
  return digest(JSON.stringify(["header", opts.headers, opts.map, opts.source ?? null]));
}

/**
 * A row's idempotency key: the import's identity, the row's line and a hash of its values. A
 * re-sent or resumed import creates nothing twice; two equal rows in one file stay two rows.
 */
export function rowKey(identity: string, row: CsvRow): string {
  return `csv:${identity}:${row.line}:${digest(JSON.stringify(row.raw))}`;
}

/**
 * Streams a CSV (header row first) and hands rows to `onBatch` in batches, awaiting each, so the
 * file is never held in memory whole (backpressure through the async iterator). A row larger than
 * a lead may be (`MAX_LEAD_BYTES`) or a CSV syntax error stops the parser: the rows before it are
 * handed on, the row is reported in `malformed` and `complete` is false. An error of the input
 * stream itself (too large, aborted) is thrown after the rows before it were handed on.
 */
export async function streamCsv(
  input: Readable,
  opts: { map?: Record<string, string>; batchSize?: number; onHeaders?: (h: string[]) => void },
  onBatch: (rows: CsvRow[]) => Promise<void>,
): Promise<{ rows: number; malformed: RejectedRow[]; complete: boolean }> {
  const parser = parse({
    bom: true,
    // Files edited on more than one system mix line endings; csv-parse otherwise keeps the first
    // one it meets, and a quoted field ended by the other fails every row after it.
    record_delimiter: ["\r\n", "\n", "\r"],
    skip_empty_lines: true,
    relax_column_count: true,
    info: true,
    trim: false,
    max_record_size: MAX_LEAD_BYTES,
  });
  let inputError: unknown;
  input.on("error", (err) => {
    inputError = err;
    parser.destroy(err);
  });
  input.pipe(parser);
  let mapper: ((values: string[]) => Record<string, unknown>) | undefined;
  let batch: CsvRow[] = [];
  let rows = 0;
  const malformed: RejectedRow[] = [];
  let handing = false; // an error while handing a batch on is the caller's, not the file's
  const flush = async () => {
    const rowsNow = batch;
    batch = [];
    handing = true;
    await onBatch(rowsNow);
    handing = false;
  };
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!mapper) {
        opts.onHeaders?.(item.record);
        mapper = columnMapper(item.record, opts.map);
        continue;
      }
      rows++;
      batch.push({ line: item.info.lines, lead: mapper(item.record), raw: item.record });
      if (batch.length >= (opts.batchSize ?? 500)) await flush();
    }
  } catch (err) {
    if (handing) throw err;
    if (batch.length > 0) await flush();
    if (inputError !== undefined) throw inputError;
    const e = err as { code?: string; message?: string; lines?: number };
    const row = e.lines ?? rows + 2;
    const stopped =
      "the import stopped here: the rows before it were stored, and sending the file again skips them";
    malformed.push({
      row,
      error:
        e.code === "CSV_MAX_RECORD_SIZE"
          ? {
              code: "row_too_large",
              message: `the row at line ${row} is larger than ${MAX_LEAD_BYTES / 1024 / 1024} MB (the limit of one lead); ${stopped}`,
            }
          : { code: "invalid_csv", message: `${e.message ?? String(err)}; ${stopped}` },
    });
    return { rows, malformed, complete: false };
  }
  if (batch.length > 0) await flush();
  if (!mapper) {
    malformed.push({
      row: 1,
      error: { code: "invalid_csv", message: "the file is empty: expected a header row" },
    });
  }
  return { rows, malformed, complete: true };
}
