// Ordering for firewall operations. Operations on one key (a source address)
// run one after another in call order, so an open and a close for the same
// source can never interleave; different sources proceed in parallel.
// Exclusive operations (init, shutdown) wait for everything started before
// them and hold back everything started after them.

export interface Serializer {
  keyed<T>(key: string, fn: () => Promise<T>): Promise<T>;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

const settle = (p: Promise<unknown>): Promise<void> =>
  p.then(
    () => undefined,
    () => undefined,
  );

export function createSerializer(): Serializer {
  let barrier: Promise<void> = Promise.resolve();
  const tails = new Map<string, Promise<void>>();

  return {
    keyed(key, fn) {
      const before = tails.get(key);
      const run = Promise.all([barrier, before]).then(fn);
      const tail = settle(run);
      tails.set(key, tail);
      // Forget finished keys so the map does not grow with every source ever seen.
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return run;
    },
    exclusive(fn) {
      const run = Promise.all([barrier, ...tails.values()]).then(fn);
      barrier = settle(run);
      tails.clear();
      return run;
    },
  };
}
