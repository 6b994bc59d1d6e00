import type { Connector } from "./connector.ts";
import { ejentoConnector } from "./ejento/connector.ts";
import { eminenceConnector } from "./eminence.ts";
import { httpConnector } from "./http.ts";
import { reworkedConnector } from "./reworked/connector.ts";
import { sevenTargetsConnector } from "./seventargets.ts";

/**
 * Every built-in connector. Adding one = one file (or folder) + one line here; its admin routes
 * and CLI commands come with its entry (`adminRoutes`, `commands`).
 */
export const BUILT_IN_CONNECTORS = [
  httpConnector,
  sevenTargetsConnector,
  eminenceConnector,
  ejentoConnector,
  reworkedConnector,
] as const satisfies readonly Connector<unknown>[];

export type ConnectorName = (typeof BUILT_IN_CONNECTORS)[number]["name"];

const connectors: Record<string, Connector<unknown>> = Object.fromEntries(
  BUILT_IN_CONNECTORS.map((c) => [c.name, c]),
);

/** Every connector, by name: the built-in ones and those added by `registerConnector`. */
export const CONNECTORS: Readonly<Record<string, Connector<unknown>>> = connectors;

/**
 * Adds a connector at run time (an embedding program, a test) before the server is built (its
 * admin routes are registered then). A name that is taken is refused.
 */
export function registerConnector<C>(c: Connector<C>): void {
  if (Object.hasOwn(connectors, c.name)) throw new Error(`connector "${c.name}" is already registered`);
  connectors[c.name] = c as Connector<unknown>;
}

export function connector(name: string): Connector<unknown> | undefined {
  return Object.hasOwn(CONNECTORS, name) ? CONNECTORS[name] : undefined;
}
