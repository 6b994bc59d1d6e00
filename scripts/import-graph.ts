// The folder-level import graph of src/, and the two structure rules `npm run check` enforces:
// no two top-level entries of src/ import each other (directly or round a longer cycle), and no
// source file is over MAX_LINES lines. Nodes are src/'s top-level folders ("api/") and files
// ("app.ts"); an edge counts the relative imports (static, `export … from`, `import type`,
// dynamic `import("…")`) from files of one node to files of another.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

export const MAX_LINES = 400;

export interface ImportSite {
  file: string; // relative to the src directory, with "/" separators
  line: number;
  target: string; // the imported file, relative to the src directory
}

export interface Graph {
  /** from node → to node → the imports that make the edge */
  edges: Map<string, Map<string, ImportSite[]>>;
  /** cycles as closed paths of nodes (first = last): every pair that imports each other, then
   * the shortest cycle through each node that is on one */
  cycles: string[][];
  longFiles: { file: string; lines: number }[];
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (entry.name.endsWith(".ts")) out.push(full);
  }
  return out.sort();
}

function nodeOf(relative: string): string {
  const [first, ...rest] = relative.split("/");
  return rest.length > 0 ? `${first}/` : (first ?? relative);
}

function lineOf(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

export function analyse(srcDir: string): Graph {
  const root = path.resolve(srcDir);
  const edges = new Map<string, Map<string, ImportSite[]>>();
  const longFiles: Graph["longFiles"] = [];
  for (const full of sourceFiles(root)) {
    const file = path.relative(root, full).split(path.sep).join("/");
    const text = readFileSync(full, "utf8");
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (lines > MAX_LINES) longFiles.push({ file, lines });
    const from = nodeOf(file);
    for (const imported of ts.preProcessFile(text, true, true).importedFiles) {
      if (!imported.fileName.startsWith(".")) continue;
      const resolved = path.resolve(path.dirname(full), imported.fileName);
      const target = path.relative(root, resolved).split(path.sep).join("/");
      if (target.startsWith("..")) continue; // outside src/
      const to = nodeOf(target);
      if (to === from) continue;
      const byTarget = edges.get(from) ?? new Map<string, ImportSite[]>();
      edges.set(from, byTarget);
      const sites = byTarget.get(to) ?? [];
      byTarget.set(to, sites);
      sites.push({ file, line: lineOf(text, imported.pos), target });
    }
  }
  return { edges, cycles: findCycles(edges), longFiles };
}

/** Tarjan's strongly connected components; each group of two or more nodes yields one cycle. */
function findCycles(edges: Graph["edges"]): string[][] {
  const nodes = new Set<string>(edges.keys());
  for (const targets of edges.values()) for (const to of targets.keys()) nodes.add(to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const to of edges.get(node)?.keys() ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const group: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      group.push(member);
    } while (member !== node);
    if (group.length > 1) groups.push(group);
  };
  for (const node of [...nodes].sort()) if (!index.has(node)) visit(node);
  const cycles = new Map<string, string[]>();
  for (const [from, targets] of edges) {
    for (const to of targets.keys()) {
      if (from < to && edges.get(to)?.has(from)) cycles.set(`${from} ${to}`, [from, to, from]);
    }
  }
  for (const group of groups) {
    for (const start of [...group].sort()) {
      const cycle = cycleThrough(edges, new Set(group), start);
      const key = rotate(cycle).join(" ");
      if (!cycles.has(key)) cycles.set(key, cycle);
    }
  }
  return [...cycles.values()];
}

/** The same cycle, started at its smallest node: two starts of one cycle compare equal. */
function rotate(cycle: string[]): string[] {
  const open = cycle.slice(1);
  const at = open.indexOf([...open].sort()[0]!);
  return [...open.slice(at), ...open.slice(0, at)];
}

/** The shortest path from start back to itself inside its strongly connected group. */
function cycleThrough(edges: Graph["edges"], group: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of [...(edges.get(node)?.keys() ?? [])].sort()) {
      if (!group.has(to)) continue;
      if (to === start) {
        const back = [node];
        while (back[0] !== start) back.unshift(previous.get(back[0]!)!);
        return [...back, start];
      }
      if (!previous.has(to) && to !== start) {
        previous.set(to, node);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

export function report(graph: Graph): { text: string; ok: boolean } {
  const out: string[] = ["import graph of src/ (from → to: imports)"];
  for (const from of [...graph.edges.keys()].sort()) {
    const targets = graph.edges.get(from)!;
    const list = [...targets.keys()].sort().map((to) => `${to} ${targets.get(to)!.length}`);
    out.push(`  ${from.padEnd(16)} → ${list.join(", ")}`);
  }
  for (const cycle of graph.cycles) {
    out.push(`CYCLE: ${cycle.join(" → ")}`);
    // The edge with the fewest imports is usually the one running back up: it comes first.
    const steps = cycle.slice(1).map((to, i) => graph.edges.get(cycle[i]!)?.get(to) ?? []);
    for (const sites of steps.sort((a, b) => a.length - b.length)) {
      for (const site of sites) out.push(`  ${site.file}:${site.line} imports ${site.target}`);
    }
  }
  for (const long of graph.longFiles)
    out.push(`TOO LONG: src/${long.file} has ${long.lines} lines (max ${MAX_LINES})`);
  const ok = graph.cycles.length === 0 && graph.longFiles.length === 0;
  out.push(ok ? "ok: no cycles between top-level entries, no file over the limit" : "failed");
  return { text: out.join("\n"), ok };
}

if (import.meta.main) {
  const srcDir = process.argv[2] ?? path.join(import.meta.dirname, "..", "src");
  const { text, ok } = report(analyse(srcDir));
  console.log(text);
  process.exitCode = ok ? 0 : 1;
}
