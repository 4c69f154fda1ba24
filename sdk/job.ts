/**
 * A job as an application describes it, and the same job prepared for
 * sending: its module and input hashed, a fresh nonce and job id chosen, so
 * that the receipt that comes back can be checked against them.
 * @module
 */
import {
  fromBase64,
  inputHash,
  randomHex,
  type Receipt,
  sha256Ref,
} from "../schemas/mod.ts";

/** A WebAssembly (WASI preview1) job. */
export interface Job {
  /** The module's bytes. */
  module: Uint8Array | ArrayBuffer;
  /** Arguments after the program name. */
  args?: string[];
  /** Environment variables. */
  env?: Record<string, string>;
  /** Standard input: bytes, or text sent as UTF-8. */
  stdin?: Uint8Array | string;
  /** Memory budget in MiB (the node's default when absent). */
  memoryMb?: number;
  /** Wall-clock limit in seconds (the node's default when absent). */
  timeoutSeconds?: number;
  /** Fuel budget: instructions the guest may execute. */
  fuel?: number;
}

/** A job ready to send: hashed, with the nonce and id its receipt must carry. */
export interface PreparedJob {
  /** The module's bytes. */
  module: Uint8Array;
  /** `sha256:<hex>` of the module. */
  moduleHash: string;
  /** Arguments. */
  args: string[];
  /** Environment. */
  env: Record<string, string>;
  /** Standard input. */
  stdin: Uint8Array;
  /** The receipt's `input_hash` for this input. */
  inputHash: string;
  /** The nonce the receipt must carry. */
  nonce: string;
  /** The job id the receipt must carry (where the transport can set it). */
  jobId: string;
  /** Memory budget in MiB. */
  memoryMb?: number;
  /** Wall-clock limit in seconds. */
  timeoutSeconds?: number;
  /** Fuel budget. */
  fuel?: number;
}

/** Hashes a job and gives it a fresh nonce and job id. */
export async function prepareJob(job: Job): Promise<PreparedJob> {
  const module = job.module instanceof Uint8Array
    ? job.module
    : new Uint8Array(job.module);
  const args = job.args ?? [];
  const env = job.env ?? {};
  const stdin = typeof job.stdin === "string"
    ? new TextEncoder().encode(job.stdin)
    : job.stdin ?? new Uint8Array();
  return {
    module,
    moduleHash: await sha256Ref(module),
    args,
    env,
    stdin,
    inputHash: await inputHash({ args, env, stdin }),
    ...freshIdentity(),
    memoryMb: job.memoryMb,
    timeoutSeconds: job.timeoutSeconds,
    fuel: job.fuel,
  };
}

/** A new nonce (16 random bytes, hex) and job id (a random UUID). */
export function freshIdentity(): { nonce: string; jobId: string } {
  return { nonce: randomHex(16), jobId: crypto.randomUUID() };
}

/** The node a job ran on. */
export interface NodeInfo {
  /** Its libp2p peer id: the key that signed the receipt. */
  peerId: string;
  /** How it was reached: a URL, a multiaddr, or `local`. */
  address?: string;
  /** Every address known for it (p2p). */
  addresses?: string[];
}

/** What a verified run returns. */
export interface RunResult {
  /** Standard output as text (UTF-8, invalid bytes replaced). */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
  /** Standard output's bytes. */
  stdoutBytes: Uint8Array;
  /** Standard error's bytes. */
  stderrBytes: Uint8Array;
  /** The guest's exit code, or null when it did not exit by itself. */
  exitCode: number | null;
  /** The verified, signed receipt. */
  receipt: Receipt;
  /** The node that ran the job and signed the receipt. */
  node: NodeInfo;
}

/** The bytes of a receipt's output field, whatever its encoding. */
export function outputBytes(
  receipt: Receipt,
  stream: "stdout" | "stderr",
): Uint8Array {
  return receipt.output_encoding === "base64"
    ? fromBase64(receipt[stream])
    : new TextEncoder().encode(receipt[stream]);
}

/** The {@link RunResult} of a verified receipt. */
export function resultOf(receipt: Receipt, node: NodeInfo): RunResult {
  const stdoutBytes = outputBytes(receipt, "stdout");
  const stderrBytes = outputBytes(receipt, "stderr");
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return {
    stdout: text(stdoutBytes),
    stderr: text(stderrBytes),
    stdoutBytes,
    stderrBytes,
    exitCode: receipt.execution.exit_code,
    receipt,
    node,
  };
}
