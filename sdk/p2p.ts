/**
 * The libp2p transport (Deno and Node): a short-lived client node with a
 * throwaway key joins the network through bootstrap peers, finds capable
 * nodes in the DHT (or uses the peers it is given) and runs jobs over
 * `/phase/job/1.0.0`. The job protocol's client already refuses a receipt
 * not signed by the peer it dialled; the SDK checks it again like any other.
 * @module
 */
import "./runtime_compat.ts";
import {
  firstLine,
  type FoundNode,
  JobRejected,
  PhaseNode,
  type RemoteJob,
  submitAuto,
  submitJob,
} from "../discovery/client.ts";
import { generateKey } from "../schemas/mod.ts";
import {
  InvalidReceiptError,
  RefusedError,
  TimeoutError,
  TransportError,
} from "./errors.ts";
import type { NodeInfo, PreparedJob } from "./job.ts";
import type { Delivery, ExecuteOptions, Transport } from "./transport.ts";
import type { P2pTransportOptions } from "./p2p_options.ts";

export type * from "./p2p_options.ts";

/** A libp2p client node (discovery/'s PhaseNode). */
export type ClientNode = PhaseNode;

function nodeOf(found: FoundNode): NodeInfo {
  return {
    peerId: found.peerId,
    address: found.addresses[0],
    addresses: found.addresses,
  };
}

/** The SDK error a job protocol failure stands for. */
function errorOf(error: unknown): Error {
  if (!(error instanceof JobRejected)) {
    return new TransportError(firstLine(error));
  }
  switch (error.reason) {
    case "Unreachable":
      return new TransportError(error.message);
    case "Tampered":
      // The node's answer failed the protocol client's checks.
      return new InvalidReceiptError(error.message);
    case "Timeout":
      return new TimeoutError(error.message);
    default:
      return new RefusedError(error.reason, error.message);
  }
}

/** A transport over libp2p's `/phase/job/1.0.0`, with its own client node. */
export function p2pTransport(options: P2pTransportOptions): Transport {
  let started: Promise<PhaseNode> | undefined;
  return transportOver(
    () => {
      started ??= (async () =>
        await PhaseNode.start({
          key: await generateKey(),
          listen: [],
          bootstrap: options.bootstrap,
          clientMode: true,
        }))();
      started.catch(() => (started = undefined));
      return started;
    },
    options,
    async () => {
      const node = await started?.catch(() => undefined);
      started = undefined;
      await node?.stop();
    },
  );
}

/**
 * The transport over a client node its owner started and stops (how
 * `phase submit` shares the node it found peers with, by mDNS or the DHT).
 */
export function p2pTransportOn(
  node: ClientNode,
  options: Omit<P2pTransportOptions, "bootstrap"> = {},
): Transport {
  return transportOver(() => Promise.resolve(node), options, async () => {});
}

function transportOver(
  client: () => Promise<PhaseNode>,
  options: Omit<P2pTransportOptions, "bootstrap">,
  close: () => Promise<void>,
): Transport {
  const timeoutMs = options.discoveryTimeoutMs ?? 5000;
  const nodesTtlMs = options.nodesTtlMs ?? 30_000;
  // The capable nodes found last, so that runs in a row (replicas) do not
  // each walk the DHT.
  let known: { at: number; nodes: NodeInfo[] } | undefined;
  const remoteJob = (job: PreparedJob, signal: AbortSignal): RemoteJob => ({
    module: job.module,
    args: job.args,
    env: job.env,
    stdin: job.stdin,
    jobId: job.jobId,
    nonce: job.nonce,
    signal,
    requirements: {
      ...(job.memoryMb !== undefined ? { memory_mb: job.memoryMb } : {}),
      ...(job.timeoutSeconds !== undefined
        ? { timeout_seconds: job.timeoutSeconds }
        : {}),
      ...(job.fuel !== undefined ? { fuel: job.fuel } : {}),
      ...(options.arch ? { arch: options.arch } : {}),
    },
  });

  return {
    kind: "p2p",
    bindsJobId: true,
    async nodes({ fresh }) {
      if (!fresh && known && performance.now() - known.at < nodesTtlMs) {
        return known.nodes;
      }
      const node = await client().catch((error) => {
        throw new TransportError(firstLine(error));
      });
      const found = await node.findCapable({ arch: options.arch }, timeoutMs);
      const nodes = found.filter((f) => f.peerId !== node.peerId).map(nodeOf);
      // An empty answer is not kept: the next run looks again.
      known = nodes.length > 0 ? { at: performance.now(), nodes } : undefined;
      return nodes;
    },
    async execute(
      job: PreparedJob,
      { signal, node: target }: ExecuteOptions,
    ): Promise<Delivery> {
      const node = await client().catch((error) => {
        throw new TransportError(firstLine(error));
      });
      try {
        if (target) {
          await node.remember(target.peerId, target.addresses ?? []);
          const result = await submitJob(
            node,
            target.peerId,
            remoteJob(job, signal),
          );
          return { receipt: result.receipt, node: target };
        }
        const result = await submitAuto(node, remoteJob(job, signal), {
          arch: options.arch,
          timeoutMs,
        });
        return {
          receipt: result.receipt,
          node: { peerId: result.peerId },
        };
      } catch (error) {
        throw errorOf(error);
      }
    },
    close,
  };
}
