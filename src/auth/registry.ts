import { basicAuth } from "./basic.ts";
import { ejentoAuth } from "./ejento.ts";
import { noneAuth } from "./none.ts";
import { reworkedAuth } from "./reworked.ts";
import { staticKeyAuth } from "./static-key.ts";
import type { AuthStrategy } from "./strategy.ts";

/** Every auth strategy, by `auth.type`. Adding one = one file + one line here. */
export const AUTH_STRATEGIES: Readonly<Record<string, AuthStrategy<{ type: string }>>> = Object.freeze(
  Object.fromEntries(
    (
      [noneAuth, basicAuth, staticKeyAuth, ejentoAuth, reworkedAuth] as unknown as AuthStrategy<{
        type: string;
      }>[]
    ).map((s) => [s.type, s]),
  ),
);

export function authStrategy(type: string): AuthStrategy<{ type: string }> | undefined {
  return Object.hasOwn(AUTH_STRATEGIES, type) ? AUTH_STRATEGIES[type] : undefined;
}
