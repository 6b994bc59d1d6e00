import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

// Three ids per lead (lead, delivery, attempt) made this a measurable share of the CPU and of the
// garbage per lead, so: random bytes are drawn 4 KB at a time (one `randomFillSync` per 256 ids,
// not one per id), uuid writes the 16 bytes into a buffer kept here, and the text form is made
// with one allocation (uuid's own formatting concatenates 20 strings).
const pool = new Uint8Array(16 * 256);
let offset = pool.length;
const random = new Uint8Array(16);
const bytes = Buffer.alloc(16);
const text = Buffer.alloc(36);
const HEX = Buffer.from("0123456789abcdef", "latin1");
// uuid's own monotonic state is used only when it draws its own randomness, so it is kept here
// (same rule as uuid's v7: a new millisecond starts a random sequence, the same one counts up).
let lastMs = -Infinity;
let seq = 0;

/** Time-ordered ids (UUIDv7): sortable, so list cursors are simply "id < last". */
export function newId(): string {
  if (offset + 16 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  for (let i = 0; i < 16; i++) random[i] = pool[offset + i] as number;
  offset += 16;
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    seq =
      (((random[6] as number) & 0x7f) << 24) |
      ((random[7] as number) << 16) |
      ((random[8] as number) << 8) |
      (random[9] as number);
  } else {
    seq = (seq + 1) | 0;
    if (seq === 0) lastMs++;
  }
  v7({ random, msecs: lastMs, seq }, bytes, 0);
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d; // "-"
    const b = bytes[i] as number;
    text[j++] = HEX[b >> 4] as number;
    text[j++] = HEX[b & 15] as number;
  }
  return text.toString("latin1", 0, 36);
}
