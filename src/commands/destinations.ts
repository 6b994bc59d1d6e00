import { parseArgs } from "node:util";
import type { DeliveryStatus } from "../domain/status.ts";
import type { Exchange } from "../http/http-client.ts";
import { callApi, SERVER_OPTIONS, serverTarget } from "./client.ts";

export const DESTINATIONS_HELP = `leadpush destinations list [--url URL] [--key KEY]
leadpush destinations test NAME [--send] [--url URL] [--key KEY]

list: every destination with its connector, auth type, state and delivery counts.
test: the dry run — performs the auth handshake and prints the request that would be sent for a
sample lead (secrets redacted); --send really sends it and prints the client's answer.`;

interface Destination {
  id: string;
  name: string;
  connector: string;
  enabled: boolean;
  state: string;
  auth?: { type: string };
  url?: string;
  baseUrl?: string;
}

export async function destinationsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...SERVER_OPTIONS,
      send: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || sub === "--help" || sub === "-h") {
    process.stdout.write(DESTINATIONS_HELP + "\n");
    return 0;
  }
  if (sub !== "list" && sub !== "test") {
    process.stderr.write(
      `leadpush destinations: ${sub ? `unknown subcommand "${sub}"` : "which subcommand?"}\n\n${DESTINATIONS_HELP}\n`,
    );
    return 2;
  }
  const target = serverTarget(values);
  if (sub === "list") {
    const { data } = await callApi<{ data: Destination[] }>(target, "GET", "/v1/destinations");
    if (data.length === 0) {
      process.stdout.write(
        "no destinations yet — create one with POST /v1/destinations or leadpush.config.yaml\n",
      );
      return 0;
    }
    const counts = await Promise.all(
      data.map(async (d) => {
        const per: Record<string, number> = {};
        for (const s of ["delivered", "failed", "retrying", "pending"] satisfies DeliveryStatus[]) {
          const r = await callApi<{ data: unknown[]; nextCursor: string | null }>(
            target,
            "GET",
            `/v1/deliveries?destination=${encodeURIComponent(d.id)}&status=${s}&limit=500`,
          );
          per[s] = r.data.length + (r.nextCursor ? 1 : 0);
        }
        return per;
      }),
    );
    const rows = data.map((d, i) => {
      const c = counts[i]!;
      const n = (k: string) => `${c[k] ?? 0}${(c[k] ?? 0) > 500 ? "+" : ""}`;
      return [
        d.name,
        d.connector,
        d.auth?.type ?? "none",
        d.enabled ? d.state : "disabled",
        `${n("delivered")} / ${n("failed")} / ${n("retrying")} / ${n("pending")}`,
        d.url ?? d.baseUrl ?? "",
      ];
    });
    printTable(
      ["NAME", "CONNECTOR", "AUTH", "STATE", "DELIVERED / FAILED / RETRYING / PENDING", "URL"],
      rows,
    );
    return 0;
  }
  const name = positionals[0];
  if (!name) {
    process.stderr.write("leadpush destinations test: which destination? (name or id)\n");
    return 2;
  }
  const r = await callApi<{
    destination: string;
    sent: boolean;
    auth: { type: string; ok: boolean; error?: { code: string; message: string } };
    outcome: { kind: string; code?: string; message?: string };
    requests: Exchange[];
  }>(target, "POST", `/v1/destinations/${encodeURIComponent(name)}/test`, { send: values.send });
  process.stdout.write(
    `destination ${r.destination} — auth ${r.auth.type}: ${r.auth.ok ? "ok" : `FAILED ${r.auth.error?.code}: ${r.auth.error?.message}`}\n`,
  );
  for (const ex of r.requests) {
    process.stdout.write(`\n[${ex.step}] ${ex.method} ${ex.url}\n`);
    for (const [k, v] of Object.entries(ex.requestHeaders)) process.stdout.write(`  ${k}: ${v}\n`);
    if (ex.requestBody) process.stdout.write(`  body: ${ex.requestBody}\n`);
    if (ex.status !== undefined)
      process.stdout.write(
        `  → ${ex.status} in ${ex.durationMs} ms ${ex.responseBody ? `: ${ex.responseBody.slice(0, 300)}` : ""}\n`,
      );
    if (ex.error && ex.error.code !== "dry_run")
      process.stdout.write(`  → ${ex.error.code}: ${ex.error.message}\n`);
  }
  const ok = r.sent ? r.outcome.kind === "delivered" : r.auth.ok;
  process.stdout.write(
    `\n${r.sent ? `sent: ${r.outcome.kind}${r.outcome.code ? ` (${r.outcome.code}: ${r.outcome.message})` : ""}` : "dry run: nothing was sent (add --send to send a test lead)"}\n`,
  );
  return ok ? 0 : 1;
}

export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n") + "\n";
}

export function printTable(head: string[], rows: string[][]): void {
  process.stdout.write(formatTable(head, rows));
}
