import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensurePrivateDir, PRIVATE_FILE_MODE, restrictFiles } from "./private-files.ts";

/** AES-256-GCM encryption of secrets at rest. Format: `v1.<iv>.<tag>.<ciphertext>` (base64url). */
export interface SecretBox {
  seal(plain: string): string;
  open(sealed: string): string;
}

export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (key.length !== 32) {
    throw new Error("LEADPUSH_SECRET_KEY must be 32 bytes, written as 64 hex characters or base64");
  }
  return key;
}

export function createSecretBox(key: Buffer): SecretBox {
  return {
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const ct = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return ["v1", iv.toString("base64url"), tag.toString("base64url"), ct.toString("base64url")].join(".");
    },
    open(sealed) {
      const [v, iv, tag, ct] = sealed.split(".");
      if (v !== "v1" || !iv || !tag || ct === undefined)
        throw new Error("sealed secret has an unknown format");
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString(
        "utf8",
      );
    },
  };
}

/**
 * The master key: LEADPUSH_SECRET_KEY when set; otherwise `<dataDir>/secret.key`, generated with
 * mode 0600 (in a 0700 data directory) on the first embedded start. `generated` tells the caller to
 * say so in the log. An existing key file readable by others is tightened to 0600.
 */
export function loadOrCreateMasterKey(
  configured: string | undefined,
  dataDir: string,
  allowGenerate: boolean,
): { key: Buffer; generated: string | undefined } {
  if (configured) return { key: parseMasterKey(configured), generated: undefined };
  const file = join(dataDir, "secret.key");
  if (existsSync(file)) {
    restrictFiles([file]);
    return { key: parseMasterKey(readFileSync(file, "utf8")), generated: undefined };
  }
  if (!allowGenerate) {
    throw new Error("LEADPUSH_SECRET_KEY is required with Postgres (every worker must share the same key)");
  }
  ensurePrivateDir(dataDir);
  const key = randomBytes(32);
  writeFileSync(file, key.toString("hex") + "\n", { mode: PRIVATE_FILE_MODE });
  chmodSync(file, PRIVATE_FILE_MODE);
  return { key, generated: file };
}
