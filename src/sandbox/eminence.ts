import { pick } from "./vendor-common.ts";
import { createLeadApiSimulator, type LeadApiOptions, type LeadApiSimulator } from "./seventargets.ts";

/**
 * The Eminence Co API (the Eminence API document): `POST /leads` with `Authorization: Bearer <id_token>` from
 * the Cognito hosted UI (authorization-code flow). Mandatory `name`, `email`; `source` defaults to
 * `Website`, `scheduleId` and `assistantId` to defaults; 201 with `type: "SALES"`,
 * `state: "Cold"`, `subState: "Followup"`, `followup: 1`. Pass the hosted-UI simulator's `verifier`.
 */

export interface EminenceSimulatorOptions extends LeadApiOptions {
  /** `assistantId` echoed when none is sent; default 1. */
  defaultAssistantId?: number | string;
}
export type EminenceSimulator = LeadApiSimulator;

const ECHOED = ["name", "lastName", "email", "phone", "source", "scheduleId", "assistantId"] as const;

export function createEminenceSimulator(opts: EminenceSimulatorOptions): EminenceSimulator {
  return createLeadApiSimulator(
    {
      name: "eminence",
      defaultPrefix: "/eminence",
      mandatory: ["name", "email"],
      strings: ["name", "lastName", "source", "context", "additionalInformationLine", "email", "phone"],
      respond: (body, ctx) => ({
        id: ctx.id,
        ...pick({ source: "Website", assistantId: opts.defaultAssistantId ?? 1, ...body }, ECHOED),
        type: "SALES",
        nextScheduleTime: ctx.nextScheduleTime,
        state: "Cold",
        subState: "Followup",
        followup: 1,
      }),
    },
    opts,
  );
}
