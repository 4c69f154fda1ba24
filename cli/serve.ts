/**
 * `phase serve`: a full node (artifacts over HTTP, jobs over HTTP and
 * libp2p, capability advertised), with zero configuration by default.
 * @module
 */
import {
  CHANNELS,
  httpTransport,
  ProviderError,
  seedArtifacts,
} from "../provider/mod.ts";
import { p2pTransport } from "../discovery/mod.ts";
import { loadIdentity } from "../runner/mod.ts";
import { type NodeTransport, startNode } from "../node/mod.ts";
import { canonicalArch, type Channel } from "../schemas/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { assertPrivateMode } from "./node_context.ts";
import { dataDir, dataPaths } from "./paths.ts";
import { parseCommandLine } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

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

/** A positive whole number flag, or undefined when absent. */
function count(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--${flag} wants a whole number from 1, got ${value}`);
  }
  return n;
}

/** `phase serve [options]` */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.serve, argv);
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
  const receiptsMax = count(values["receipts-max"], "receipts-max");
  const receiptsMaxMb = count(values["receipts-max-mb"], "receipts-max-mb");
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
  const arch = canonicalArch(values.arch)!;
  const channel = values.channel as Channel;
  const transports: NodeTransport[] = [
    httpTransport({
      artifactsDir,
      dataDir: data,
      channel,
      arch: values.arch,
      port,
      hostname: values.bind,
      advertise: values.advertise,
      cmdline: values.cmdline,
      pinnedKeys: values.pubkey,
    }),
  ];
  if (!values["no-dht"]) {
    transports.push(p2pTransport({
      listen: values.listen,
      bootstrap: values.bootstrap,
      mode: values["no-mdns"] ? "internet" : values.mode,
      bootProvider: { channel, arch },
      onWarning: (line) => console.error(`phase: ${line}`),
    }));
  }
  let node;
  try {
    node = await startNode({
      key,
      arch,
      dataDir: data,
      jobs: values["no-jobs"] ? false : {
        receiptsMaxCount: receiptsMax,
        receiptsMaxBytes: receiptsMaxMb && receiptsMaxMb * 1024 * 1024,
        allowPrivateModuleUrls: values["allow-private-module-urls"],
      },
      transports,
    });
  } catch (error) {
    if (error instanceof CliError || error instanceof ProviderError) {
      throw error;
    }
    throw new CliError(
      `cannot start the node: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const http = node.transports.http as { url: string; port: number };
  const p2p = node.transports.libp2p as
    | { multiaddrs: string[]; mode: string }
    | undefined;
  const jobs = node.services.jobs !== null;
  const info = {
    url: http.url,
    port: http.port,
    peer_id: key.peerId,
    multiaddrs: p2p?.multiaddrs ?? [],
    artifacts: artifactsDir,
    channel,
    arch,
    jobs,
    receipts: node.services.jobs?.receipts?.dir ?? null,
    mode: p2p?.mode ?? "off",
    private: Boolean(values.private),
  };
  if (values.json) {
    console.log(JSON.stringify(info));
  } else {
    console.log(`phase node serving ${http.url}/ (bound to ${values.bind})`);
    console.log(`  peer id:   ${key.peerId}`);
    console.log(`  artifacts: ${artifactsDir}`);
    console.log(`  manifest:  ${http.url}/manifest.json (${channel}/${arch})`);
    console.log(
      `  jobs:      ${
        jobs
          ? `POST ${http.url}/jobs${p2p ? " and /phase/job/1.0.0" : ""}`
          : "off"
      }`,
    );
    console.log(
      `  receipts:  ${info.receipts ?? "none kept"}`,
    );
    console.log(
      `  libp2p:    ${
        p2p ? `${p2p.mode} mode, ${p2p.multiaddrs.join(" ")}` : "off"
      }`,
    );
  }
  const stop = Promise.withResolvers<string>();
  const onInt = () => stop.resolve("SIGINT");
  const onTerm = () => stop.resolve("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const signal = await stop.promise;
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGTERM", onTerm);
  await node.close();
  if (!values.json) console.error(`phase: node stopped (${signal})`);
  return 0;
}
