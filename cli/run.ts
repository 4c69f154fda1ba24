/**
 * `phase run` and `phase execute-job`: run a module locally in the sandbox
 * and produce a signed receipt.
 * @module
 */
// Each from its own file, not the folders' faces: `phase run` is the
// command whose cold start is measured, and loads only what it uses.
import type { Preopen } from "../runner/mod.ts";
import { JobRefused, type JobResult, runJob } from "../runner/job.ts";
import {
  DEFAULT_LIMITS,
  type LIMIT_RANGES,
  limitProblem,
} from "../runner/limits.ts";
import { MIB } from "../runner/wasm_binary.ts";
import {
  readSeedDir,
  type SeedEntry,
  SeedError,
} from "../runner/scratch_seed.ts";
import type { JobManifest } from "../schemas/mod.ts";
import { readAllCapped } from "../schemas/encoding.ts";
import { validateJobManifest } from "../schemas/validate.ts";
import { verifyReceipt } from "../schemas/receipt.ts";
import { ReceiptStore } from "../node/receipt_store.ts";
import { CliError, UsageError } from "./errors.ts";
import { checkReceiptTarget, writeReceiptFile } from "./receipt_file.ts";
import { exitStatusOf } from "./exit_status.ts";
import {
  assertPrivateMode,
  type NodeOptions,
  openNode,
} from "./node_context.ts";
import { receiptLines, renderLines } from "../runner/receipt_box.ts";
import { parseCommandLine, usageError } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

const MAX_STDIN = 256 * 1024 * 1024;

/** Reads a file for a command, with a one-line error. */
export async function readInput(
  path: string,
  what: string,
): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : (error as Error).message;
    throw new CliError(`cannot read ${what} ${path}: ${reason}`);
  }
}

/** Reads a job manifest file and validates it. */
export async function readManifest(path: string): Promise<JobManifest> {
  const text = new TextDecoder().decode(await readInput(path, "job manifest"));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`job manifest ${path} is not JSON`);
  }
  return validateJobManifest(parsed);
}

/** Reads all of stdin (nothing when it is a terminal), with a size cap. */
export async function readStdin(): Promise<Uint8Array> {
  if (Deno.stdin.isTerminal()) return new Uint8Array();
  return await readAllCapped(Deno.stdin.readable, MAX_STDIN, () => {
    throw new CliError(`standard input is larger than ${MAX_STDIN} bytes`);
  });
}

/**
 * Why `path` cannot be where the guest sees a directory (it must be
 * absolute, without empty, `.` or `..` components or a colon), or null.
 */
function guestPathProblem(path: string): string | null {
  const parts = path.split("/").slice(1);
  if (
    !path.startsWith("/") || path === "/" ||
    parts.some((p) => p === "" || p === "." || p === ".." || p.includes(":"))
  ) {
    return `the guest path ${
      JSON.stringify(path)
    } must be absolute, without empty, . or .. parts or a colon (e.g. /data)`;
  }
  return null;
}

/** Parses `--dir HOST:GUEST[:rw|:ro]` (read-only unless `:rw`). */
export function parsePreopen(text: string): Preopen {
  const [host, guest, mode, ...extra] = text.split(":");
  if (!host || !guest || extra.length > 0) {
    throw new UsageError(
      `--dir wants HOST:GUEST[:rw|:ro] (a host path with a colon cannot be shared), got ${text}`,
    );
  }
  if (mode !== undefined && mode !== "rw" && mode !== "ro") {
    throw new UsageError(`--dir mode must be rw or ro, got ${mode}`);
  }
  const problem = guestPathProblem(guest);
  if (problem) throw new UsageError(`--dir ${problem}`);
  // The host path becomes part of the sandbox's --allow-read flag, where a
  // comma would start another path (e.g. "/tmp/x,/etc").
  if (/[,\0\n\r]/.test(host)) {
    throw new UsageError(
      `--dir ${
        JSON.stringify(host)
      }: a host path with a comma or line break cannot be shared with the sandbox`,
    );
  }
  try {
    if (!Deno.statSync(host).isDirectory) {
      throw new CliError(`--dir ${host} is not a directory`);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`--dir ${host}: ${(error as Error).message}`);
  }
  return mode === "rw" ? { host, guest, writable: true } : { host, guest };
}

/**
 * Parses `--scratch GUEST[=HOSTDIR]`: the guest path, and the host
 * directory to seed it from (read now, within `maxBytes` of seed cost).
 */
export function parseScratch(
  text: string | undefined,
  maxBytes: number,
): { scratch?: string; scratchSeed?: SeedEntry[] } {
  if (text === undefined) return {};
  const eq = text.indexOf("=");
  const guest = eq === -1 ? text : text.slice(0, eq);
  if (!guest) {
    throw new UsageError(`--scratch wants GUEST[=HOSTDIR], got ${text}`);
  }
  const problem = guestPathProblem(guest);
  if (problem) throw new UsageError(`--scratch ${problem}`);
  if (eq === -1) return { scratch: guest };
  const host = text.slice(eq + 1);
  try {
    if (!Deno.statSync(host).isDirectory) {
      throw new CliError(`--scratch ${host} is not a directory`);
    }
    return {
      scratch: guest,
      scratchSeed: readSeedDir(host, maxBytes),
    };
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (error instanceof SeedError) {
      throw new CliError(`--scratch ${error.message}`);
    }
    if (error instanceof Deno.errors.NotCapable) {
      // Deno's own advice (--allow-all) is not Phase's to give.
      throw new CliError(
        `--scratch ${host}: system folders such as /proc and /dev cannot seed a scratch`,
      );
    }
    throw new CliError(`--scratch ${host}: ${(error as Error).message}`);
  }
}

function parseEnv(items: string[]): Record<string, string> | undefined {
  if (items.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env wants K=V, got ${item}`);
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}

/** Parses a positive number option (`--flag`), or throws a usage error. */
export function positiveNumber(
  value: string | undefined,
  flag: string,
  integer = false,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(
      `--${flag} wants a positive ${
        integer ? "integer" : "number"
      }, got ${value}`,
    );
  }
  return n;
}

/**
 * Parses a job limit option, range-checked against what runJob accepts
 * ({@link LIMIT_RANGES}), or throws a one-line usage error.
 */
export function limitOption(
  value: string | undefined,
  flag: string,
  limit: keyof typeof LIMIT_RANGES,
): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === "" ? NaN : Number(value);
  const problem = limitProblem(limit, n);
  if (problem) {
    throw new UsageError(
      `--${flag} ${problem.replace(/got .*$/, `got ${value}`)}`,
    );
  }
  return n;
}

/** Splits argv at the first `--`: options before, guest args after. */
export function splitGuestArgs(
  argv: string[],
): [string[], string[] | undefined] {
  const at = argv.indexOf("--");
  return at === -1
    ? [argv, undefined]
    : [argv.slice(0, at), argv.slice(at + 1)];
}

/** A job's result and the receipt files that could not be written. */
interface LoggedResult extends JobResult {
  /** One line per receipt file that could not be written. */
  writeErrors: string[];
}

async function runAndLog(
  options: NodeOptions & { receipt?: string },
  spec: Parameters<typeof runJob>[0],
): Promise<LoggedResult> {
  if (options.private) assertPrivateMode([options.receipt]);
  if (options.receipt) await checkReceiptTarget(options.receipt);
  const node = await openNode(options);
  const store = node.receiptsDir
    ? new ReceiptStore({ dir: node.receiptsDir })
    : null;
  // Reads the store's index while the sandbox starts, not after the job.
  store?.list().catch(() => {});
  let result: JobResult;
  try {
    result = await runJob(spec, node);
  } catch (error) {
    await node.sandbox.close();
    if (error instanceof JobRefused) throw new CliError(error.message);
    throw error;
  }
  // Ends the sandbox process; its exit (tearing down a V8 process takes a
  // few milliseconds) is not waited for.
  node.sandbox.close();
  // The job ran: a receipt that cannot be written is reported after the
  // guest's output, never instead of it.
  const writeErrors: string[] = [];
  if (store) {
    await store.add(result.receipt)
      .catch((error) =>
        writeErrors.push(
          `cannot log the receipt in ${node.receiptsDir}: ${
            (error as Error).message
          }`,
        )
      );
  }
  if (options.receipt) {
    await writeReceiptFile(options.receipt, result.receipt).catch((error) =>
      writeErrors.push(
        `cannot write receipt ${options.receipt}: ${(error as Error).message}`,
      )
    );
  }
  return { ...result, writeErrors };
}

/** Prints why receipt files are missing; the exit status to use then. */
function reportWriteErrors(errors: string[], status: number): number {
  for (const line of errors) console.error(`phase: ${line}`);
  return errors.length > 0 && status === 0 ? 1 : status;
}

/** `phase run <module.wasm> [options] [-- args…]` */
export async function runCommand(argv: string[]): Promise<number> {
  const [own, guestArgs] = splitGuestArgs(argv);
  const { values, positionals } = parseCommandLine(COMMANDS.run, own);
  const [modulePath, ...extra] = positionals;
  if (!modulePath) throw usageError(COMMANDS.run);
  const args = guestArgs ?? (extra.length ? extra : undefined);
  const limits = {
    memoryMb: limitOption(values.memory, "memory", "memoryMb"),
    timeoutSeconds: limitOption(values.timeout, "timeout", "timeoutSeconds"),
    fuel: limitOption(values.fuel, "fuel", "fuel"),
    outputBytes: limitOption(
      values["output-limit"],
      "output-limit",
      "outputBytes",
    ),
  };
  const env = parseEnv(values.env);
  const preopens = values.dir.map(parsePreopen);
  if (values.private && preopens.some((p) => p.writable)) {
    throw new CliError(
      "--dir …:rw is refused in private mode: a private run leaves nothing on this machine (use --scratch GUEST=HOSTDIR for a writable copy)",
    );
  }
  const manifest = values.manifest
    ? await readManifest(values.manifest)
    : undefined;
  const scratch = parseScratch(
    values.scratch,
    (limits.memoryMb ?? manifest?.memory_mb ?? DEFAULT_LIMITS.memoryMb) * MIB,
  );
  const module = await readInput(modulePath, "module");
  const { receipt, outcome, writeErrors } = await runAndLog(values, {
    module,
    programName: modulePath.split("/").pop(),
    args,
    env,
    stdin: await readStdin(),
    ...limits,
    preopens,
    ...scratch,
    manifest,
  });
  if (values.json) {
    console.log(JSON.stringify(receipt, null, 2));
  } else {
    await Deno.stdout.write(outcome.stdout);
    await Deno.stderr.write(outcome.stderr);
  }
  const { error } = receipt.execution;
  if (!values.quiet && !values.json) {
    if (error) console.error(`phase: ${error}`);
    if (receipt.stdout_truncated || receipt.stderr_truncated) {
      console.error(
        `phase: output cut at ${receipt.limits.output_bytes} bytes per stream`,
      );
    }
  }
  return reportWriteErrors(writeErrors, exitStatusOf(receipt));
}

/** `phase execute-job --wasm FILE [--args ARG]…` (the original Phase's form). */
export async function executeJobCommand(argv: string[]): Promise<number> {
  const spec = COMMANDS["execute-job"];
  const { values, positionals } = parseCommandLine(spec, argv);
  const modulePath = values.wasm ?? positionals[0];
  if (!modulePath) throw usageError(spec);
  const manifest = values.manifest
    ? await readManifest(values.manifest)
    : undefined;
  const module = await readInput(modulePath, "module");
  const { receipt, writeErrors } = await runAndLog(values, {
    module,
    programName: modulePath.split("/").pop(),
    args: values.args.length ? values.args : undefined,
    memoryMb: limitOption(values.memory, "memory", "memoryMb"),
    timeoutSeconds: limitOption(values.timeout, "timeout", "timeoutSeconds"),
    fuel: limitOption(values.fuel, "fuel", "fuel"),
    manifest,
  });
  const verdict = await verifyReceipt(receipt);
  if (values.json) {
    console.log(JSON.stringify(receipt, null, 2));
  } else {
    const reason = verdict.valid ? undefined : verdict.reason;
    await Deno.stdout.write(new TextEncoder().encode(renderLines(
      receiptLines(receipt, { valid: verdict.valid, reason }),
      Deno.stdout.isTerminal(),
    )));
  }
  return reportWriteErrors(
    writeErrors,
    verdict.valid ? exitStatusOf(receipt) : 1,
  );
}
