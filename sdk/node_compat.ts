/**
 * What js-libp2p needs that Node 20 lacks: `Promise.withResolvers` (Node 22
 * and Deno have it). Imported before libp2p, so it is in place before any
 * libp2p module runs.
 * @module
 */
const promise = Promise as unknown as {
  withResolvers?: <T>() => {
    promise: Promise<T>;
    resolve: (value: T | PromiseLike<T>) => void;
    reject: (reason?: unknown) => void;
  };
};
if (!promise.withResolvers) {
  promise.withResolvers = <T>() => {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const created = new Promise<T>((yes, no) => {
      resolve = yes;
      reject = no;
    });
    return { promise: created, resolve, reject };
  };
}
