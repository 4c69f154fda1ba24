/**
 * What js-libp2p needs from the runtime and Node 20 or Deno lack, put in
 * place before any libp2p module runs (the p2p transport imports this file
 * first):
 *
 * - `Promise.withResolvers` (Node 22 and Deno have it; Node 20 does not);
 * - `BroadcastChannel.prototype.unref` under Deno: libp2p's lock library
 *   opens a channel and unrefs it so that it never keeps a process alive;
 *   Deno's channel has no `unref`, only an internal symbol doing the same,
 *   and without it a Deno program using the p2p transport never exits.
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

const channel = globalThis.BroadcastChannel?.prototype as
  | (BroadcastChannel & { unref?: () => void })
  | undefined;
const refSymbol = channel && "Deno" in globalThis
  ? Object.getOwnPropertySymbols(channel).find((symbol) =>
    symbol.description === "refBroadcastChannel"
  )
  : undefined;
if (channel && refSymbol && !channel.unref) {
  Object.defineProperty(channel, "unref", {
    configurable: true,
    writable: true,
    value(this: Record<symbol, (ref: boolean) => void>) {
      this[refSymbol](false);
    },
  });
}
