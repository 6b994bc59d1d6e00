import { v7 } from "uuid";

/** Time-ordered ids (UUIDv7): sortable, so list cursors are simply "id < last". */
export function newId(): string {
  return v7();
}
