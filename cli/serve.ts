/**
 * `phase serve`: the provider node, with zero configuration by default.
 * @module
 */
import { parseArgs } from "node:util";
import {
  CHANNELS,
  hostArch,
  seedArtifacts,
  startProvider,
} from "../provider/mod.ts";
import {
  acceptJobs,
  type Capability,
  PhaseNode,
  publishBootProvider,
} from "../discovery/mod.ts";
import { DEFAULT_JOB_LIMITS } from "../provider/mod.ts";
import {
  loadIdentity,
  MeteredModuleCache,
  RUNTIME_VERSION,
  SandboxPool,
} from "../runner/mod.ts";
import { canonicalArch, type Channel } from "../schemas/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { assertPrivateMode } from "./node_context.ts";
import { dataDir, dataPaths } from "./paths.ts";

/** Refuses to start on an artifacts directory this process cannot list. */
async function assertReadableDirectory(dir: string): Promise<void> {
  try {
    for await (const _ of Deno.readDir(dir)) break;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CliError(`artifacts directory ${dir} does not exist`);
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new CliError(
        `artifacts directory ${dir} is outside what this process may read (grant --allow-read=${dir})`,
      );
    }
    throw new CliError(
      `cannot read artifacts directory ${dir}: ${(error as Error).message}`,
    );
  }
}

/** `phase serve [options]` */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      artifacts: { type: "string", short: "a" },
      channel: { type: "string", short: "c", default: "stable" },
      arch: { type: "string", short: "A", default: hostArch() },
      port: { type: "string", short: "p", default: "8080" },
      bind: { type: "string", short: "b", default: "0.0.0.0" },
      advertise: { type: "string", multiple: true },
      cmdline: { type: "string" },
      pubkey: { type: "string", multiple: true },
      "data-dir": { type: "string" },
      key: { type: "string" },
      private: { type: "boolean" },
      "no-jobs": { type: "boolean" },
      listen: { type: "string", multiple: true },
      bootstrap: { type: "string", multiple: true },
      mode: { type: "string", default: "internet" },
      "no-dht": { type: "boolean" },
      "no-mdns": { type: "boolean" },
      json: { type: "boolean" },
    },
  });
  if (!CHANNELS.includes(values.channel as Channel)) {
    throw new UsageError(`--channel must be one of ${CHANNELS.join(", ")}`);
  }
  if (!canonicalArch(values.arch)) {
    throw new UsageError(`--arch must be x86_64, amd64, aarch64 or arm64`);
  }
  if (values.mode !== "internet" && values.mode !== "local") {
    throw new UsageError("--mode must be internet or local");
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port wants 0-65535, got ${values.port}`);
  }
  if (values.private) {
    assertPrivateMode();
    if (!values.artifacts) {
      throw new UsageError(
        "--private needs --artifacts (nothing can be created)",
      );
    }
  }
  const data = values.private ? null : dataDir(values["data-dir"]);
  const artifactsDir = values.artifacts ?? `${data}/artifacts`;
  if (data) {
    await Deno.mkdir(data, { recursive: true, mode: 0o700 });
    if (!values.artifacts) {
      await seedArtifacts(artifactsDir, values.channel as Channel, values.arch);
    }
  }
  await assertReadableDirectory(artifactsDir);
  const key = await loadIdentity({
    path: values.key ?? (data ? dataPaths(data).key : ""),
    ephemeral: values.private,
  });
  const sandbox = values["no-jobs"]
    ? null
    : new SandboxPool({ size: 2, queueLimit: 64 });
  const modules = new MeteredModuleCache({
    dir: data ? dataPaths(data).modules : null,
  });
  const provider = await startProvider({
    artifactsDir,
    dataDir: data,
    key,
    channel: values.channel as Channel,
    arch: values.arch,
    port,
    hostname: values.bind,
    advertise: values.advertise,
    cmdline: values.cmdline,
    pinnedKeys: values.pubkey,
    jobs: sandbox !== null,
    sandbox: sandbox ?? undefined,
    modules,
    receiptsDir: data ? dataPaths(data).receipts : null,
  });
  const receiptsDir = data ? dataPaths(data).receipts : null;
  const arch = canonicalArch(values.arch)!;
  const httpUrl = values.advertise?.[0] ??
    (values.bind === "0.0.0.0" ? undefined : provider.url);
  const capability = (): Capability => ({
    arch,
    cpu_cores: navigator.hardwareConcurrency,
    memory_mb: DEFAULT_JOB_LIMITS.maxMemoryMb,
    runtime: { name: "phase-deno", version: RUNTIME_VERSION, wasi: "preview1" },
    limits: {
      max_timeout_seconds: DEFAULT_JOB_LIMITS.maxTimeoutSeconds,
      max_module_bytes: DEFAULT_JOB_LIMITS.maxBodyBytes,
    },
    load: {
      queued: sandbox?.queued ?? 0,
      queue_limit: sandbox?.queueLimit ?? 0,
    },
    ...(httpUrl ? { http_url: httpUrl } : {}),
  });
  let node: PhaseNode | null = null;
  if (!values["no-dht"]) {
    try {
      node = await PhaseNode.start({
        key,
        listen: values.listen ?? ["/ip4/0.0.0.0/tcp/4001"],
        bootstrap: values.bootstrap,
        mdns: values.mode === "local" && !values["no-mdns"],
        capability: sandbox ? capability : undefined,
      });
    } catch (error) {
      await provider.close();
      await sandbox?.close();
      throw new CliError(
        `cannot start the libp2p node: ${
          (error as Error).message.split("\n")[0]
        }`,
      );
    }
    if (sandbox) {
      await acceptJobs(node, {
        key,
        sandbox,
        modules,
        capability,
        receiptsDir,
      });
    }
    if (httpUrl) {
      const manifestUrl = `${httpUrl}/${values.channel}/${arch}/manifest.json`;
      await publishBootProvider(node, values.channel, arch, manifestUrl).catch(
        () => {},
      );
    }
  }
  const info = {
    url: provider.url,
    port: provider.port,
    peer_id: key.peerId,
    multiaddrs: node?.multiaddrs() ?? [],
    artifacts: artifactsDir,
    channel: values.channel,
    arch,
    jobs: sandbox !== null,
    mode: node ? values.mode : "off",
    private: Boolean(values.private),
  };
  if (values.json) {
    console.log(JSON.stringify(info));
  } else {
    console.log(
      `phase provider serving ${provider.url}/ (bound to ${values.bind})`,
    );
    console.log(`  peer id:   ${key.peerId}`);
    console.log(`  artifacts: ${artifactsDir}`);
    console.log(
      `  manifest:  ${provider.url}/manifest.json (${info.channel}/${info.arch})`,
    );
    console.log(
      `  jobs:      ${
        info.jobs
          ? `POST ${provider.url}/jobs, ${
            node ? "and /phase/job/1.0.0" : "HTTP only"
          }`
          : "off"
      }`,
    );
    console.log(
      `  libp2p:    ${
        node ? `${values.mode} mode, ${info.multiaddrs.join(" ")}` : "off"
      }`,
    );
  }
  const stop = Promise.withResolvers<void>();
  const onSignal = () => stop.resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await stop.promise;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  await node?.stop();
  await provider.close();
  await sandbox?.close();
  return 0;
}
