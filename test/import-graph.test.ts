import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { analyse, MAX_LINES, report } from "../scripts/import-graph.ts";

const script = join(import.meta.dirname, "..", "scripts", "import-graph.ts");
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A temporary src/ tree from { "path": "content" }. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "leadpush-graph-"));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

async function run(srcDir: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [script, srcDir]);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

const layered = {
  "app.ts": 'import { a } from "./api/a.ts";\nexport const app = a;\n',
  "api/a.ts": 'import type { B } from "../worker/b.ts";\nexport const a = 1;\nexport type A = B;\n',
  "worker/b.ts": 'export { c } from "../http/c.ts";\nexport type B = number;\n',
  "worker/b2.ts": 'export const load = () => import("../http/c.ts");\n',
  "http/c.ts": '// import { a } from "../api/a.ts";\nexport const c = "import x from \'../api/a.ts\'";\n',
};

test("import graph: a layered tree passes and counts every kind of relative import", async () => {
  const graph = analyse(tree(layered));
  assert.deepEqual(graph.cycles, []);
  assert.deepEqual(graph.longFiles, []);
  const counts = Object.fromEntries(
    [...graph.edges].map(([from, targets]) => [
      from,
      Object.fromEntries([...targets].map(([to, s]) => [to, s.length])),
    ]),
  );
  // Comments and strings that look like imports are not imports.
  assert.deepEqual(counts, { "app.ts": { "api/": 1 }, "api/": { "worker/": 1 }, "worker/": { "http/": 2 } });
  const { code, out } = await run(tree(layered));
  assert.equal(code, 0, out);
  assert.match(out, /worker\/\s+→ http\/ 2/);
});

test("import graph: two folders importing each other fail, naming the cycle and its imports", async () => {
  const direct = tree({
    ...layered,
    "http/c.ts": 'import type { A } from "../api/a.ts";\nexport const c = 1;\n',
  });
  assert.deepEqual(analyse(direct).cycles, [["api/", "worker/", "http/", "api/"]]);
  const { code, out } = await run(direct);
  assert.equal(code, 1, out);
  assert.match(out, /CYCLE: api\/ → worker\/ → http\/ → api\//);
  assert.match(out, /http\/c\.ts:1 imports api\/a\.ts/);

  const pair = tree({
    ...layered,
    "http/c.ts": 'export const c = async () => (await import("../worker/b.ts")).c;\n',
  });
  assert.deepEqual(analyse(pair).cycles, [["http/", "worker/", "http/"]]);
  assert.equal((await run(pair)).code, 1);
});

test("import graph: a file over the line limit fails, naming it", async () => {
  const long = tree({ ...layered, "http/long.ts": "export const x = 1;\n".repeat(MAX_LINES + 1) });
  const graph = analyse(long);
  assert.deepEqual(graph.longFiles, [{ file: "http/long.ts", lines: MAX_LINES + 1 }]);
  assert.equal(report(graph).ok, false);
  const { code, out } = await run(long);
  assert.equal(code, 1);
  assert.match(out, new RegExp(`TOO LONG: src/http/long\\.ts has ${MAX_LINES + 1} lines`));
  const atLimit = tree({ ...layered, "http/long.ts": "export const x = 1;\n".repeat(MAX_LINES) });
  assert.equal(report(analyse(atLimit)).ok, true);
});
