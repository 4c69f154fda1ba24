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
 * process ends at once. While this thread is free (between jobs, and while V8
 * compiles a job's module on its own threads), standard input closing ends
 * it. Lazy compilation is off (the command's V8 flags), so no function is
 * compiled later, inside the guest's run, where nothing could watch.
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

type Runner = typeof import("./execute.ts");

/** Modules above this size are followed by a full garbage collection. */
const BIG_MODULE_BYTES = 1024 * 1024;

/** V8's `gc()`, exposed by the sandbox's V8 flags. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Sends a job's failure: a module error, or the sandbox's own. */
function sendError(id: unknown, error: unknown): void {
  send({
    type: "error",
    id,
    message: error instanceof ModuleError
      ? error.message
      : `sandbox error: ${(error as Error)?.message ?? error}`,
    module_error: error instanceof ModuleError,
  });
}

/** Runs one job frame and sends its outcome. */
async function runJob(runner: Runner, { header, blobs }: Frame): Promise<void> {
  const id = header.id;
  const timeoutMs = header.timeout_ms as number;
  // The parent starts its own (backstop) clock for this job from here.
  send({ type: "started", id });
  const started = performance.now();
  const [module, stdin, seedBlob] = blobs;
  const seedList = header.scratch_seed as PackedSeed["list"] | undefined;
  const request: ExecuteRequest = {
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
    watch: heartbeat,
  };
  // Compiling runs on V8's threads, so this one keeps the wall clock (and
  // notices a parent that is gone: see serve). A compile that outlasts the
  // limit cannot be stopped, so the process answers and ends.
  const overdue = setTimeout(() => {
    send({
      type: "result",
      id,
      outcome: {
        status: "timeout",
        exitCode: null,
        error: `timeout: the guest ran longer than ${timeoutMs / 1000} s`,
        wallTimeMs: performance.now() - started,
        cpuTimeMs: 0,
        memoryPeakBytes: 0,
        fuelConsumed: null,
        stdoutTruncated: false,
        stderrTruncated: false,
      },
    }, [new Uint8Array(), new Uint8Array()]);
    Deno.exit(0);
  }, timeoutMs);
  try {
    await runner.compileAhead(request);
  } catch (error) {
    return sendError(id, error);
  } finally {
    clearTimeout(overdue);
  }
  try {
    const { stdout, stderr, ...outcome } = runner.execute({
      ...request,
      timeoutMs,
      clockStartedAt: started,
    });
    send({ type: "result", id, outcome }, [stdout, stderr]);
  } catch (error) {
    sendError(id, error);
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
    (runner): Runner => runner,
    (error: Error) =>
      `sandbox cannot load the code that runs guests: ${
        String(error?.message ?? error).split("\n")[0]
      }`,
  );
  send({ type: "ready", permissions: permissionStates() });
  // Frames are read on their own, so standard input closing (the parent is
  // gone or done with us) ends the process at once whenever this thread is
  // free, a job's compile included.
  const jobs: Frame[] = [];
  let arrived = () => {};
  (async () => {
    for await (const frame of readFrames(Deno.stdin.readable)) {
      if (frame.header.type !== "job") continue;
      jobs.push(frame);
      arrived();
    }
    Deno.exit(0);
  })();
  const runner = await loading;
  for (;;) {
    if (jobs.length === 0) {
      await new Promise<void>((resolve) => arrived = resolve);
      continue;
    }
    const frame = jobs.shift()!;
    // A sandbox that could not load answers every job with why.
    if (typeof runner === "string") {
      send({ type: "error", id: frame.header.id, message: runner });
    } else await runJob(runner, frame);
    // A big module's compiled code and bytes are the most this process
    // holds outside a job's budget: freed now, not at V8's leisure.
    if ((frame.blobs[0]?.length ?? 0) > BIG_MODULE_BYTES) collectGarbage();
  }
}

if (import.meta.main) await serve();
