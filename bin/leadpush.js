#!/usr/bin/env node
// Entry point for `npx leadpush` / a global install: runs the TypeScript CLI by type stripping (Node 24+).
// Plain JavaScript that an old Node can parse: it says what is needed instead of failing on `.ts`.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `leadpush needs Node 24 or later (this is Node ${process.versions.node}, at ${process.execPath}).\n` +
      "  → install Node 24, or run it through npm (npm start, npm run leadpush -- …), which uses the project's own Node 24\n",
  );
  process.exit(1);
}
const { run } = await import("../src/cli.ts");
run(process.argv.slice(2));
