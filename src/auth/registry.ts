import type { z } from "zod";
import { basicAuth } from "./basic.ts";
import { cognitoAuth } from "./cognito.ts";
import { csrfAuth } from "./csrf.ts";
import { ejentoAuth } from "./ejento.ts";
import { keyTokenAuth } from "./key-token.ts";
import { noneAuth } from "./none.ts";
import { oauth2Auth } from "./oauth2.ts";
import { oauth2CodeAuth } from "./oauth2-code.ts";
import { reworkedAuth } from "./reworked.ts";
import { staticKeyAuth } from "./static-key.ts";
import type { AuthStrategy } from "./strategy.ts";

/** Every built-in auth strategy. Adding one = one file + one line here. */
export const BUILT_IN_AUTH_STRATEGIES = [
  noneAuth,
  basicAuth,
  staticKeyAuth,
  csrfAuth,
  keyTokenAuth,
  oauth2Auth,
  cognitoAuth,
  oauth2CodeAuth,
  ejentoAuth,
  reworkedAuth,
] as const satisfies readonly AuthStrategy<{ type: string }>[];

/** A destination's `auth` object, as its strategy's schema outputs it: one member per built-in strategy. */
export type AuthConfig = z.output<(typeof BUILT_IN_AUTH_STRATEGIES)[number]["schema"]>;
export type AuthType = AuthConfig["type"];

const strategies: Record<string, AuthStrategy<{ type: string }>> = Object.fromEntries(
  BUILT_IN_AUTH_STRATEGIES.map((s) => [s.type, s]),
);

/** Every auth strategy, by `auth.type`: the built-in ones and those added by `registerAuthStrategy`. */
export const AUTH_STRATEGIES: Readonly<Record<string, AuthStrategy<{ type: string }>>> = strategies;

/**
 * Adds a strategy at run time (an embedding program, a test), before destinations using it are
 * created. A type that is taken is refused: a strategy is never replaced under its destinations.
 */
export function registerAuthStrategy<C extends { type: string }>(strategy: AuthStrategy<C>): void {
  if (Object.hasOwn(strategies, strategy.type))
    throw new Error(`auth type "${strategy.type}" is already registered`);
  strategies[strategy.type] = strategy as AuthStrategy<{ type: string }>;
}

export function authStrategy(type: string): AuthStrategy<{ type: string }> | undefined {
  return Object.hasOwn(AUTH_STRATEGIES, type) ? AUTH_STRATEGIES[type] : undefined;
}
