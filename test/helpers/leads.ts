// Small helpers for tests that create destinations and follow deliveries through the API.
import assert from "node:assert/strict";
import { eventually, type TestApp } from "./harness.ts";

/** Fast retries for tests: six attempts within about a second. */
export const FAST_RETRY = { delaysMs: [100, 100, 100, 200, 200], jitter: 0 };

/** The Housing lead-push document's sample payload, as a mapping over the canonical lead. */
export const SEED_002_MAPPING = {
  name: "name",
  email: "email",
  mobile_number: "phone",
  city: "city",
  project_id: "projectId",
};

export interface DeliveryView {
  id: string;
  leadId: string;
  status: string;
  attemptCount: number;
  lastError: { code: string; message: string } | null;
  attempts: {
    number: number;
    outcome: string;
    error: { code: string; message: string } | null;
    exchanges: { step: string; status?: number; requestHeaders: Record<string, string> }[];
  }[];
}

/**
 * Creates an `http` destination that only gets leads whose `source` is its name (so destinations
 * of different tests never share leads), with fast retries and a short timeout.
 */
export async function createDestination(t: TestApp, name: string, spec: Record<string, unknown>) {
  const res = await t.api("POST", "/v1/destinations", {
    name,
    connector: "http",
    filter: `source = "${name}"`,
    timeoutMs: 1000,
    retry: FAST_RETRY,
    ...spec,
  });
  assert.equal(res.status, 201, res.text);
  return res.body as { id: string; name: string } & Record<string, unknown>;
}

let seq = 0;

/** Posts one lead for the destination `name`; returns its id. */
export async function postLead(
  t: TestApp,
  name: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  seq++;
  const res = await t.api("POST", "/v1/leads", {
    name: "Asha",
    email: `asha.${seq}@example.com`,
    phone: `+9198${String(seq).padStart(8, "0")}`, // unique: repeats are linked as duplicates
    city: "Pune",
    projectId: "PRJ-7",
    source: name,
    ...extra,
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.deliveries.length, 1, `lead for ${name} should match exactly one destination`);
  return res.body.id as string;
}

/** The (only) delivery of a lead. */
export async function deliveryOf(t: TestApp, leadId: string): Promise<DeliveryView> {
  const res = await t.api("GET", `/v1/leads/${leadId}`);
  assert.equal(res.status, 200, res.text);
  return res.body.deliveries[0] as DeliveryView;
}

/** Waits until the lead's delivery has `status`; returns it. */
export function waitStatus(
  t: TestApp,
  leadId: string,
  status: string,
  timeoutMs = 8000,
): Promise<DeliveryView> {
  return eventually(
    async () => {
      const d = await deliveryOf(t, leadId);
      return d.status === status ? d : undefined;
    },
    timeoutMs,
    `lead ${leadId} ${status}`,
  );
}
