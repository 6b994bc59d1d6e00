import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";

/** Owner-only modes for what leadpush keeps on disk: personal data and the master key. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes `dir` (and missing parents) owner-only. A directory that already exists with group or
 * other access is tightened to 0700; the paths tightened are returned, for the caller to log.
 */
export function ensurePrivateDir(dir: string): string[] {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return tighten(dir, PRIVATE_DIR_MODE);
}

/** Creates `dir` owner-only when missing; an existing one (possibly shared) is left as it is. */
export function createPrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** Creates an empty file with mode 0600 when missing, so whatever opens it next never widens it. */
export function createPrivateFile(path: string): void {
  closeSync(openSync(path, "a", PRIVATE_FILE_MODE));
}

/** Existing files among `paths` readable by group or others are made 0600; returns those. */
export function restrictFiles(paths: readonly string[]): string[] {
  return paths.flatMap((p) => tighten(p, PRIVATE_FILE_MODE));
}

function tighten(path: string, mode: number): string[] {
  let current: number;
  try {
    current = statSync(path).mode & 0o777;
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return [];
    throw err;
  }
  if ((current & 0o077) === 0) return [];
  chmodSync(path, mode);
  return [path];
}
