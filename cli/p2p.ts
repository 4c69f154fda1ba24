/**
 * `phase discover` and `phase submit`: short-lived libp2p clients that find
 * capable nodes and run jobs on them with verified receipts.
 * @module
 */
import {
  JobRejected,
  PhaseNode,
  submitAuto,
  submitJob,
} from "../discovery/mod.ts";
import {
  type Arch,
  canonicalArch,
  generateKey,
  type Requirements,
  toBase64,
} from "../schemas/mod.ts";
import { DEFAULT_JOB_LIMITS } from "../node/mod.ts";
import {
  type Agreement,
  describeDifferences,
  DisagreementError,
  type DisagreementReport,
  outputBytes,
  PhaseClient,
  PhaseError,
  shortPeerId,
} from "../sdk/mod.ts";
import { p2pTransportOn } from "../sdk/p2p.ts";
import { atomicWriteFile } from "../runner/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { checkReceiptTarget, writeReceiptFile } from "./receipt_file.ts";
import { exitStatusOf } from "./exit_status.ts";
import {
  parseScratch,
  positiveNumber,
  readInput,
  readStdin,
  splitGuestArgs,
} from "./run.ts";
import { parseCommandLine, usageError } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

async function client(
  values: { bootstrap?: string[]; mode?: string; listen?: string[] },
): Promise<PhaseNode> {
  if (values.mode !== "internet" && values.mode !== "local") {
    throw new UsageError("--mode must be internet or local");
  }
  if (values.mode === "internet" && !values.bootstrap?.length) {
    throw new UsageError(
      "internet mode needs --bootstrap MULTIADDR (or use --mode local for mDNS)",
    );
  }
  try {
    const node = await PhaseNode.start({
      key: await generateKey(),
      listen: values.listen ?? ["/ip4/0.0.0.0/tcp/0"],
      bootstrap: values.bootstrap,
      mdns: values.mode === "local",
      clientMode: values.mode !== "local",
    });
    if (values.mode === "local") await waitForPeers(node, 3000);
    return node;
  } catch (error) {
    throw new CliError((error as Error).message.split("\n")[0]);
  }
}

/** The canonical form of an --arch value, or a usage error. */
function archOption(value: string | undefined): Arch | undefined {
  if (value === undefined) return undefined;
  const arch = canonicalArch(value);
  if (!arch) {
    throw new UsageError(`--arch must be x86_64, amd64, aarch64 or arm64`);
  }
  return arch;
}

/** Prints a skipped record or node as one line on stderr. */
function warn(line: string): void {
  console.error(`phase: ${line}`);
}

async function waitForPeers(node: PhaseNode, timeoutMs: number): Promise<void> {
  if (await node.waitForPeers(timeoutMs)) {
    // A peer found by mDNS may have published before it knew anyone.
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `phase discover [--mode internet|local] [--bootstrap MULTIADDR…] [--arch A] [--json]` */
export async function discoverCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.discover, argv);
  const arch = archOption(values.arch);
  const node = await client(values);
  try {
    const found = await node.findCapable(
      { arch, onWarning: values.json ? undefined : warn },
      Number(values.timeout) * 1000,
    );
    if (values.json) {
      console.log(
        JSON.stringify(
          found.map((f) => ({
            peer_id: f.peerId,
            addresses: f.addresses,
            ...f.capability,
          })),
        ),
      );
    } else if (found.length === 0) {
      console.error("phase: no capable nodes found");
    } else {
      for (const f of found) {
        const c = f.capability;
        console.log(
          `${f.peerId}  ${c.arch}  ${c.cpu_cores} cores  ${c.memory_mb} MiB  ${c.runtime.name}@${c.runtime.version}  queue ${c.load.queued}/${c.load.queue_limit}${
            c.http_url ? `  ${c.http_url}` : ""
          }`,
        );
      }
    }
    return found.length > 0 ? 0 : 1;
  } finally {
    await node.stop();
  }
}

/** `phase submit <module.wasm> [--peer PEER_ID | --auto] [--bootstrap …] [-- args…]` */
export async function submitCommand(argv: string[]): Promise<number> {
  const [own, guestArgs] = splitGuestArgs(argv);
  const { values, positionals } = parseCommandLine(COMMANDS.submit, own);
  const [modulePath] = positionals;
  if (!modulePath || (!values.peer && !values.auto)) {
    throw usageError(COMMANDS.submit);
  }
  const replicas = positiveNumber(values.replicas, "replicas", true);
  if (values.agree !== undefined && !replicas) {
    throw new UsageError("--agree needs --replicas N");
  }
  if (
    values.agree !== undefined && !["all", "majority"].includes(values.agree)
  ) {
    throw new UsageError("--agree must be all or majority");
  }
  if (replicas && values.peer) {
    throw new UsageError("--replicas picks its nodes: use it with --auto");
  }
  if (values.report && !replicas) {
    throw new UsageError("--report needs --replicas N");
  }
  if (replicas && values.scratch !== undefined) {
    throw new UsageError(
      "--scratch cannot be sent to replicas yet: submit it to one node",
    );
  }
  const memory = positiveNumber(values.memory, "memory", true);
  const jobTimeout = positiveNumber(values["job-timeout"], "job-timeout");
  const fuel = positiveNumber(values.fuel, "fuel", true);
  const arch = archOption(values.arch);
  if (values.receipt) await checkReceiptTarget(values.receipt);
  const module = await readInput(modulePath, "module");
  const stdin = await readStdin();
  // A seed travels in the request; nodes take 8 MiB of seed by default.
  const { scratch, scratchSeed } = parseScratch(
    values.scratch,
    DEFAULT_JOB_LIMITS.maxSeedBytes,
  );
  if (scratch !== undefined && scratchSeed === undefined) {
    throw new UsageError(
      "--scratch for a remote job wants GUEST=HOSTDIR (a remote job always gets a scratch from its seed)",
    );
  }
  const node = await client(values);
  try {
    const job = {
      module,
      args: guestArgs ?? positionals.slice(1),
      stdin,
      ...(scratch && scratchSeed
        ? {
          scratch: {
            path: scratch,
            entries: scratchSeed.map((e) =>
              e.kind === "file"
                ? { path: e.path, kind: e.kind, data: toBase64(e.data!) }
                : e.kind === "symlink"
                ? { path: e.path, kind: e.kind, target: e.target }
                : { path: e.path, kind: e.kind }
            ),
          },
        }
        : {}),
      requirements: {
        ...(memory ? { memory_mb: memory } : {}),
        ...(jobTimeout ? { timeout_seconds: jobTimeout } : {}),
        ...(fuel ? { fuel } : {}),
        ...(arch ? { arch } : {}),
      },
    };
    if (replicas) {
      return await submitReplicated(node, job, {
        replicas,
        agree: values.agree === "majority" ? "majority" : "all",
        arch,
        json: Boolean(values.json),
        receipt: values.receipt,
        report: values.report,
      });
    }
    let result;
    try {
      result = values.peer
        ? await submitJob(node, values.peer, job)
        : await submitAuto(node, job, {
          arch,
          timeoutMs: Number(values.timeout) * 1000,
          onWarning: values.json ? undefined : warn,
          onAttempt: ({ peerId, reason }) =>
            values.json ||
            warn(`${peerId} failed (${reason}); trying the next node`),
        });
    } catch (error) {
      if (error instanceof JobRejected) throw new CliError(error.message);
      throw error;
    }
    if (values.receipt) await writeReceiptFile(values.receipt, result.receipt);
    if (values.json) {
      console.log(JSON.stringify(result.receipt, null, 2));
    } else {
      await Deno.stdout.write(outputBytes(result.receipt, "stdout"));
      await Deno.stderr.write(outputBytes(result.receipt, "stderr"));
      console.error(`phase: receipt ✓ verified, signed by ${result.peerId}`);
    }
    return exitStatusOf(result.receipt);
  } finally {
    await node.stop();
  }
}

/** Writes a disagreement report atomically (temporary file, then rename). */
async function writeReport(
  path: string,
  report: DisagreementReport,
): Promise<void> {
  await atomicWriteFile(
    path,
    new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"),
  );
}

/**
 * `phase submit --auto --replicas N`: the job on N distinct nodes through the
 * SDK; the agreed output, or the differences (and the report, with
 * `--report FILE`) and exit status 1.
 */
async function submitReplicated(
  node: PhaseNode,
  job: {
    module: Uint8Array;
    args: string[];
    stdin: Uint8Array;
    requirements: Requirements;
  },
  options: {
    replicas: number;
    agree: Agreement;
    arch?: Arch;
    json: boolean;
    receipt?: string;
    report?: string;
  },
): Promise<number> {
  const client = new PhaseClient({
    transport: p2pTransportOn(node, { arch: options.arch }),
  });
  const { requirements } = job;
  try {
    const result = await client.run({
      module: job.module,
      args: job.args,
      stdin: job.stdin,
      memoryMb: requirements.memory_mb,
      timeoutSeconds: requirements.timeout_seconds,
      fuel: requirements.fuel ?? undefined,
    }, { replicas: options.replicas, agree: options.agree });
    const { replication } = result;
    if (options.receipt) {
      await writeReceiptFile(options.receipt, result.receipt);
    }
    if (options.json) {
      console.log(JSON.stringify(
        {
          receipt: result.receipt,
          agreeing: replication.agreeing,
          dissenters: replication.dissenters,
          report: replication.report,
        },
        null,
        2,
      ));
    } else {
      await Deno.stdout.write(result.stdoutBytes);
      await Deno.stderr.write(result.stderrBytes);
      warn(
        `${replication.agreeing.length} of ${replication.replicas} replicas agree; receipts ✓ verified, signed by ${
          replication.agreeing.map(shortPeerId).join(", ")
        }`,
      );
      if (replication.report) {
        warn(`outvoted: ${replication.dissenters.join(", ")}`);
        for (
          const line of describeDifferences(replication.report.differences)
        ) {
          warn(`  ${line}`);
        }
      }
    }
    if (options.report && replication.report) {
      await writeReport(options.report, replication.report);
    }
    return exitStatusOf(result.receipt);
  } catch (error) {
    if (error instanceof DisagreementError) {
      if (options.report) {
        await writeReport(options.report, error.report);
      }
      if (options.json) console.log(JSON.stringify(error.report, null, 2));
      for (const line of describeDifferences(error.report.differences)) {
        warn(`  ${line}`);
      }
      throw new CliError(error.message);
    }
    if (error instanceof PhaseError) throw new CliError(error.message);
    throw error;
  }
}
