/**
 * The libp2p transport of a node: joins the DHT (and mDNS in local mode),
 * advertises the node's capability when it runs jobs, carries
 * `/phase/job/1.0.0` to its job service, and announces it as a boot
 * provider when it serves artifacts.
 * @module
 */
import type { NodeTransport } from "../node/mod.ts";
import { publishBootProvider } from "./boot_providers.ts";
import { acceptJobs } from "./job_protocol.ts";
import { PhaseNode } from "./node.ts";

/** How long a node's start may wait to join through its bootstrap peers. */
const NODE_JOIN_TIMEOUT_MS = 30_000;

/** How a node joins libp2p. */
export interface P2pTransportOptions {
  /** Listen multiaddrs (default `/ip4/0.0.0.0/tcp/4001`). */
  listen?: string[];
  /** Peers to dial at start. */
  bootstrap?: string[];
  /** `local` adds mDNS; `internet` uses the DHT only. */
  mode: "internet" | "local";
  /**
   * Announce as a boot provider of this channel/arch, at the node's HTTP
   * URL (the HTTP transport must have started first and know a URL others
   * can reach; otherwise a warning says why nothing was announced).
   */
  bootProvider?: {
    channel: string;
    arch: string;
    manifestVersion?: number | null;
  };
  /** Hears a line when an announcement fails (the node keeps running). */
  onWarning?: (line: string) => void;
}

/** The libp2p transport; `info` carries the peer's multiaddrs. */
export function p2pTransport(options: P2pTransportOptions): NodeTransport {
  return {
    name: "libp2p",
    async start(node) {
      const libp2p = await PhaseNode.start({
        key: node.key,
        listen: options.listen ?? ["/ip4/0.0.0.0/tcp/4001"],
        bootstrap: options.bootstrap,
        mdns: options.mode === "local",
        // A node being started waits for its bootstrap peers longer than a
        // short-lived client does (a busy peer or machine).
        joinTimeoutMs: NODE_JOIN_TIMEOUT_MS,
        capability: node.jobs ? () => node.capability() : undefined,
      });
      if (node.jobs) await acceptJobs(libp2p, node);
      node.peers = () => libp2p.libp2p.getPeers().length;
      const boot = options.bootProvider;
      if (boot && !node.httpUrl) {
        options.onWarning?.(
          "not announced as a boot provider: no HTTP URL others can reach (give --advertise)",
        );
      } else if (boot) {
        await publishBootProvider(
          libp2p,
          boot.channel,
          boot.arch,
          `${node.httpUrl}/${boot.channel}/${boot.arch}/manifest.json`,
          boot.manifestVersion ?? null,
        ).catch((error) =>
          options.onWarning?.(
            `could not announce as a boot provider: ${
              (error as Error).message.split("\n")[0]
            }`,
          )
        );
      }
      return {
        info: {
          peer_id: libp2p.peerId,
          multiaddrs: libp2p.multiaddrs(),
          mode: options.mode,
        },
        close: () => libp2p.stop(),
      };
    },
  };
}
