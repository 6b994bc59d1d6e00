import { pino, type Logger } from "pino";

/** Paths pino blanks in every log line, whatever logged them. */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "secret",
  "*.secret",
  "clientSecret",
  "*.clientSecret",
  "*.*.clientSecret",
  "token",
  "*.token",
  "apiKey",
  "*.apiKey",
  "key",
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["x-csrf-token"]',
  "*.headers.user_token",
  "fields",
  "*.fields",
  "auth",
  "*.auth",
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: "leadpush" }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } },
    destination ?? process.stdout,
  );
}
