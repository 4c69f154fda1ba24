/**
 * Entrypoint of a sandbox process: the only code that executes guests. It is
 * started by runner/sandbox.ts with no permissions except read access to the
 * job's preopened directories and to this code (and write access to a
 * writable preopen's directory, only it), reports its permissions,
 * then runs the jobs it is sent, one at a time.
 *
 * The process has two threads. The guest runs on a worker thread (this same
 * file, started as a Worker), so the main thread stays free while a guest
 * spins or sleeps in a host call: it ends the process the moment its
 * standard input closes — which happens however the parent dies, SIGKILL
 * included, since only the parent holds the pipe's other end — and it
 * enforces the job's wall clock, answering with the output kept so far
 * (shared with the guest thread) before it exits.
 * @module
 */
import type { ExecuteOutcome, ExecuteRequest } from "./execute.ts";
import { type Frame, frameParts, readFrames } from "./frames.ts";
import { createSharedOutput, readOutput } from "./shared_output.ts";
import { type PackedSeed, unpackSeed } from "./scratch_seed.ts";
import type { StreamName } from "./wasi_env.ts";
import { ModuleError } from "./wasm_binary.ts";

/** Permissions that a sandbox process must not hold. */
export const FORBIDDEN_PERMISSIONS = [
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
] as const;

/** What the guest thread answers for one job. */
type GuestReply =
  | { type: "result"; outcome: Omit<ExecuteOutcome, "stdout" | "stderr"> }
  | { type: "error"; message: string; moduleError: boolean };

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

/**
 * The guest thread: runs each request it is posted and posts the outcome.
 * Only this thread loads the code that executes guests (a dynamic import),
 * so the process's main thread starts this thread before loading any of it.
 */
async function guestThread(): Promise<void> {
  const { execute } = await import("./execute.ts");
  const port = self as unknown as Worker;
  port.onmessage = (event: MessageEvent<ExecuteRequest>) => {
    let reply: GuestReply;
    try {
      const { stdout: _o, stderr: _e, ...outcome } = execute(event.data);
      reply = { type: "result", outcome };
    } catch (error) {
      reply = {
        type: "error",
        message: error instanceof ModuleError
          ? error.message
          : `sandbox error: ${(error as Error)?.message ?? error}`,
        moduleError: error instanceof ModuleError,
      };
    }
    port.postMessage(reply);
  };
  port.postMessage({ type: "loaded" });
}

/** Runs one job frame on the guest thread, with the wall clock here. */
function runJob(guest: Worker, { header, blobs }: Frame): Promise<void> {
  const id = header.id;
  const outputLimit = header.output_limit as number;
  const output: Record<StreamName, ReturnType<typeof createSharedOutput>> = {
    stdout: createSharedOutput(outputLimit),
    stderr: createSharedOutput(outputLimit),
  };
  const finish = (outcome: Omit<ExecuteOutcome, "stdout" | "stderr">) => {
    const stdout = readOutput(output.stdout);
    const stderr = readOutput(output.stderr);
    send({
      type: "result",
      id,
      outcome: {
        ...outcome,
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      },
    }, [stdout.bytes, stderr.bytes]);
  };
  const done = Promise.withResolvers<void>();
  // The parent starts its own clock for this job from here.
  send({ type: "started", id });
  const started = performance.now();
  const timeoutMs = header.timeout_ms as number;
  const timer = setTimeout(() => {
    finish({
      status: "timeout",
      exitCode: null,
      error: `timeout: the guest ran longer than ${timeoutMs / 1000} s`,
      wallTimeMs: performance.now() - started,
      cpuTimeMs: 0,
      memoryPeakBytes: 0,
      fuelConsumed: null,
      stdoutTruncated: false,
      stderrTruncated: false,
    });
    // The guest thread cannot be stopped from here; ending the process
    // frees its CPU and memory at once, and the pool starts a new one.
    Deno.exit(0);
  }, timeoutMs);
  guest.onmessage = ({ data }: MessageEvent<GuestReply>) => {
    clearTimeout(timer);
    if (data.type === "result") finish(data.outcome);
    else {
      send({
        type: "error",
        id,
        message: data.message,
        module_error: data.moduleError,
      });
    }
    done.resolve();
  };
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
    outputLimit,
    preopens: header.preopens as ExecuteRequest["preopens"],
    scratch: header.scratch as string | undefined,
    scratchSeed: seedList
      ? unpackSeed({ list: seedList, blob: seedBlob ?? new Uint8Array() })
      : undefined,
    output,
  };
  // Module and stdin share the frame's buffer: hand it over, not a copy.
  guest.postMessage(request, [module.buffer as ArrayBuffer]);
  return done.promise;
}

async function serve(): Promise<void> {
  // Ready before the guest thread exists: the parent checks these
  // permissions, and may send a job, while that thread starts and loads the
  // code that runs guests (jobs wait for it below).
  send({ type: "ready", permissions: permissionStates() });
  const guest = new Worker(import.meta.url, { type: "module" });
  const failure = (event: ErrorEvent) => {
    event.preventDefault();
    return `sandbox guest thread failed: ${event.message.split("\n")[0]}`;
  };
  const loaded = new Promise<void>((resolve, reject) => {
    guest.onmessage = () => resolve();
    guest.onerror = (event) => reject(new Error(failure(event)));
  });
  loaded.then(() => {
    guest.onerror = (event) => {
      console.error(failure(event));
      Deno.exit(70);
    };
  }, (error: Error) => console.error(error.message));
  // A process's first timer takes milliseconds to set up: done now, while
  // the guest thread loads, not on the first job's path.
  clearTimeout(setTimeout(() => {}, 0));
  let running = Promise.resolve();
  for await (const frame of readFrames(Deno.stdin.readable)) {
    if (frame.header.type !== "job") continue;
    // A guest thread that could not start answers every job with why.
    running = running.then(() => loaded).then(
      () => runJob(guest, frame),
      (error: Error) =>
        send({ type: "error", id: frame.header.id, message: error.message }),
    );
  }
  // Standard input closed: the parent is gone or done with us. Whatever the
  // guest thread is doing, the process ends now.
  Deno.exit(0);
}

const workerScope = (globalThis as { WorkerGlobalScope?: typeof Object })
  .WorkerGlobalScope;
const inWorker = workerScope !== undefined &&
  globalThis instanceof workerScope;
if (inWorker) await guestThread();
else if (import.meta.main) await serve();
