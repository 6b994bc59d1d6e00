import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

// Random bytes are drawn 4 KB at a time: one `randomFillSync` per 256 ids instead of one per id
// (that call, not the entropy, was ~4 % of the CPU per lead under load).
const pool = new Uint8Array(16 * 256);
let offset = pool.length;
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
  const random = pool.subarray(offset, (offset += 16));
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
  return v7({ random, msecs: lastMs, seq });
}
