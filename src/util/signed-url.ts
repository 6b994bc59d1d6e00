import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/**
 * Signed, expiring tokens for URLs that vendors call without an API key (a batch's file and
 * callback URLs). The token is the proof: `<id>.<expiry, base36 seconds>.<HMAC-SHA256>` with a
 * key derived (HKDF) from the master key, bound to what the URL is for (`kind`).
 */
export interface UrlSigner {
  sign(kind: string, id: string, expiresAt: number): string;
  verify(
    kind: string,
    token: string,
    now: number,
  ): { ok: true; id: string } | { ok: false; reason: "invalid" | "expired" };
}

export function createUrlSigner(masterKey: Buffer): UrlSigner {
  const key = Buffer.from(hkdfSync("sha256", masterKey, Buffer.alloc(0), "leadpush signed urls v1", 32));
  const mac = (kind: string, id: string, exp: string) =>
    createHmac("sha256", key).update(`${kind}\n${id}\n${exp}`).digest();
  return {
    sign(kind, id, expiresAt) {
      const exp = Math.ceil(expiresAt / 1000).toString(36);
      return `${id}.${exp}.${mac(kind, id, exp).toString("base64url")}`;
    },
    verify(kind, token, now) {
      const [id, exp, sig, extra] = token.split(".");
      if (!id || !exp || !sig || extra !== undefined || !/^[0-9a-z]+$/.test(exp))
        return { ok: false, reason: "invalid" };
      // Compare the text: base64url has non-canonical spellings of the same bytes.
      const given = Buffer.from(sig);
      const want = Buffer.from(mac(kind, id, exp).toString("base64url"));
      if (given.length !== want.length || !timingSafeEqual(given, want))
        return { ok: false, reason: "invalid" };
      if (parseInt(exp, 36) * 1000 < now) return { ok: false, reason: "expired" };
      return { ok: true, id };
    },
  };
}
