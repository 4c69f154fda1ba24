/**
 * The local transport (Deno and Node): runs the job on this machine with
 * the `phase` command line (`phase run --json`), in its sandbox, signed by
 * the local node key. The nonce travels in a job manifest, so the receipt
 * is bound to this request; the signer is the local key (the CLI picks the
 * job id). Uses `node:child_process` and a temporary folder for the module.
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concatBytes } from "../schemas/mod.ts";
import { PhaseError, TimeoutError, TransportError } from "./errors.ts";
import type { NodeInfo, PreparedJob } from "./job.ts";
import type { Delivery, ExecuteOptions, Transport } from "./transport.ts";

export type { Delivery, ExecuteOptions, Transport };
export type { NodeInfo, PreparedJob };

/** Options of {@link localTransport}. */
export interface LocalTransportOptions {
  /** The command that runs Phase (default `["phase"]`; e.g. `["./phase"]`). */
  command?: string[];
  /** Extra flags for `phase run` (e.g. `["--data-dir", DIR]` or `["--ephemeral"]`). */
  flags?: string[];
  /** Environment of the command (default: this process's). */
  env?: Record<string, string>;
}

/** Largest answer read from the command (a receipt). */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCommand(
  command: string[],
  options: { stdin: Uint8Array; env?: Record<string, string> },
  signal: AbortSignal,
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), {
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
      signal,
    });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    let size = 0;
    const collect = (into: Uint8Array[]) => (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > MAX_OUTPUT_BYTES) child.kill();
      else into.push(chunk);
    };
    child.stdout.on("data", collect(out));
    child.stderr.on("data", collect(err));
    child.on("error", reject);
    child.on("close", (code) => {
      const text = (parts: Uint8Array[]) =>
        new TextDecoder().decode(concatBytes(parts));
      resolve({ code, stdout: text(out), stderr: text(err) });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.stdin);
  });
}

/** A transport that runs jobs with the local `phase` command. */
export function localTransport(
  options: LocalTransportOptions = {},
): Transport {
  const command = options.command ?? ["phase"];
  return {
    kind: "local",
    bindsJobId: false,
    nodes() {
      // One machine is one node: replicas need a network transport.
      return Promise.resolve([]);
    },
    async execute(
      job: PreparedJob,
      { signal }: ExecuteOptions,
    ): Promise<Delivery> {
      const dir = await mkdtemp(join(tmpdir(), "phase-sdk-"));
      try {
        const module = join(dir, "job.wasm");
        const manifest = join(dir, "job.json");
        await writeFile(module, job.module);
        await writeFile(
          manifest,
          JSON.stringify({
            version: 1,
            module_hash: job.moduleHash,
            args: job.args,
            env: job.env,
            nonce: job.nonce,
            ...(job.memoryMb !== undefined ? { memory_mb: job.memoryMb } : {}),
            ...(job.timeoutSeconds !== undefined
              ? { timeout_seconds: job.timeoutSeconds }
              : {}),
            ...(job.fuel !== undefined ? { fuel: job.fuel } : {}),
          }),
        );
        let finished: Finished;
        try {
          finished = await runCommand(
            [
              ...command,
              "run",
              module,
              "--manifest",
              manifest,
              "--json",
              ...options.flags ?? [],
            ],
            { stdin: job.stdin, env: options.env },
            signal,
          );
        } catch (error) {
          if (signal.aborted) throw new TimeoutError("phase run was stopped");
          throw new TransportError(
            `cannot run ${command.join(" ")}: ${(error as Error).message}`,
          );
        }
        let receipt: unknown;
        try {
          receipt = JSON.parse(finished.stdout);
        } catch {
          const line = finished.stderr.trim().split("\n").pop() ??
            `exit status ${finished.code}`;
          throw new PhaseError(line.replace(/^phase: /, ""));
        }
        const signer = (receipt as { node_peer_id?: unknown })?.node_peer_id;
        // The local node is this machine's own key: its signature is checked
        // like any other, and it is the node this transport talked to.
        const node: NodeInfo = {
          peerId: typeof signer === "string" ? signer : "",
          address: "local",
        };
        return { receipt, node };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    close() {
      return Promise.resolve();
    },
  };
}
