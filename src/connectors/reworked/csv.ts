import type { Readable } from "node:stream";
import { parse } from "csv-parse";
import { stringify } from "csv-stringify";
import type { BatchItem, ItemResult } from "../batching.ts";
import { ExpressionFailure, type Mapping } from "../mapping.ts";

/**
 * The batch file leadpush serves to Reworked, and the processed file it reads back. Every row
 * starts with `leadpush_id` (the lead id), which is how result rows are matched to leads; rows
 * that lost it are matched by `email`. The other columns come from the destination's mapping (an
 * object: column → JSONata), else the defaults below.
 */
export const ID_COLUMN = "leadpush_id";

export function defaultRow(input: Record<string, unknown>): Record<string, unknown> {
  const name = str(input.name);
  const lastName = str(input.lastName);
  return {
    email: str(input.email),
    first_name: name,
    last_name: lastName,
    full_name: [name, lastName].filter(Boolean).join(" "),
    phone: str(input.phone),
    city: str(input.city),
  };
}

/**
 * The rows and columns of a batch file (columns in order of first appearance). A lead whose
 * mapping fails (an error or a limit) is left out of the file: `failed` has its result.
 */
export async function renderRows(items: BatchItem[], mapping: Mapping | undefined) {
  const columns = new Set<string>([ID_COLUMN]);
  const rows: Record<string, string>[] = [];
  const failed = new Map<string, ItemResult>();
  for (const item of items) {
    const input = { ...item.lead, id: item.leadId } as unknown as Record<string, unknown>;
    let rendered: unknown;
    try {
      rendered = mapping ? await mapping.render(input) : defaultRow(input);
    } catch (err) {
      if (!(err instanceof ExpressionFailure)) throw err;
      failed.set(item.deliveryId, { ok: false, code: err.code, message: err.message });
      continue;
    }
    const fields = rendered && typeof rendered === "object" && !Array.isArray(rendered) ? rendered : {};
    const row: Record<string, string> = { [ID_COLUMN]: item.leadId };
    for (const [k, v] of Object.entries(fields)) {
      if (k === ID_COLUMN) continue;
      columns.add(k);
      row[k] = str(v);
    }
    rows.push(row);
  }
  return { columns: [...columns], rows, failed };
}

export async function renderFile(items: BatchItem[], mapping: Mapping | undefined): Promise<Readable> {
  const { columns, rows } = await renderRows(items, mapping);
  const out = stringify({ header: true, columns });
  for (const row of rows) out.write(row);
  out.end();
  return out;
}

/**
 * Reads a processed file as a stream and matches its rows to the batch's items. The columns that
 * leadpush did not write are the enrichment (empty values left out).
 */
export async function readResult(
  body: Readable,
  items: BatchItem[],
  written: string[],
  describe: (enrichment: Record<string, string>) => unknown,
): Promise<{ results: Map<string, ItemResult>; rows: number; unmatched: number }> {
  const ours = new Set(written.map((c) => c.toLowerCase()));
  const byLead = new Map(items.map((i) => [i.leadId, i]));
  const byEmail = new Map<string, BatchItem[]>();
  for (const i of items) {
    const e = i.lead.email?.toLowerCase();
    if (e) byEmail.set(e, [...(byEmail.get(e) ?? []), i]);
  }
  const results = new Map<string, ItemResult>();
  let rows = 0;
  let unmatched = 0;
  const parser = body.pipe(
    parse({
      columns: (header: string[]) => header.map((h) => h.trim()),
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }),
  );
  for await (const record of parser as AsyncIterable<Record<string, string>>) {
    rows++;
    const get = (name: string) =>
      Object.entries(record)
        .find(([k]) => k.toLowerCase() === name)?.[1]
        ?.trim() ?? "";
    const byId = byLead.get(get(ID_COLUMN));
    const item =
      byId ?? (byEmail.get(get("email").toLowerCase()) ?? []).find((i) => !results.has(i.deliveryId));
    if (!item || results.has(item.deliveryId)) {
      unmatched++;
      continue;
    }
    const enrichment: Record<string, string> = {};
    for (const [k, v] of Object.entries(record)) {
      if (!ours.has(k.toLowerCase()) && v !== undefined && v.trim() !== "") enrichment[k] = v.trim();
    }
    results.set(item.deliveryId, { ok: true, enrichment, result: describe(enrichment) });
  }
  return { results, rows, unmatched };
}

function str(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}
