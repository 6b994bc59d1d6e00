/** A delay that can be ended early: `done` resolves after `ms`, or at once when `wake()` is called. */
export function wakeableDelay(ms: number): { done: Promise<void>; wake: () => void } {
  let wake!: () => void;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(end, ms);
    function end() {
      clearTimeout(timer);
      resolve();
    }
    wake = end;
  });
  return { done, wake };
}
