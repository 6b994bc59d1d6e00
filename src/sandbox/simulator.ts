import type { FastifyInstance } from "fastify";

/**
 * One simulated vendor system. Every simulator is one file that exports a factory returning this
 * shape; `src/sandbox/server.ts` mounts each under its own `prefix` on one Fastify server, so
 * `leadpush sandbox` serves all of them on one port.
 *
 * Simulators are as strict as the vendor document they imitate: a missing or wrong header,
 * field name, field case or content type is rejected with the status the vendor would plausibly send.
 */
export interface Simulator {
  /** Short stable name, e.g. "csrf" or "seventargets". */
  readonly name: string;
  /** URL prefix the routes are mounted under, e.g. "/csrf". Starts with "/", no trailing "/". */
  readonly prefix: string;
  /** Adds the routes, relative to `prefix` (Fastify's `register(..., { prefix })` does the joining). */
  register(app: FastifyInstance): void | Promise<void>;
  /** Forget everything recorded and every configured failure (tests call it between cases). */
  reset(): void;
}
