import { createHmac, randomBytes } from "node:crypto";

/** A new Standard Webhooks secret: `whsec_` and 24 random bytes in base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/** True when `s` is a `whsec_` secret whose key decodes to 16–64 bytes. */
export function isWebhookSecret(s: string): boolean {
  if (!s.startsWith("whsec_")) return false;
  const b64 = s.slice(6);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const n = Buffer.from(b64, "base64").length;
  return n >= 16 && n <= 64;
}

/**
 * The Standard Webhooks headers for one message: HMAC-SHA256 over `${id}.${timestamp}.${body}`
 * with the secret's decoded key, base64, prefixed `v1,` (what the `standardwebhooks` library
 * verifies; the timestamp is in seconds).
 */
export function signWebhook(
  secret: string,
  id: string,
  timestampS: number,
  body: string,
): Record<string, string> {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const sig = createHmac("sha256", key).update(`${id}.${timestampS}.${body}`).digest("base64");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampS),
    "webhook-signature": `v1,${sig}`,
  };
}
