/**
 * The HTTP transport of a node: the provider (artifacts, manifests, status)
 * with `POST /jobs` carried to the node's job service when it runs jobs.
 * @module
 */
import type { NodeTransport } from "../node/mod.ts";
import { type ProviderOptions, startProvider } from "./server.ts";

/** A provider's options, less what the node supplies (key, jobs). */
export type HttpTransportOptions = Omit<
  ProviderOptions,
  "key" | "jobs" | "peers"
>;

/**
 * The HTTP transport. Once listening, it tells the node its HTTP base URL
 * (the first `advertise` URL, else the bound address unless it is a
 * wildcard), which the node advertises in its capability record.
 */
export function httpTransport(options: HttpTransportOptions): NodeTransport {
  return {
    name: "http",
    async start(node) {
      const provider = await startProvider({
        ...options,
        key: node.key,
        jobs: node.jobs,
        peers: () => node.peers?.() ?? null,
      });
      const wildcard = options.hostname === undefined ||
        options.hostname === "0.0.0.0" || options.hostname === "::";
      node.httpUrl = options.advertise?.[0] ??
        (wildcard ? undefined : provider.url);
      return {
        info: { url: provider.url, port: provider.port },
        close: () => provider.close(),
      };
    },
  };
}
