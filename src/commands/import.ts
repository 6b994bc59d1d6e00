import { createReadStream, createWriteStream, existsSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { stringify } from "csv-stringify";
import type { ApiErrorCode } from "../domain/codes.ts";
import {
  importIdentity,
  parseMapOptions,
  type RejectedRow,
  rowKey,
  streamCsv,
} from "../ingest/csv-import.ts";
import { callApi, SERVER_OPTIONS, serverTarget } from "./client.ts";

export const IMPORT_HELP = `leadpush import FILE.csv [--map "Column=field"]… [--source NAME] [--batch 1000] [--idempotency-key KEY] [--url URL] [--key KEY]

Streams a CSV file (header row first) to a running leadpush in batches of --batch rows.
Common headers are recognized (name, first_name, last name, email, mobile, mobile_number, phone, city,
project_id, source, message, …); --map maps any other column to a lead field, to attributes.KEY, or
to "-" to skip it. Unrecognized columns are kept under attributes. Rejected rows and their errors
are written to FILE.rejected.csv.
Every row is sent with an idempotency key (the import's identity — --idempotency-key, else the
header line, --map and --source —, the row's line and a hash of its values): running the same
import again, or again after it stopped, stores no row twice. A row over 1 MB stops the import.`;

interface BatchAnswer {
  results: {
    index: number;
    ok: boolean;
    repeated?: boolean;
    duplicateOf?: string;
    error?: {
      code: ApiErrorCode;
      message: string;
      details?: { path: (string | number)[]; message: string }[];
    };
  }[];
}

export async function importCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...SERVER_OPTIONS,
      map: { type: "string", multiple: true },
      source: { type: "string" },
      batch: { type: "string", default: "1000" },
      rejects: { type: "string" },
      "idempotency-key": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(IMPORT_HELP + "\n");
    return 0;
  }
  const file = positionals[0];
  if (!file) {
    process.stderr.write(`leadpush import: which file?\n\n${IMPORT_HELP}\n`);
    return 2;
  }
  if (!existsSync(file)) {
    process.stderr.write(`leadpush import: ${file} does not exist\n`);
    return 2;
  }
  const target = serverTarget(values);
  const map = parseMapOptions(values.map);
  const batchSize = Math.min(1000, Math.max(1, Number(values.batch)));
  const size = statSync(file).size;
  const rejectsPath = values.rejects ?? file.replace(/\.csv$/i, "") + ".rejected.csv";
  const input = createReadStream(file);
  let headers: string[] = [];
  let rejectsOut: ReturnType<typeof stringify> | undefined;
  const writeReject = (r: RejectedRow) => {
    if (!rejectsOut) {
      rejectsOut = stringify({ header: true, columns: ["row", "error_code", "error", ...headers] });
      rejectsOut.pipe(createWriteStream(rejectsPath));
    }
    const detail = r.error.details?.map((d) => `${d.path.join(".") || "(lead)"}: ${d.message}`).join("; ");
    rejectsOut.write([r.row, r.error.code, detail || r.error.message, ...(r.raw ?? [])]);
  };
  const counts = { rows: 0, accepted: 0, repeated: 0, rejected: 0, duplicates: 0 };
  let identity = "";
  const onHeaders = (h: string[]) => {
    headers = h;
    identity = importIdentity({ key: values["idempotency-key"], headers: h, map, source: values.source });
  };
  const started = Date.now();
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  const progress = (final = false) => {
    const now = Date.now();
    if (!final && now - lastPrint < (tty ? 100 : 5000)) return;
    lastPrint = now;
    const secs = Math.max((now - started) / 1000, 0.001);
    const pct = size > 0 ? Math.min(100, (input.bytesRead / size) * 100) : 100;
    const width = 30;
    const bar = "█".repeat(Math.round((pct / 100) * width)).padEnd(width, "░");
    const line = `${bar} ${pct.toFixed(0).padStart(3)}%  ${counts.rows} rows  ${Math.round(counts.rows / secs)} rows/s  ✓ ${counts.accepted}  ✗ ${counts.rejected}  dup ${counts.duplicates}`;
    process.stderr.write(tty ? `\r${line}` : `${line}\n`);
  };
  const { malformed, complete } = await streamCsv(input, { map, batchSize, onHeaders }, async (rows) => {
    const leads = rows.map((r) =>
      values.source && r.lead.source === undefined ? { ...r.lead, source: values.source } : r.lead,
    );
    const idempotencyKeys = rows.map((r) => rowKey(identity, r));
    const answer = await callApi<BatchAnswer>(target, "POST", "/v1/leads/batch", { leads, idempotencyKeys });
    counts.rows += rows.length;
    for (const r of answer.results) {
      if (r.repeated) {
        counts.repeated++;
      } else if (r.ok) {
        counts.accepted++;
        if (r.duplicateOf) counts.duplicates++;
      } else {
        counts.rejected++;
        const row = rows[r.index]!;
        writeReject({
          row: row.line,
          error: r.error ?? { code: "rejected", message: "rejected" },
          raw: row.raw,
        });
      }
    }
    progress();
  });
  for (const m of malformed) {
    counts.rejected++;
    writeReject(m);
  }
  progress(true);
  if (tty) process.stderr.write("\n");
  if (rejectsOut) await new Promise<void>((resolve) => rejectsOut!.end(resolve));
  const secs = (Date.now() - started) / 1000;
  process.stdout.write(
    `imported ${file}: ${counts.rows} rows in ${secs.toFixed(1)} s — ${counts.accepted} accepted (${counts.duplicates} duplicates), ${counts.rejected} rejected` +
      (counts.repeated > 0 ? `, ${counts.repeated} already imported before` : "") +
      "\n",
  );
  if (counts.rejected > 0) process.stdout.write(`rejected rows and their errors: ${rejectsPath}\n`);
  if (!complete) {
    const stop = malformed.at(-1);
    process.stderr.write(`leadpush import: stopped at line ${stop?.row}: ${stop?.error.message}\n`);
    return 1;
  }
  return counts.rejected > 0 && counts.accepted === 0 && counts.repeated === 0 ? 1 : 0;
}
