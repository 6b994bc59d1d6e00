import type { FastifyReply } from "fastify";
import type { Simulator } from "./simulator.ts";
import type { SimJwtVerifier } from "./sim-jwt.ts";
import {
  applyControl,
  ControlError,
  controlFailure,
  controlFlag,
  noFailure,
  nowIso,
  pick,
  registerStateRoutes,
  takeFailure,
  type FailNext,
} from "./vendor-common.ts";

/**
 * 7targets AI Sales Assistant API (the 7targets API document): `POST /leads` behind an API Gateway Cognito
 * authorizer. `Authorization: Bearer <IdToken>` (or `Authentication`, as the document writes it,
 * with `acceptHeader`); mandatory `name`, `type`, `source`, `email`, `assistantId`; 201 with the
 * lead, `state: "Cold"`, `subState: "Followup_1"`. Pass the Cognito simulator's `verifier`.
 * `createLeadApiSimulator` is the shared engine (Eminence uses it too).
 */

export interface LeadApiOptions {
  prefix?: string;
  /** Checks the bearer token: the issuing simulator's `verifier`. */
  verifier: SimJwtVerifier;
  /** Header carrying `Bearer <token>`: "Authorization" (default; what Cognito authorizers read) or "Authentication" (as the documents write it). */
  acceptHeader?: "Authorization" | "Authentication";
  /** Which token is accepted; default "id" (both documents use the IdToken). */
  tokenUse?: "id" | "access";
  /** Client ids whose tokens are accepted; default any client of the issuer. */
  audience?: string | readonly string[];
  /** First lead id; default 2345 (as in the documents). */
  firstId?: number;
  /** `nextScheduleTime` = now + this; default 300. */
  scheduleDelaySeconds?: number;
  /** `scheduleId` echoed when none is sent; default 1. */
  defaultScheduleId?: number | string;
}
export interface LeadRecord {
  id: number;
  receivedAt: string;
  body: Record<string, unknown>;
  response: Record<string, unknown>;
  /** `sub` of the token the lead came with. */
  sub: string | undefined;
  idempotencyKey: string | undefined;
}
export interface LeadApiState {
  /** Every POST /leads received, accepted or not. */
  requests: number;
  accepted: LeadRecord[];
  rejected: Array<{ at: string; status: number; reason: string }>;
}
export interface LeadApiControl {
  /** `{status: 503, count?: 1, body?, retryAfterSeconds?}` (after the token check). */
  failNext?: FailNext;
  acceptHeader?: "Authorization" | "Authentication";
  reset?: boolean;
}
export interface LeadApiSimulator extends Simulator {
  readonly state: LeadApiState;
  control(c: LeadApiControl): void;
}
export interface LeadApiSpec {
  name: string;
  defaultPrefix: string;
  /** Fields that must be present and non-empty. */
  mandatory: readonly string[];
  /** Fields that, when present, must be strings. */
  strings: readonly string[];
  /** Builds the 201 body. */
  respond(
    body: Record<string, unknown>,
    ctx: { id: number; nextScheduleTime: string },
  ): Record<string, unknown>;
}

export type SevenTargetsSimulatorOptions = LeadApiOptions;
export type SevenTargetsSimulator = LeadApiSimulator;

const UNAUTHORIZED = { message: "Unauthorized" };
const EXPIRED = { message: "The incoming token has expired" };
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function invalidField(
  spec: LeadApiSpec,
  lead: Record<string, unknown>,
): { message: string; field: string } | null {
  for (const field of spec.mandatory) {
    const v = lead[field];
    if (v === undefined || v === null || v === "") return { message: `${field} is mandatory`, field };
  }
  for (const field of spec.strings) {
    if (lead[field] !== undefined && typeof lead[field] !== "string") {
      return { message: `${field} must be a string`, field };
    }
  }
  if (typeof lead["email"] === "string" && !EMAIL.test(lead["email"])) {
    return { message: "email is not a valid email address", field: "email" };
  }
  return null;
}

export function createLeadApiSimulator(spec: LeadApiSpec, opts: LeadApiOptions): LeadApiSimulator {
  const newState = (): LeadApiState => ({ requests: 0, accepted: [], rejected: [] });
  let state = newState();
  let nextId = opts.firstId ?? 2345;
  let header = opts.acceptHeader ?? "Authorization";
  let failure = noFailure();
  const subs = new WeakMap<object, string | undefined>();

  const reject = (reply: FastifyReply, status: number, body: unknown, reason: string) => {
    state.rejected.push({ at: nowIso(), status, reason });
    if (status === 401) reply.header("x-amzn-ErrorType", "UnauthorizedException");
    return reply.code(status).send(body);
  };

  const sim: LeadApiSimulator = {
    name: spec.name,
    prefix: opts.prefix ?? spec.defaultPrefix,
    get state() {
      return state;
    },
    control: (body) =>
      applyControl(body, {
        failNext: (v) => void (failure = controlFailure(v, 500)),
        acceptHeader: (v) => {
          if (v !== "Authorization" && v !== "Authentication") {
            throw new ControlError('acceptHeader must be "Authorization" or "Authentication"');
          }
          header = v;
        },
        reset: (v) => void (controlFlag("reset", v) && sim.reset()),
      }),
    reset() {
      state = newState();
      nextId = opts.firstId ?? 2345;
      header = opts.acceptHeader ?? "Authorization";
      failure = noFailure();
    },
    register(app) {
      app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) =>
        reply.code(err.statusCode ?? 500).send({ message: err.message }),
      );
      const snapshot = () => ({ ...state, acceptHeader: header, failNext: failure });
      registerStateRoutes(app, snapshot, (body) => sim.control(body as LeadApiControl));
      // The authorizer answers in onRequest, before the body is read, as API Gateway does.
      const onRequest = async (req: { headers: Record<string, unknown> }, reply: FastifyReply) => {
        state.requests++;
        const raw = req.headers[header.toLowerCase()];
        const token = typeof raw === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(raw)?.[1] : undefined;
        if (token === undefined) return reject(reply, 401, UNAUTHORIZED, `no ${header}: Bearer`);
        const audience = opts.audience !== undefined ? { audience: opts.audience } : {};
        const result = opts.verifier.verify(token, { tokenUse: opts.tokenUse ?? "id", ...audience });
        if (!result.ok) {
          const body = result.reason === "expired" ? EXPIRED : UNAUTHORIZED;
          return reject(reply, 401, body, `token ${result.reason}`);
        }
        subs.set(req, typeof result.claims["sub"] === "string" ? result.claims["sub"] : undefined);
      };
      app.post("/leads", { onRequest }, async (req, reply) => {
        if (takeFailure(failure)) {
          if (failure.retryAfterSeconds !== undefined)
            reply.header("retry-after", `${failure.retryAfterSeconds}`);
          return reject(
            reply,
            failure.status,
            failure.body ?? { message: failure.message ?? "Simulated failure" },
            "failNext",
          );
        }
        const body = req.body;
        const isObject = typeof body === "object" && body !== null && !Array.isArray(body);
        if (!isObject || Object.keys(body).length === 0) {
          const message = isObject ? "The body can't be empty" : "The body must be a JSON object";
          return reject(reply, 400, { message }, "empty body");
        }
        const lead = body as Record<string, unknown>;
        const invalid = invalidField(spec, lead);
        if (invalid) return reject(reply, 400, invalid, invalid.message);
        const id = nextId++;
        const nextScheduleTime = new Date(
          Date.now() + (opts.scheduleDelaySeconds ?? 300) * 1000,
        ).toISOString();
        const response = spec.respond(
          { scheduleId: opts.defaultScheduleId ?? 1, ...lead },
          { id, nextScheduleTime },
        );
        const idem = req.headers["idempotency-key"];
        const idempotencyKey = typeof idem === "string" ? idem : undefined;
        state.accepted.push({
          id,
          receivedAt: nowIso(),
          body: lead,
          response,
          sub: subs.get(req),
          idempotencyKey,
        });
        return reply.code(201).send(response);
      });
    },
  };
  return sim;
}

/** Fields the document's 201 response lists (in its order), copied from the request when sent. */
const ECHOED = ["name", "lastName", "type", "email", "phone", "scheduleId", "assistantId"] as const;

export function createSevenTargetsSimulator(opts: SevenTargetsSimulatorOptions): SevenTargetsSimulator {
  return createLeadApiSimulator(
    {
      name: "seventargets",
      defaultPrefix: "/seventargets",
      mandatory: ["name", "type", "source", "email", "assistantId"],
      strings: [
        "name",
        "lastName",
        "type",
        "source",
        "context",
        "additionalInformationLine",
        "email",
        "phone",
      ],
      respond: (body, ctx) => ({
        id: ctx.id,
        ...pick(body, ECHOED),
        nextScheduleTime: ctx.nextScheduleTime,
        state: "Cold",
        subState: "Followup_1",
      }),
    },
    opts,
  );
}
