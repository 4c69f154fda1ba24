/**
 * Phase Boot after /init has brought the network up.
 *
 * Stage 1 finds a provider (phase.provider URL; mDNS in local mode; the DHT
 * in internet mode), fetches the boot manifest, verifies it against the
 * pinned keys (never the key inside it), its expiry and the rollback floor,
 * downloads kernel and initramfs with sha256 checks, Range resume and
 * fallback URLs, and kexecs into them with the manifest's cmdline plus the
 * phase.* options carried forward. Unverified bytes are never kexec'd.
 *
 * Stage 2 (the booted system) fetches and verifies the same artifacts into
 * tmpfs, starts a full node (the same assembly as `phase serve`), runs the
 * hello job named by its job manifest through the node's job service, shows
 * its verified receipt, and keeps serving artifacts and running jobs for
 * others, so the next machine can boot from it.
 * @module
 */
import {
  type BootManifest,
  parsePublicKey,
  validateJobManifest,
  verifyManifest,
  verifyReceipt,
} from "../schemas/mod.ts";
import { download, httpTransport } from "../provider/mod.ts";
import { loadIdentity, receiptLines, renderLines } from "../runner/mod.ts";
import { startNode } from "../node/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import { type BootOptions, carriedOptions } from "./cmdline.ts";
import { BootCache } from "./cache.ts";
import {
  handoverUsable,
  readHandoverManifest,
  takeHandedOver,
  writeHandoverInitrd,
} from "./handover.ts";

/** A boot step that failed; the message is the one line shown on the console. */
export class BootError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BootError";
  }
}

/** Where boot writes (a tmpfs). */
export const RUN_DIR = "/run/phase";

/** Console output of the boot program. */
export type BootLog = (line: string) => void;

/** What the flow needs from its surroundings (replaceable in tests). */
export interface BootEnvironment {
  /** Writable tmpfs directory. */
  runDir: string;
  /** Console lines. */
  log: BootLog;
  /** Loads and executes a verified kernel (or plans it, see planKexec). */
  kexec: (kernel: string, initramfs: string, cmdline: string) => Promise<void>;
  /**
   * Stage 2: where stage 1's hand-over was unpacked (HANDOVER_DIR), checked
   * again before use; none: everything comes from the network.
   */
  handoverDir?: string;
}

async function fetchManifest(url: string): Promise<unknown> {
  let lastError = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(10_000),
      });
      if (response.ok) return await response.json();
      lastError = `HTTP ${response.status}`;
      await response.body?.cancel();
    } catch (error) {
      lastError = (error as Error).message.split("\n")[0];
    }
    await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
  }
  throw new BootError(`cannot fetch the manifest ${url}: ${lastError}`);
}

/** Finds candidate provider base URLs for the options. */
async function findProviders(
  options: BootOptions,
  log: BootLog,
): Promise<string[]> {
  if (options.provider) return [options.provider];
  if (options.mode === "internet" && options.bootstrap.length === 0) {
    throw new BootError(
      "no provider: give phase.provider=URL, phase.bootstrap=MULTIADDR, or phase.mode=local",
    );
  }
  // libp2p is loaded only now (and for serving, after the receipt): with a
  // provider URL, the boot never evaluates it before its job is done.
  const { findBootProviders, PhaseNode } = await import(
    "../discovery/mod.ts"
  );
  log(
    `looking for ${options.channel}/${options.arch} providers (${
      options.mode === "local" ? "mDNS" : "DHT"
    })`,
  );
  const node = await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/0.0.0.0/tcp/0"],
    bootstrap: options.bootstrap,
    mdns: options.mode !== "internet",
    clientMode: true,
  });
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      await node.waitForPeers(1000);
      const found = await findBootProviders(
        node,
        options.channel,
        options.arch,
        3000,
      );
      if (found.length > 0) {
        return found
          .sort((a, b) => (b.manifestVersion ?? 0) - (a.manifestVersion ?? 0))
          .map((p) =>
            p.manifestUrl.replace(/\/[^/]+\/[^/]+\/manifest\.json$/, "")
          );
      }
    }
  } finally {
    await node.stop();
  }
  throw new BootError("no boot provider was found");
}

/** Fetches and verifies the manifest from the first provider that has a valid one. */
async function verifiedManifest(
  options: BootOptions,
  log: BootLog,
  cache: BootCache | null,
  handoverDir?: string,
): Promise<
  {
    provider: string;
    manifestUrl: string;
    manifest: BootManifest;
    others: string[];
  }
> {
  if (options.pubkeys.length === 0) {
    throw new BootError(
      "no pinned key: give phase.pubkey=KEY (the release key's peer id)",
    );
  }
  let trustedKeys: Uint8Array[];
  try {
    trustedKeys = options.pubkeys.map(parsePublicKey);
  } catch (error) {
    throw new BootError(`phase.pubkey: ${(error as Error).message}`);
  }
  const policy = {
    trustedKeys,
    // The floor is the highest of the command line's and the cache's.
    minVersion: Math.max(options.minVersion, cache?.floor ?? 0) || undefined,
    channel: options.channel,
    arch: options.arch,
  };
  // Stage 1's hand-over, verified like the network's manifest (stage 1
  // always carries the provider it used, which fetches fall back to).
  if (handoverDir && options.provider) {
    const handed = await readHandoverManifest(handoverDir, policy);
    if (handed && "manifest" in handed) {
      log(
        `manifest ${handed.manifest.manifest_version} verified: signed by ${handed.signer} (handed over by stage 1)`,
      );
      return {
        provider: options.provider,
        manifestUrl:
          `${options.provider}/${options.channel}/${options.arch}/manifest.json`,
        manifest: handed.manifest,
        others: [],
      };
    }
    if (handed) log(`hand-over refused: ${handed.refused}`);
  }
  const providers = await findProviders(options, log);
  const reasons: string[] = [];
  for (const provider of providers) {
    const manifestUrl =
      `${provider}/${options.channel}/${options.arch}/manifest.json`;
    log(`fetching ${manifestUrl}`);
    const verdict = await verifyManifest(
      await fetchManifest(manifestUrl),
      policy,
    );
    if (verdict.valid) {
      log(
        `manifest ${verdict.manifest.manifest_version} verified: signed by ${verdict.signer}`,
      );
      return {
        provider,
        manifestUrl,
        manifest: verdict.manifest,
        others: providers.filter((p) => p !== provider),
      };
    }
    reasons.push(`${manifestUrl}: ${verdict.reason}`);
    log(`refused ${manifestUrl}: ${verdict.reason}`);
  }
  throw new BootError(`manifest refused: ${reasons.join("; ")}`);
}

/** What {@link fetchArtifacts} fetches, from where, and into where. */
interface FetchOptions {
  /** The verified manifest. */
  manifest: BootManifest;
  /** Where it came from (relative artifact URLs resolve against it). */
  manifestUrl: string;
  /** Other providers' base URLs, tried after the manifest's own URLs. */
  others: string[];
  /** Where the files go (tmpfs). */
  dir: string;
  /** Console lines. */
  log: BootLog;
  /** Only these artifacts (default: all the manifest names). */
  names?: string[];
  /** A boot cache to take files from before the network, and to fill. */
  cache: BootCache | null;
  /** Stage 1's hand-over, taken (after its checks) before cache and network. */
  handoverDir?: string;
}

/**
 * Fetches the artifacts into `dir`, each checked against the manifest's
 * sha256: from the boot cache when it holds them, else downloaded. The
 * cache then keeps what was verified, and the manifest's version as its
 * floor.
 */
async function fetchArtifacts(
  { manifest, manifestUrl, others, dir, log, names, cache, handoverDir }:
    FetchOptions,
): Promise<Record<string, string>> {
  await Deno.mkdir(dir, { recursive: true });
  const paths: Record<string, string> = {};
  for (const [name, artifact] of Object.entries(manifest.artifacts)) {
    if (names && !names.includes(name)) continue;
    const urls = [
      ...artifact.urls.map((u) => new URL(u, manifestUrl).href),
      ...others.map((base) =>
        `${base}/${manifest.channel}/${manifest.arch}/${artifact.filename}`
      ),
    ];
    const output = `${dir}/${artifact.filename}`;
    if (handoverDir) {
      const took = await takeHandedOver(handoverDir, artifact, output);
      if (took === "taken") {
        log(`${artifact.filename}: handed over by stage 1, sha256 verified`);
        paths[name] = output;
        continue;
      }
      if (took !== "absent") {
        log(`${artifact.filename}: hand-over refused: ${took.refused}`);
      }
    }
    if (
      await cache?.copyOut(name, artifact.sha256, artifact.size, output)
        .catch(() => false)
    ) {
      log(`${artifact.filename}: from the boot cache, sha256 verified`);
      paths[name] = output;
      continue;
    }
    let lastShown = -1;
    try {
      await download({
        urls,
        sha256: artifact.sha256,
        output,
        size: artifact.size,
        onProgress: ({ received }) => {
          const share = Math.floor((received / Math.max(artifact.size, 1)) * 4);
          if (share !== lastShown) {
            lastShown = share;
            log(
              `${artifact.filename}: ${share * 25}% of ${artifact.size} bytes`,
            );
          }
        },
        onRetry: (reason) => log(`${artifact.filename}: retrying (${reason})`),
      });
    } catch (error) {
      throw new BootError(
        `${name} (${artifact.filename}): ${(error as Error).message}`,
      );
    }
    log(`${artifact.filename}: sha256 verified`);
    paths[name] = output;
  }
  await cache?.record(
    manifest.manifest_version,
    Object.entries(paths).map(([name, path]) => ({
      name,
      path,
      sha256: manifest.artifacts[name].sha256,
      size: manifest.artifacts[name].size,
    })),
    Object.fromEntries(
      Object.entries(manifest.artifacts).map(([name, a]) => [name, a.sha256]),
    ),
  ).catch((error) =>
    log(`boot cache not updated: ${(error as Error).message.split("\n")[0]}`)
  );
  return paths;
}

/**
 * The boot cache the options name, or null: none named, Private mode or
 * phase.nowrite (never touched then), or one that cannot be used (said on
 * the console; boot goes on from the network).
 */
async function openCache(
  options: BootOptions,
  env: BootEnvironment,
): Promise<BootCache | null> {
  const { log } = env;
  if (!options.cache || options.nowrite) return null;
  try {
    const cache = await BootCache.open(options.cache, {
      deviceDir: `${env.runDir}/blk`,
    });
    log(
      `boot cache ${cache.device}: ${cache.entries.length} artifacts, floor ${cache.floor}`,
    );
    return cache;
  } catch (error) {
    log(`boot cache not used: ${(error as Error).message.split("\n")[0]}`);
    return null;
  }
}

/** Stage 1: verify, download, and hand the verified kernel to kexec. */
export async function stageOne(
  options: BootOptions,
  env: BootEnvironment,
): Promise<void> {
  const cache = await openCache(options, env);
  let paths: Record<string, string>;
  let found: Awaited<ReturnType<typeof verifiedManifest>>;
  try {
    found = await verifiedManifest(options, env.log, cache);
    for (const role of ["kernel", "initramfs"]) {
      if (!found.manifest.artifacts[role]) {
        throw new BootError(`the manifest has no ${role}`);
      }
    }
    paths = await fetchArtifacts({
      ...found,
      dir: `${env.runDir}/boot`,
      log: env.log,
      names: ["kernel", "initramfs", ...jobArtifacts(found.manifest)],
      cache,
    });
  } finally {
    cache?.close();
  }
  const { provider, manifest } = found;
  const cmdline = `${manifest.cmdline} ${
    carriedOptions(options, provider, manifest.manifest_version)
  }`.trim();
  const initrd = await handOver(manifest, paths, env);
  env.log(
    `kexec into ${manifest.version} (manifest ${manifest.manifest_version})`,
  );
  await env.kexec(paths.kernel, initrd, cmdline);
}

/** The manifest's artifacts the hello job needs. */
function jobArtifacts(manifest: BootManifest): string[] {
  return Object.keys(manifest.artifacts).filter((n) =>
    n.endsWith(".wasm") || n.endsWith(".job.json")
  );
}

/**
 * Writes the initrd that carries the verified manifest and files across
 * kexec (see handover.ts) and drops the copies it now holds; returns its
 * path, or the plain initramfs when it cannot be written.
 */
async function handOver(
  manifest: BootManifest,
  paths: Record<string, string>,
  env: BootEnvironment,
): Promise<string> {
  const output = `${env.runDir}/boot/handover-initrd.img`;
  try {
    const size = await writeHandoverInitrd({
      manifest,
      // The job's files; not the kernel and initramfs: a second copy of
      // them in the initrd does not fit in 512 MiB beside kexec's own
      // copies, and costs more time than fetching them after the receipt.
      files: Object.fromEntries(
        jobArtifacts(manifest).filter((name) => paths[name]).map((
          name,
        ) => [manifest.artifacts[name].filename, paths[name]]),
      ),
      initramfs: paths.initramfs,
      output,
    });
    // Memory is tight for kexec: only the kernel file is still needed.
    for (const [name, path] of Object.entries(paths)) {
      if (name !== "kernel") await Deno.remove(path);
    }
    env.log(
      `handing over the manifest and the job's files (${size} bytes with the initramfs)`,
    );
    return output;
  } catch (error) {
    await Deno.remove(output).catch(() => {});
    env.log(`no hand-over: ${(error as Error).message.split("\n")[0]}`);
    return paths.initramfs;
  }
}

/**
 * Hands the verified kernel to /init, which runs kexec once this process has
 * exited: a Deno process, the unpacked initramfs and the kexec buffers do not
 * fit in 512 MiB together. /init tries kexec_file_load, then kexec_load.
 */
export function planKexec(runDir: string): BootEnvironment["kexec"] {
  return async (kernel, initramfs, cmdline) => {
    const plan = `${runDir}/kexec`;
    await Deno.mkdir(plan, { recursive: true });
    await Deno.writeTextFile(`${plan}/kernel`, kernel);
    await Deno.writeTextFile(`${plan}/initrd`, initramfs);
    await Deno.writeTextFile(`${plan}/cmdline`, cmdline);
  };
}

/** Stage 2: fetch what we booted, run hello, show the receipt, serve. */
export async function stageTwo(
  options: BootOptions,
  env: BootEnvironment,
): Promise<{ close: () => Promise<void> }> {
  const cache = await openCache(options, env);
  try {
    return await serveBooted(options, env, cache);
  } catch (error) {
    cache?.close();
    throw error;
  }
}

/** What stage 2 has before its job runs (see {@link stageTwoInputs}). */
export interface StageTwoInputs {
  /** The provider it booted from (base URL). */
  provider: string;
  /** The manifest's URL there. */
  manifestUrl: string;
  /** The verified manifest. */
  manifest: BootManifest;
  /** Other providers' base URLs. */
  others: string[];
  /** Where the artifacts go (the folder it serves). */
  dir: string;
  /** The job's verified files by artifact name. */
  paths: Record<string, string>;
  /** The hand-over folder, when it was one to read. */
  handoverDir?: string;
}

/**
 * Stage 2's manifest and the job's files, from stage 1's hand-over when it
 * verifies (else from the network), each checked before use. The job's
 * files come first, so its receipt shows without waiting for the kernel and
 * initramfs, which are only needed for serving.
 */
export function stageTwoInputs(
  options: BootOptions,
  env: BootEnvironment,
): Promise<StageTwoInputs> {
  return inputsWithCache(options, env, null);
}

/** {@link stageTwoInputs} with the boot cache stage 2 opened. */
async function inputsWithCache(
  options: BootOptions,
  env: BootEnvironment,
  cache: BootCache | null,
): Promise<StageTwoInputs> {
  let handoverDir: string | undefined;
  if (env.handoverDir) {
    if (await handoverUsable(env.handoverDir)) handoverDir = env.handoverDir;
    else if (await Deno.lstat(env.handoverDir).then(() => true, () => false)) {
      env.log(`hand-over refused: ${env.handoverDir} is not a directory`);
    }
  }
  const found = await verifiedManifest(options, env.log, cache, handoverDir);
  const { manifest } = found;
  const dir = `${env.runDir}/artifacts/${manifest.channel}/${manifest.arch}`;
  const paths = await fetchArtifacts({
    ...found,
    dir,
    log: env.log,
    names: jobArtifacts(manifest),
    cache,
    handoverDir,
  });
  return { ...found, dir, paths, handoverDir };
}

/** Stage 2 with its cache (closed once every artifact is in tmpfs). */
async function serveBooted(
  options: BootOptions,
  env: BootEnvironment,
  cache: BootCache | null,
): Promise<{ close: () => Promise<void> }> {
  const found = await inputsWithCache(options, env, cache);
  const { provider, manifest, dir, paths, handoverDir } = found;
  const jobNames = jobArtifacts(manifest);
  // Serve the very manifest we verified, byte for byte, so the next machine
  // can verify it with the same pinned key.
  await Deno.writeTextFile(
    `${dir}/manifest.json`,
    JSON.stringify(manifest, null, 2) + "\n",
  );
  const key = await loadIdentity({
    path: `${env.runDir}/node.key`,
    ephemeral: options.mode === "private",
  });
  const address = localAddress() ?? "127.0.0.1";
  const port = 8080;
  // Private mode writes nothing: no receipts, no module cache.
  const node = await startNode({
    key,
    arch: manifest.arch,
    dataDir: null,
    jobs: {
      sandboxSize: 1,
      receiptsDir: options.mode === "private"
        ? undefined
        : `${env.runDir}/receipts`,
    },
    transports: [],
  });
  env.log("node started; running the hello job");
  const jobManifestPath = Object.values(paths).find((p) =>
    p.endsWith(".job.json")
  );
  try {
    if (jobManifestPath) {
      const job = validateJobManifest(
        JSON.parse(await Deno.readTextFile(jobManifestPath)),
      );
      const moduleFile = Object.values(paths).find((p) =>
        p.endsWith(`${job.name ?? "hello"}.wasm`)
      );
      if (!moduleFile) {
        throw new BootError(
          `the job manifest names ${job.name}, which the manifest does not carry`,
        );
      }
      const { receipt } = await node.services.jobs!.run({
        module: await Deno.readFile(moduleFile),
        manifest: job,
        memoryMb: job.memory_mb,
        timeoutSeconds: job.timeout_seconds,
      });
      const verdict = await verifyReceipt(receipt, {
        peerId: key.peerId,
        moduleHash: job.module_hash,
      });
      env.log("job done; receipt:");
      for (
        const line of renderLines(
          receiptLines(
            receipt,
            verdict.valid
              ? { valid: true }
              : { valid: false, reason: verdict.reason },
          ),
          true,
        ).trimEnd().split("\n")
      ) {
        env.log(line);
      }
    }
    await fetchArtifacts({
      ...found,
      dir,
      log: env.log,
      names: Object.keys(manifest.artifacts).filter((n) =>
        !jobNames.includes(n)
      ),
      cache,
      handoverDir,
    });
  } catch (error) {
    await node.close();
    throw error;
  }
  cache?.close();
  // Then the same node serves: artifacts and jobs over HTTP, and on libp2p
  // (always, so machines booting next can find it by the DHT, where it can
  // be their phase.bootstrap, or by mDNS in local mode) with its capability.
  const { p2pTransport } = await import("../discovery/mod.ts");
  const transports = [
    httpTransport({
      artifactsDir: `${env.runDir}/artifacts`,
      dataDir: null,
      channel: manifest.channel,
      arch: manifest.arch,
      port,
      hostname: "0.0.0.0",
      advertise: [`http://${address}:${port}`],
    }),
    p2pTransport({
      listen: ["/ip4/0.0.0.0/tcp/4001"],
      bootstrap: options.bootstrap,
      mode: options.mode === "local" ? "local" : "internet",
      bootProvider: {
        channel: manifest.channel,
        arch: manifest.arch,
        manifestVersion: manifest.manifest_version,
      },
      onWarning: (line) => env.log(line),
    }),
  ];
  let announced = true;
  for (const transport of transports) {
    await node.attach(transport).catch((error) => {
      announced = false;
      env.log(
        `could not start ${transport.name}: ${
          (error as Error).message.split("\n")[0]
        }`,
      );
    });
  }
  env.log(
    `serving the artifacts it booted from on port ${port} (booted from ${provider})`,
  );
  if (announced) {
    env.log(
      `announced as a boot provider and job node (${
        options.mode === "internet" ? "DHT" : "mDNS + DHT"
      })`,
    );
  }
  return node;
}

function localAddress(): string | null {
  try {
    for (const nic of Deno.networkInterfaces()) {
      if (nic.family === "IPv4" && !nic.address.startsWith("127.")) {
        return nic.address;
      }
    }
  } catch {
    // no sys permission
  }
  return null;
}
