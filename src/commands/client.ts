import type { AppErrorCode } from "../domain/codes.ts";
import { AppError } from "../util/errors.ts";

/** How CLI commands reach a running leadpush: --url / LEADPUSH_URL and --key / LEADPUSH_API_KEY. */
export interface ServerTarget {
  url: string;
  key: string | undefined;
}

export const SERVER_OPTIONS = {
  url: { type: "string" },
  key: { type: "string" },
} as const;

export function serverTarget(
  values: { url?: string | undefined; key?: string | undefined },
  env = process.env,
): ServerTarget {
  return {
    url: (values.url ?? env.LEADPUSH_URL ?? "http://localhost:8080").replace(/\/$/, ""),
    key: values.key ?? env.LEADPUSH_API_KEY ?? env.LEADPUSH_ADMIN_TOKEN,
  };
}

/** Calls the API; a non-2xx answer becomes an AppError with the server's code and message. */
export async function callApi<T = Record<string, unknown>>(
  target: ServerTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(target.url + path, {
      method,
      headers: {
        ...(target.key ? { authorization: `Bearer ${target.key}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new AppError(
      0,
      "server_unreachable",
      `cannot reach leadpush at ${target.url} (${(err as Error).cause ? String((err as { cause: Error }).cause.message) : String(err)}); is it running? set --url or LEADPUSH_URL`,
    );
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as { error?: { code: AppErrorCode; message: string } }) : {};
  if (!res.ok) {
    const e = json.error ?? { code: `http_${res.status}`, message: text.slice(0, 200) };
    const hint = res.status === 401 ? " (set --key or LEADPUSH_API_KEY to an API key)" : "";
    throw new AppError(res.status, e.code, e.message + hint);
  }
  return json as T;
}
