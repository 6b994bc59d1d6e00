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

/** Every auth strategy, by `auth.type`. Adding one = one file + one line here. */
export const AUTH_STRATEGIES: Readonly<Record<string, AuthStrategy<{ type: string }>>> = Object.freeze(
  Object.fromEntries(
    (
      [
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
      ] as unknown as AuthStrategy<{
        type: string;
      }>[]
    ).map((s) => [s.type, s]),
  ),
);

export function authStrategy(type: string): AuthStrategy<{ type: string }> | undefined {
  return Object.hasOwn(AUTH_STRATEGIES, type) ? AUTH_STRATEGIES[type] : undefined;
}
