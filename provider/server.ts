/**
 * Starting and stopping a provider: the artifacts store, manifests, the
 * jobs endpoint and the HTTP listener.
 * @module
 */
import {
  atomicWriteFile,
  RUNTIME_VERSION,
  TEMPORARY_MARK,
} from "../runner/mod.ts";
import type { JobService } from "../node/mod.ts";
import {
  canonicalArch,
  type Channel,
  fromBase64,
  type JobManifest,
  type NodeKey,
  sha256Ref,
} from "../schemas/mod.ts";
import { ArtifactStore } from "./artifacts.ts";
import { HELLO_WASM_BASE64 } from "./embedded_hello.ts";
import { connectionsFor, raiseFileLimit } from "./fd_limit.ts";
import { createHandler } from "./http.ts";
import {
  DEFAULT_LISTENER_LIMITS,
  internalError,
  listen,
  type ListenerLimits,
} from "./listener.ts";
import { ManifestPublisher } from "./manifest_publisher.ts";
import { Metrics } from "./metrics.ts";

/** A provider that cannot start; the message is one line. */
export class ProviderError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ProviderError";
  }
}

/** How to run a provider. */
export interface ProviderOptions {
  /** Artifacts directory (`<dir>/<channel>/<arch>/<file>`). */
  artifactsDir: string;
  /** Data directory for caches and state, or null to persist nothing. */
  dataDir: string | null;
  /** Provider key. */
  key: NodeKey;
  /** Default channel. */
  channel?: Channel;
  /** Default architecture. */
  arch?: string;
  /** TCP port (0 picks a free one). */
  port?: number;
  /** Address to bind. */
  hostname?: string;
  /** Base URLs other machines reach this provider at (for manifests). */
  advertise?: string[];
  /** Kernel command line written into generated manifests. */
  cmdline?: string;
  /** The node's job service for `POST /jobs`, or null/absent for no jobs. */
  jobs?: JobService | null;
  /** libp2p peers connected now, for the status page. */
  peers?: () => number | null;
  /**
   * Connection limits. maxConnections is also capped by the open-file limit
   * (raised to its hard limit at start when allowed).
   */
  limits?: Partial<ListenerLimits>;
  /** Free bytes below which /health fails (default 64 MiB). */
  minFreeBytes?: number;
  /** Keys machines booting through /boot.ipxe pin (default: the manifest's signers). */
  pinnedKeys?: string[];
}

/** A running provider. */
export interface Provider {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Bound port. */
  port: number;
  /** Counters. */
  metrics: Metrics;
  /** The connection limits in force. */
  limits: ListenerLimits;
  /** Stops listening. */
  close(): Promise<void>;
}

/** The canonical name of the machine's architecture. */
export function hostArch(): string {
  return canonicalArch(Deno.build.arch) ?? Deno.build.arch;
}

/**
 * Writes the embedded hello job into a new artifacts directory, so that a
 * provider started with no configuration serves something useful.
 */
export async function seedArtifacts(
  dir: string,
  channel: Channel,
  arch: string,
): Promise<boolean> {
  try {
    await Deno.stat(dir);
    return false;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // Built beside it and renamed into place, so a start that fails halfway
  // (a full disk) leaves no folder that later starts would take as seeded.
  const building = `${dir}${TEMPORARY_MARK}${crypto.randomUUID().slice(0, 8)}`;
  try {
    const target = `${building}/${channel}/${canonicalArch(arch) ?? arch}`;
    await Deno.mkdir(target, { recursive: true });
    await writeHelloJob(target);
    await Deno.rename(building, dir);
  } catch (error) {
    await Deno.remove(building, { recursive: true }).catch(() => {});
    throw error;
  }
  return true;
}

/**
 * Writes the embedded hello module and its job manifest (`hello.wasm`,
 * `hello.job.json`) into a channel/arch directory, each whole or not at all.
 */
export async function writeHelloJob(target: string): Promise<void> {
  const module = fromBase64(HELLO_WASM_BASE64);
  await atomicWriteFile(`${target}/hello.wasm`, module);
  const manifest: JobManifest = {
    version: 1,
    name: "hello",
    module_hash: await sha256Ref(module),
    memory_mb: 16,
    timeout_seconds: 10,
    args: ["Hello, World!"],
  };
  await atomicWriteFile(
    `${target}/hello.job.json`,
    JSON.stringify(manifest, null, 2) + "\n",
  );
}

/** Starts a provider. */
export async function startProvider(
  options: ProviderOptions,
): Promise<Provider> {
  const channel = options.channel ?? "stable";
  const arch = options.arch ?? hostArch();
  const store = new ArtifactStore({
    root: options.artifactsDir,
    hashCachePath: options.dataDir
      ? `${options.dataDir}/hash-cache.json`
      : undefined,
  });
  const metrics = new Metrics();
  metrics.jobs = options.jobs?.counters ?? null;
  let port = options.port ?? 8080;
  const hostname = options.hostname ?? "0.0.0.0";
  const advertise = () =>
    options.advertise ??
      (hostname === "0.0.0.0" || hostname === "::"
        ? []
        : [`http://${hostname}:${port}`]);
  const publisher = new ManifestPublisher({
    store,
    key: options.key,
    version: RUNTIME_VERSION,
    cmdline: options.cmdline ?? "console=ttyS0 panic=-1",
    addresses: advertise,
    statePath: options.dataDir
      ? `${options.dataDir}/manifest-state.json`
      : undefined,
  });
  const findModule = async (hash: string): Promise<Uint8Array | null> => {
    for (const file of await store.list(channel, arch)) {
      if (
        file.name.endsWith(".wasm") &&
        `sha256:${await store.hash(file)}` === hash
      ) {
        return await Deno.readFile(file.path);
      }
    }
    return null;
  };
  const handler = createHandler({
    version: RUNTIME_VERSION,
    channel,
    arch,
    key: options.key,
    store,
    publisher,
    metrics,
    dataDir: options.dataDir ?? options.artifactsDir,
    minFreeBytes: options.minFreeBytes ?? 64 * 1024 * 1024,
    pinnedKeys: options.pinnedKeys,
    advertise: options.advertise,
    peers: options.peers,
    jobs: options.jobs ? { service: options.jobs, findModule } : null,
  });
  const fileLimit = await raiseFileLimit();
  const maxConnections = Math.min(
    options.limits?.maxConnections ?? DEFAULT_LISTENER_LIMITS.maxConnections,
    fileLimit ? connectionsFor(fileLimit.soft) : Infinity,
  );
  let server: ReturnType<typeof listen>;
  try {
    server = listen({
      hostname,
      port,
      handler,
      onError: internalError,
      limits: { ...options.limits, maxConnections },
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new ProviderError(
        `port ${port} on ${hostname} is in use; pick another with --port`,
      );
    }
    throw new ProviderError(
      `cannot listen on ${hostname}:${port}: ${(error as Error).message}`,
    );
  }
  metrics.connections = server.stats;
  port = server.addr.port;
  const shown = hostname === "0.0.0.0"
    ? "127.0.0.1"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  return {
    url: `http://${shown}:${port}`,
    port,
    metrics,
    limits: server.limits,
    async close() {
      await server.close();
    },
  };
}
