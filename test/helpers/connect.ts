import assert from "node:assert/strict";
import { eventually, type TestApp } from "./harness.ts";

export { freePort } from "./harness.ts";

/** The shape of a delivery in `GET /v1/leads/:id`. */
export interface DeliveryView {
  id: string;
  status: string;
  attemptCount: number;
  externalId: string | null;
  response: Record<string, unknown> | null;
  lastError: { code: string; message: string } | null;
  attempts: {
    error: { code: string; message: string } | null;
    exchanges: { step: string; status?: number }[];
  }[];
}

export async function createDestination(t: TestApp, body: Record<string, unknown>) {
  const res = await t.api("POST", "/v1/destinations", body);
  assert.equal(res.status, 201, res.text);
  return res.body as Record<string, unknown> & { id: string; name: string; state: string };
}

export async function postLead(t: TestApp, lead: Record<string, unknown>): Promise<string> {
  const res = await t.api("POST", "/v1/leads", lead);
  assert.equal(res.status, 201, res.text);
  return (res.body as { id: string }).id;
}

export async function deliveryOf(t: TestApp, leadId: string): Promise<DeliveryView> {
  const res = await t.api("GET", `/v1/leads/${leadId}`);
  return (res.body as { deliveries: DeliveryView[] }).deliveries[0]!;
}

/** Waits until the lead's (first) delivery passes `check`. */
export function waitDelivery(
  t: TestApp,
  leadId: string,
  check: (d: DeliveryView) => boolean,
  what = "delivery",
  timeoutMs = 10_000,
): Promise<DeliveryView> {
  return eventually(
    async () => {
      const d = await deliveryOf(t, leadId);
      return d && check(d) ? d : undefined;
    },
    timeoutMs,
    what,
  );
}

export const delivered = (t: TestApp, leadId: string) =>
  waitDelivery(t, leadId, (d) => d.status === "delivered", "delivered");

/** One browser step: GET with no automatic redirects. */
export async function browse(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { redirect: "manual", headers });
  return { status: res.status, location: res.headers.get("location"), text: await res.text() };
}
