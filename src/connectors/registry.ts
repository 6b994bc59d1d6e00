import type { Connector } from "./connector.ts";
import { ejentoConnector } from "./ejento/connector.ts";
import { eminenceConnector } from "./eminence.ts";
import { httpConnector } from "./http.ts";
import { reworkedConnector } from "./reworked/connector.ts";
import { sevenTargetsConnector } from "./seventargets.ts";

/** Every connector, by name. Adding one = one file + one line here. */
export const CONNECTORS: Readonly<Record<string, Connector<never>>> = Object.freeze(
  Object.fromEntries(
    (
      [
        httpConnector,
        sevenTargetsConnector,
        eminenceConnector,
        ejentoConnector,
        reworkedConnector,
      ] as unknown as Connector<never>[]
    ).map((c) => [c.name, c]),
  ),
);

export function connector(name: string): Connector<never> | undefined {
  return Object.hasOwn(CONNECTORS, name) ? CONNECTORS[name] : undefined;
}
