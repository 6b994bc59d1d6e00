// The worker's slot accounting (src/delivery/slots.ts): fair shares between destinations, without a
// database.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ResolvedDestination } from "../src/destinations/model.ts";
import { DEMAND_WINDOW_MS, Slots } from "../src/delivery/slots.ts";

const dest = (id: string, concurrency: number) =>
  ({ id, concurrency, enabled: true, paused: false, state: "active" }) as unknown as ResolvedDestination;

const takeAll = (slots: Slots, d: ResolvedDestination, max = 2000) => {
  let n = 0;
  while (n < max && slots.take(d)) n++;
  return n;
};

test("a destination alone may use every slot it is configured for", () => {
  const slots = new Slots(128);
  assert.equal(takeAll(slots, dest("a", 64)), 64);
  assert.equal(takeAll(new Slots(128), dest("b", 1000)), 128);
});

test("a destination with work waiting caps the others at a fair share", () => {
  let now = 1_000_000;
  const slots = new Slots(128, () => now);
  const hanging = dest("hanging", 1000);
  const healthy = dest("healthy", 8);
  slots.want(healthy.id); // the worker was full when the healthy destination's lead came
  assert.equal(takeAll(slots, hanging), 64);
  // The healthy one gets its slots although the hanging one holds its share.
  assert.equal(takeAll(slots, healthy), 8);
  // A third destination with work lowers the share: the hanging one is over it and gets nothing more.
  const third = dest("third", 1000);
  assert.equal(takeAll(slots, third), 42);
  assert.equal(slots.take(hanging), false, "64 held, over its share of 42");
  // Claims exclude a destination at its share, so the others' rows are claimed.
  const plan = slots.plan([hanging, healthy, third], 128 - 114, 114, 128);
  assert.deepEqual([...plan.exclude].sort(), ["hanging", "healthy", "third"]);
  assert.equal(plan.atCapacity, true);
  for (let i = 0; i < 30; i++) slots.give(hanging.id);
  assert.equal(takeAll(slots, hanging), 42 - 34, "back under its share, it takes up to the share");
  // Once the others are idle past the window, the hanging one may use all it is configured for.
  for (let i = 0; i < 8; i++) slots.give(healthy.id);
  for (let i = 0; i < 42; i++) slots.give(third.id);
  now += DEMAND_WINDOW_MS + 1;
  assert.equal(takeAll(slots, hanging), 128 - 42);
});

test("the fair share is at least one slot", () => {
  const slots = new Slots(2);
  for (const id of ["a", "b", "c", "d"]) slots.want(id);
  assert.equal(takeAll(slots, dest("a", 10)), 1);
  assert.equal(takeAll(slots, dest("e", 10)), 1);
});
