/**
 * Entrypoint of a sandbox process: the only code that executes guests. It is
 * started by runner/sandbox.ts with no permissions except read access to the
 * job's preopened directories and to this code (and write access to a
 * writable preopen's directory, only it), reports its permissions, then runs
 * the jobs it is sent, one at a time, on its one thread.
 *
 * A guest runs synchronously, so nothing else here runs while it does; it is
 * stopped from within. Its metering calls the host each time a slice of fuel
 * is spent (runner/metering.ts), and there runner/execute.ts checks the
 * job's wall clock and calls this file's watch, which sends the parent a
 * heartbeat: a write that fails means the parent is gone, however it died
 * (SIGKILL included, since only it holds the pipe's other end), and the
 * process ends at once. Between jobs, standard input closing ends it.
 * @module
 */
import type { ExecuteRequest } from "./execute.ts";
import { type Frame, frameParts, readFrames } from "./frames.ts";
import { type PackedSeed, unpackSeed } from "./scratch_seed.ts";
import { ModuleError } from "./wasm_binary.ts";
import { FORBIDDEN_PERMISSIONS } from "./sandbox_command.ts";

function send(header: Record<string, unknown>, blobs: Uint8Array[] = []) {
  for (const part of frameParts(header, blobs)) {
    let written = 0;
    while (written < part.length) {
      written += Deno.stdout.writeSync(part.subarray(written));
    }
  }
}

function permissionStates(): Record<string, string> {
  return Object.fromEntries(
    FORBIDDEN_PERMISSIONS.map((name) => [
      name,
      Deno.permissions.querySync({ name }).state,
    ]),
  );
}

/** Runs one job frame and sends its outcome. */
function runJob(
  execute: typeof import("./execute.ts").execute,
  { header, blobs }: Frame,
): void {
  const id = header.id;
  // The parent starts its own (backstop) clock for this job from here.
  send({ type: "started", id });
  const [module, stdin, seedBlob] = blobs;
  const seedList = header.scratch_seed as PackedSeed["list"] | undefined;
  try {
    const { stdout, stderr, ...outcome } = execute({
      module,
      stdin,
      moduleKey: header.module_key as string,
      fuel: header.fuel as number | undefined,
      programName: header.program_name as string,
      args: header.args as string[],
      env: header.env as Record<string, string>,
      memoryBytes: header.memory_bytes as number,
      outputLimit: header.output_limit as number,
      preopens: header.preopens as ExecuteRequest["preopens"],
      scratch: header.scratch as string | undefined,
      scratchSeed: seedList
        ? unpackSeed({ list: seedList, blob: seedBlob ?? new Uint8Array() })
        : undefined,
      timeoutMs: header.timeout_ms as number,
      watch: heartbeat,
    });
    send({ type: "result", id, outcome }, [stdout, stderr]);
  } catch (error) {
    send({
      type: "error",
      id,
      message: error instanceof ModuleError
        ? error.message
        : `sandbox error: ${(error as Error)?.message ?? error}`,
      module_error: error instanceof ModuleError,
    });
  }
}

/** Tells the parent this process is alive; ends it if the parent is not. */
function heartbeat(): void {
  try {
    send({ type: "alive" });
  } catch {
    Deno.exit(0);
  }
}

async function serve(): Promise<void> {
  // The code that runs guests loads while the parent checks the
  // permissions reported here (and sends the first job).
  const loading = import("./execute.ts").then(
    ({ execute }) => execute,
    (error: Error) =>
      `sandbox cannot load the code that runs guests: ${
        String(error?.message ?? error).split("\n")[0]
      }`,
  );
  send({ type: "ready", permissions: permissionStates() });
  const execute = await loading;
  for await (const frame of readFrames(Deno.stdin.readable)) {
    if (frame.header.type !== "job") continue;
    // A sandbox that could not load answers every job with why.
    if (typeof execute === "string") {
      send({ type: "error", id: frame.header.id, message: execute });
    } else runJob(execute, frame);
  }
  // Standard input closed: the parent is gone or done with us.
  Deno.exit(0);
}

if (import.meta.main) await serve();
