#!/usr/bin/env node
// Entry point for `npx leadpush` / a global install: runs the TypeScript CLI by type stripping (Node 24+).
import { run } from "../src/cli.ts";

run(process.argv.slice(2));
