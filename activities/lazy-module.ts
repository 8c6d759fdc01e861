/**
 * A module's functions, loaded on the first call of any of them: what a host worker imports for
 * its activities (undici, tar, execa, yaml, the upgrade steps) stays out of an idle worker until a
 * run needs it. A failed load is retried on the next call.
 */

type AsyncFunctions<M> = {
  [K in keyof M as M[K] extends (...args: never[]) => unknown ? K : never]: M[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

export function lazyModule<M extends object>(load: () => Promise<M>): AsyncFunctions<M> {
  let loading: Promise<M> | undefined;
  const loaded = () =>
    (loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    }));
  return new Proxy({} as AsyncFunctions<M>, {
    get(_target, name) {
      // Not a thenable, and nothing but named functions.
      if (typeof name !== 'string' || name === 'then') return undefined;
      return async (...args: unknown[]) => {
        const fn = (await loaded())[name as keyof M];
        if (typeof fn !== 'function') throw new TypeError(`${name} is not a function of the lazily loaded module`);
        return (fn as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
}
