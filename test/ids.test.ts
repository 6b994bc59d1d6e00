import assert from "node:assert/strict";
import { test } from "node:test";
import { newId } from "../src/util/ids.ts";

test("ids are UUIDv7, unique and strictly increasing across many in one millisecond", () => {
  const ids = Array.from({ length: 5000 }, () => newId());
  for (const id of ids)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
  // The random tails differ (the pool is refilled, not reused).
  assert.equal(new Set(ids.map((id) => id.slice(-12))).size, ids.length);
  const ms = parseInt(ids[0]!.replace(/-/g, "").slice(0, 12), 16);
  assert.ok(Math.abs(ms - Date.now()) < 5000);
});
