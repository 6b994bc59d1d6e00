import type { z } from "zod";
import type { AppErrorCode, DetailCode } from "../domain/codes.ts";

/**
 * An error meant for the API caller: a stable snake_case `code`, an HTTP status and an actionable
 * message. `details` points at the offending input (`path` is a JSON path array).
 */
export interface ErrorDetail {
  path: (string | number)[];
  message: string;
  /** Ours, or zod's when a schema refused the value. */
  code?: DetailCode | z.core.$ZodIssue["code"];
  /** Where in a JSONata expression it went wrong (a character offset), when the error is about one. */
  position?: number;
}

export class AppError extends Error {
  readonly code: AppErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[];
  constructor(
    status: number,
    code: AppErrorCode,
    message: string,
    details: ErrorDetail[] = [],
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const notFound = (what: string, id: string): AppError =>
  new AppError(404, "not_found", `${what} "${id}" does not exist`);
