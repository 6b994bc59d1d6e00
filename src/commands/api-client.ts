/**
 * A tiny client for commands that act on a running server: `--url` (default LEADPUSH_URL, else
 * http://localhost:8080) and `--key` (default LEADPUSH_API_KEY). The CLI reads the environment
 * for these two defaults only, at the edge, as `loadConfig` does for the server.
 */
export interface ApiTarget {
  url: string;
  key: string | undefined;
}

export const API_OPTIONS = {
  url: { type: "string" },
  key: { type: "string" },
} as const;

export function apiTarget(values: { url?: string | undefined; key?: string | undefined }): ApiTarget {
  return {
    url: (values.url ?? process.env.LEADPUSH_URL ?? "http://localhost:8080").replace(/\/+$/, ""),
    key: values.key ?? process.env.LEADPUSH_API_KEY,
  };
}

export class ApiCallError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function callApi(
  target: ApiTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (target.key) headers.authorization = `Bearer ${target.key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(target.url + path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiCallError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? text.slice(0, 300));
  }
  return parsed;
}
