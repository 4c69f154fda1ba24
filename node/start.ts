/**
 * A node, assembled once: its key, its job service (sandbox pool, metered
 * modules, bounded receipt store) and the transports that carry jobs and
 * artifacts to and from it (HTTP, libp2p). `phase serve` and Phase Boot's
 * second stage both start their node here, so a booted machine is a full
 * node: it serves, advertises its capability and runs jobs for others.
 *
 * Transports are handed in by the caller (provider/ and discovery/ build
 * them), so this layer depends on neither.
 * @module
 */
import type { Capability, NodeKey } from "../schemas/mod.ts";
import { MeteredModuleCache } from "../runner/mod.ts";
import type { JobLimits } from "./job_input.ts";
import { JobService } from "./job_service.ts";
import { ReceiptStore } from "./receipt_store.ts";

/** What a node is made of. */
export interface NodeConfig {
  /** The node key (its peer id signs receipts and records). */
  key: NodeKey;
  /** Canonical architecture. */
  arch: string;
  /**
   * Where the node keeps state (metered modules, receipts), or null to
   * write nothing (Private mode).
   */
  dataDir: string | null;
  /** Jobs for others, or false for a node that only serves artifacts. */
  jobs: false | {
    /** Limits per job. */
    limits?: Partial<JobLimits>;
    /** Warm sandbox processes (default 2). */
    sandboxSize?: number;
    /** Waiting jobs before QueueFull (default 64). */
    queueLimit?: number;
    /** Receipts kept (default 10,000). */
    receiptsMaxCount?: number;
    /** Bytes of receipts kept (default 256 MiB). */
    receiptsMaxBytes?: number;
    /** Where receipts go (default `<dataDir>/receipts`). */
    receiptsDir?: string;
    /** Let module URLs point at loopback and private addresses. */
    allowPrivateModuleUrls?: boolean;
  };
  /** Transports, started in order and stopped in reverse. */
  transports: NodeTransport[];
}

/** What transports see of the node. */
export interface NodeServices {
  /** The node key. */
  readonly key: NodeKey;
  /** Canonical architecture. */
  readonly arch: string;
  /** Where state lives, or null (Private mode). */
  readonly dataDir: string | null;
  /** The job service, or null when the node runs no jobs. */
  readonly jobs: JobService | null;
  /** The HTTP base URL others reach this node at, once known. */
  httpUrl?: string;
  /** libp2p peers connected now, once the libp2p transport runs. */
  peers?: () => number;
  /** The capability to advertise, or null when the node runs no jobs. */
  capability(): Capability | null;
}

/** A transport that carries requests to a node. */
export interface NodeTransport {
  /** Short name, e.g. `http`, `libp2p`. */
  readonly name: string;
  /** Starts carrying requests for the node. */
  start(node: NodeServices): Promise<RunningTransport>;
}

/** A started transport. */
export interface RunningTransport {
  /** What it wants to tell the operator (addresses, URLs). */
  info: Record<string, unknown>;
  /** Stops it. */
  close(): Promise<void>;
}

/** A running node. */
export interface RunningNode {
  /** Its services. */
  services: NodeServices;
  /** Each started transport's info, by transport name. */
  transports: Record<string, Record<string, unknown>>;
  /**
   * Starts one more transport (e.g. once a boot's first job has run);
   * returns its info.
   */
  attach(transport: NodeTransport): Promise<Record<string, unknown>>;
  /** Stops the transports (last first) and the job service. */
  close(): Promise<void>;
}

/** Starts a node and its transports; on failure, stops what had started. */
export async function startNode(config: NodeConfig): Promise<RunningNode> {
  const { dataDir } = config;
  const jobsConfig = config.jobs;
  const jobs = jobsConfig
    ? new JobService({
      key: config.key,
      arch: config.arch,
      limits: jobsConfig.limits,
      sandboxSize: jobsConfig.sandboxSize,
      queueLimit: jobsConfig.queueLimit,
      modules: new MeteredModuleCache({
        dir: dataDir ? `${dataDir}/modules` : null,
      }),
      receipts: jobsConfig.receiptsDir || dataDir
        ? new ReceiptStore({
          dir: jobsConfig.receiptsDir ?? `${dataDir}/receipts`,
          maxCount: jobsConfig.receiptsMaxCount,
          maxBytes: jobsConfig.receiptsMaxBytes,
        })
        : null,
      allowPrivateModuleUrls: jobsConfig.allowPrivateModuleUrls,
    })
    : null;
  const services: NodeServices = {
    key: config.key,
    arch: config.arch,
    dataDir,
    jobs,
    capability() {
      return jobs?.capability(this.httpUrl) ?? null;
    },
  };
  const started: RunningTransport[] = [];
  const node: RunningNode = {
    services,
    transports: {},
    async attach(transport) {
      const running = await transport.start(services);
      started.push(running);
      node.transports[transport.name] = running.info;
      return running.info;
    },
    async close() {
      for (const transport of started.splice(0).reverse()) {
        await transport.close().catch(() => {});
      }
      await jobs?.close();
    },
  };
  try {
    for (const transport of config.transports) await node.attach(transport);
  } catch (error) {
    await node.close();
    throw error;
  }
  return node;
}
