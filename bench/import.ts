// `npm run bench:import`: a million-row CSV through `leadpush import` into a running leadpush.
// Prints rows/s and the importer's RSS over time (it must stay flat: the file is streamed), beside
// a baseline in the same run: the RSS of a process that reads the same file whole.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN, startLeadpush } from "./leadpush.ts";

const ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 1_000_000);
const node = process.execPath;
const root = join(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "leadpush-import-bench-"));
const children: ChildProcess[] = [];
process.on("exit", () => children.forEach((c) => c.exitCode === null && c.kill("SIGTERM")));

const rssMb = (pid: number) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
};

async function writeFile(path: string) {
  const out = createWriteStream(path);
  out.write("first_name,last_name,email,mobile,city,project_id,notes\n");
  for (let i = 0; i < ROWS; i++) {
    const line = `Lead${i},Kumar,lead${i}@import.example,${9000000000 + (i % 999_999_999)},Pune,P${i % 97},"budget ${i % 90}L, 2BHK"\n`;
    if (!out.write(line)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((r) => out.end(r));
}

async function main() {
  const file = join(dir, "million.csv");
  await writeFile(file);
  const sizeMb = statSync(file).size / 1e6;
  console.log(`leadpush import bench — ${ROWS} rows, ${sizeMb.toFixed(0)} MB CSV`);

  // Baseline: what holding the file in memory costs (readFileSync + split).
  const base = spawn(
    node,
    [
      "-e",
      `const t=require('fs').readFileSync(${JSON.stringify(file)},'utf8').split('\\n');setTimeout(()=>{console.log(t.length)},300)`,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  let baseRss = 0;
  const baseTimer = setInterval(() => (baseRss = Math.max(baseRss, rssMb(base.pid!))), 50);
  await new Promise((r) => base.once("exit", r));
  clearInterval(baseTimer);

  const { proc: server, base: url } = await startLeadpush({ dir, db: "import.db" });
  children.push(server);
  const t0 = performance.now();
  const importer = spawn(node, [join(root, "src/cli.ts"), "import", file, "--url", url, "--key", ADMIN], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  children.push(importer);
  let out = "";
  importer.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(rssMb(importer.pid!)), 250);
  const deadline = setTimeout(() => importer.kill("SIGTERM"), 15 * 60_000);
  await new Promise((r) => importer.once("exit", r));
  clearTimeout(deadline);
  clearInterval(timer);
  const secs = (performance.now() - t0) / 1000;
  const q = (f: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * f))] ?? 0;
  console.log(out.trim());
  console.log(
    `importer RSS at 10% / 50% / 90% of the run: ${q(0.1).toFixed(0)} / ${q(0.5).toFixed(0)} / ${q(0.9).toFixed(0)} MB (peak ${Math.max(...samples).toFixed(0)} MB)`,
  );
  console.log(`baseline: reading the file whole takes ${baseRss.toFixed(0)} MB`);
  console.log(
    `server peak RSS: ${(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, "utf8"))?.[1] ?? 0) / 1024).toFixed(0)} MB`,
  );
  console.log(
    `bench: import_rows_per_s=${(ROWS / secs).toFixed(0)} importer_rss_mb=${Math.max(...samples).toFixed(0)} baseline_whole_file_mb=${baseRss.toFixed(0)}`,
  );
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
