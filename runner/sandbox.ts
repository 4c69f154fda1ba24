/**
 * Sandboxed execution: guests run in separate Deno processes that hold no
 * write, net, env, run, ffi or sys permission (read only for a job's
 * preopened directories and the sandbox's own code). A pool keeps warm
 * processes for back-to-back jobs. Only metered modules run there: the
 * sandbox stops a guest at its wall-clock limit from the metering's fuel
 * checks and answers with the output kept so far, ready for the next job;
 * the pool kills a sandbox that has not answered a second after the limit
 * (a guest still compiling, say) and starts a replacement. A sandbox
 * process ends by itself as soon as its parent is gone, whatever its guest
 * is doing (runner/sandbox_worker.ts).
 * @module
 */
import type { ExecuteOutcome, ExecuteRequest } from "./execute.ts";
import { type Frame, frameParts, readFrames } from "./frames.ts";
import {
  defaultSandboxCommand,
  FORBIDDEN_PERMISSIONS,
  SandboxError,
  spawnSandbox,
  takePrestartedSandbox,
} from "./sandbox_command.ts";
import { packSeed } from "./scratch_seed.ts";
import type { Preopen } from "./wasi_env.ts";
import { ModuleError } from "./wasm_binary.ts";

/**
 * A job for the sandbox: what the guest runs with, plus its wall-clock limit.
 * Jobs with preopened directories get a process of their own.
 */
export type SandboxJob = Omit<ExecuteRequest, "output" | "preopens"> & {
  /** Wall-clock limit in milliseconds. */
  timeoutMs: number;
  /**
   * Host directories: the job's process may read them, and write those
   * marked writable (and nothing else).
   */
  preopens?: Preopen[];
  /**
   * Cancels the job: a queued job leaves the queue, a running one is stopped
   * by killing its process. The run then rejects with {@link JobCancelled}.
   */
  signal?: AbortSignal;
};

/** A job cancelled through its signal (its client went away). */
export class JobCancelled extends Error {
  /** Creates the error. */
  constructor() {
    super("cancelled: the client went away");
    this.name = "JobCancelled";
  }
}

/** Thrown when the pool's queue is full. */
export class QueueFullError extends Error {
  /** Creates the error. */
  constructor(limit: number) {
    super(`queue full: ${limit} jobs are already waiting`);
    this.name = "QueueFullError";
  }
}

export {
  assertFlagSafePath,
  defaultSandboxCommand,
  prestartSandbox,
  SandboxError,
} from "./sandbox_command.ts";

/** How to start sandbox processes. */
export interface SandboxOptions {
  /** Warm processes kept for jobs without preopens (default 2). */
  size?: number;
  /** Jobs that may wait for a process before `queue full` (default 64). */
  queueLimit?: number;
  /**
   * Command that starts a sandbox process, given the directories it may
   * read and those it may write. Defaults to `deno run` of
   * runner/sandbox_worker.ts.
   */
  command?: (
    readDirs: string[],
    writeDirs?: string[],
  ) => { program: string; args: string[] };
}

/**
 * Memory a sandbox process may hold beyond its job's memory budget: its own
 * footprint (one V8 isolate, about 40 MiB idle), compiled code for
 * small modules, and garbage not yet collected. tests/containment_test.ts
 * measures each hostile module's peak against budget + this.
 */
export const SANDBOX_OVERHEAD_MIB = 96;

/**
 * How long after a job's wall-clock limit the pool kills a sandbox that has
 * not answered (the sandbox stops the guest itself at the limit).
 */
const KILL_GRACE_MS = 1000;

/**
 * How long a job may wait for its sandbox to load the code that runs guests
 * before its wall clock starts (seconds on an emulated machine, e.g.
 * aarch64 under TCG); only a sandbox that never starts the guest waits this
 * long.
 */
const GUEST_LOAD_MS = 120_000;

/** Longest wall-clock limit a timer can hold (2^31 - 1 ms, less the grace). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1 - KILL_GRACE_MS;

/** A host path with its links resolved, or as given when it cannot be. */
function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path;
  }
}

type Listener = (frame: Frame) => void;

/** One sandbox process. */
class SandboxProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #listener: Listener | null = null;
  #onExit: (() => void) | null = null;
  #stderrTail = "";
  #stderrDrained: Promise<void>;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  #nextId = 1;
  dead = false;
  /** Operating-system process id. */
  readonly pid: number;

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = this.#child.pid;
    this.#writer = this.#child.stdin.getWriter();
    this.#stderrDrained = this.#drainStderr();
    // A process's first timer takes milliseconds to set up: done now, while
    // the sandbox starts, not on the first job's path.
    clearTimeout(setTimeout(() => {}, 0));
    const frames = readFrames(this.#child.stdout);
    this.ready = this.#handshake(frames);
    const pumped = this.ready.then(() => this.#pump(frames), () => {});
    this.exited = this.#child.status.then(async () => {
      // A process that answers and then exits (a timeout ends the sandbox)
      // is judged by its answer: read what it wrote before calling it dead.
      await pumped;
      this.dead = true;
      this.#onExit?.();
    });
  }

  async #drainStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.#child.stderr) {
      this.#stderrTail = (this.#stderrTail + decoder.decode(chunk)).slice(
        -2000,
      );
    }
  }

  /** Last line the process wrote to its stderr, for error messages. */
  lastError(): string {
    const lines = this.#stderrTail.trim().split("\n").map((l) => l.trim());
    // Deno's own "error: …" line, not a backtrace printed after it.
    const error = lines.findLast((line) => line.startsWith("error: "));
    return error ?? (lines[lines.length - 1] || "no message");
  }

  async #handshake(frames: AsyncGenerator<Frame>): Promise<void> {
    const first = await frames.next();
    if (first.done || first.value.header.type !== "ready") {
      // Not `exited`, which waits for this handshake: the process's end
      // and all it wrote to standard error.
      await this.#child.status;
      await this.#stderrDrained;
      throw new SandboxError(
        `sandbox process did not start: ${this.lastError()}`,
      );
    }
    const states = first.value.header.permissions as Record<string, string>;
    const granted = FORBIDDEN_PERMISSIONS.filter((p) =>
      states[p] === "granted"
    );
    if (granted.length > 0) {
      this.kill();
      throw new SandboxError(
        `sandbox process holds forbidden permissions: ${granted.join(", ")}`,
      );
    }
  }

  async #pump(frames: AsyncGenerator<Frame>): Promise<void> {
    try {
      for await (const frame of frames) this.#listener?.(frame);
    } catch {
      // A killed process can leave a partial frame; exit handling covers it.
    }
  }

  /** Runs one job; resolves with its outcome, never with a thrown trap. */
  async run(job: SandboxJob): Promise<ExecuteOutcome> {
    const id = this.#nextId++;
    const started = performance.now();
    const done = Promise.withResolvers<ExecuteOutcome>();
    this.#listener = ({ header, blobs }) => {
      if (header.id !== id) return;
      if (header.type === "started") {
        // The guest's wall clock starts now, not while the job waited for
        // the sandbox to load the code that runs guests.
        clearTimeout(timer);
        timer = setTimeout(expire, job.timeoutMs + KILL_GRACE_MS);
      } else if (header.type === "result") {
        const outcome = header.outcome as Omit<
          ExecuteOutcome,
          "stdout" | "stderr"
        >;
        done.resolve({ ...outcome, stdout: blobs[0], stderr: blobs[1] });
      } else if (header.type === "error") {
        const message = header.message as string;
        done.reject(
          header.module_error
            ? new ModuleError(message)
            : new SandboxError(message),
        );
      }
    };
    const lost = (
      status: ExecuteOutcome["status"],
      error: string,
    ): ExecuteOutcome => ({
      status,
      exitCode: null,
      error,
      wallTimeMs: performance.now() - started,
      cpuTimeMs: 0,
      memoryPeakBytes: 0,
      fuelConsumed: null,
      stdout: new Uint8Array(),
      stderr: new Uint8Array(),
      stdoutTruncated: false,
      stderrTruncated: false,
    });
    this.#onExit = () =>
      done.resolve(
        lost("trap", `trap: sandbox process died (${this.lastError()})`),
      );
    const cancel = () => {
      this.kill();
      done.reject(new JobCancelled());
    };
    job.signal?.addEventListener("abort", cancel, { once: true });
    const expire = () => {
      this.kill();
      done.resolve(
        lost(
          "timeout",
          `timeout: the guest ran longer than ${
            job.timeoutMs / 1000
          } s (its sandbox did not answer)`,
        ),
      );
    };
    let timer = setTimeout(
      expire,
      Math.min(job.timeoutMs + KILL_GRACE_MS + GUEST_LOAD_MS, 2 ** 31 - 1),
    );
    const seed = job.scratchSeed ? packSeed(job.scratchSeed) : undefined;
    try {
      const parts = frameParts({
        type: "job",
        id,
        module_key: job.moduleKey,
        fuel: job.fuel,
        program_name: job.programName,
        args: job.args,
        env: job.env,
        memory_bytes: job.memoryBytes,
        output_limit: job.outputLimit,
        timeout_ms: job.timeoutMs,
        preopens: job.preopens ?? [],
        scratch: job.scratch,
        scratch_seed: seed?.list,
      }, [job.module, job.stdin, ...(seed ? [seed.blob] : [])]);
      for (const part of parts) await this.#writer.write(part);
      return await done.promise;
    } catch (error) {
      // Writing fails once the process is gone; its exit says why.
      if (this.dead) return await done.promise;
      throw error;
    } finally {
      clearTimeout(timer);
      job.signal?.removeEventListener("abort", cancel);
      this.#listener = null;
      this.#onExit = null;
    }
  }

  /** Ends the process at once. */
  kill(): void {
    if (this.dead) return;
    this.dead = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * A pool of warm sandbox processes with a bounded queue. Jobs with preopened
 * directories get a fresh process allowed to read only those directories.
 */
export class SandboxPool {
  readonly #size: number;
  readonly #queueLimit: number;
  readonly #command: NonNullable<SandboxOptions["command"]>;
  readonly #idle: SandboxProcess[] = [];
  readonly #all = new Set<SandboxProcess>();
  /** Waiters get an idle process, or null to try again (one died). */
  readonly #waiting: ((p: SandboxProcess | null) => void)[] = [];
  #live = 0;
  #closed = false;

  /**
   * Creates the pool; processes start on first use (one started by
   * {@link prestartSandbox} joins a pool with the default command at once).
   */
  constructor(options: SandboxOptions = {}) {
    this.#size = options.size ?? 2;
    this.#queueLimit = options.queueLimit ?? 64;
    this.#command = options.command ?? defaultSandboxCommand;
    const prestarted = !options.command && this.#size > 0
      ? takePrestartedSandbox()
      : undefined;
    if (prestarted) this.#adopt(new SandboxProcess(prestarted));
  }

  /** Takes a process that is already starting; it is released once ready. */
  #adopt(process: SandboxProcess): void {
    this.#all.add(process);
    process.exited.then(() => this.#all.delete(process));
    this.#live++;
    // One that fails its start is dead: releasing it lets a waiting job
    // start a new process, which reports why.
    const release = () => this.#release(process);
    process.ready.then(release, release);
  }

  /** Starts the warm processes now instead of on first use. */
  async warm(): Promise<void> {
    const starting: SandboxProcess[] = [];
    while (this.#live < this.#size) {
      const p = this.#spawn([]);
      this.#live++;
      starting.push(p);
    }
    for (const p of starting) {
      try {
        await p.ready;
      } catch (error) {
        this.#live--;
        throw error;
      }
      this.#release(p);
    }
  }

  /** Process ids of the live sandbox processes (for monitoring). */
  get pids(): number[] {
    return [...this.#all].filter((p) => !p.dead).map((p) => p.pid);
  }

  /** Jobs that may wait before `queue full`. */
  get queueLimit(): number {
    return this.#queueLimit;
  }

  /** Jobs waiting for a process. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Runs a job in a sandbox process. */
  async run(job: SandboxJob): Promise<ExecuteOutcome> {
    if (this.#closed) throw new SandboxError("the sandbox pool is closed");
    if (job.signal?.aborted) throw new JobCancelled();
    if (!(job.timeoutMs > 0 && job.timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new SandboxError(
        `the wall-clock limit must be above 0 and at most ${MAX_TIMEOUT_MS} ms, got ${job.timeoutMs}`,
      );
    }
    if (job.preopens && job.preopens.length > 0) {
      // The sandbox works on real paths (runner/host_fs.ts), and Deno
      // checks the path it is given: grant and send the real ones.
      const preopens = job.preopens.map((p) => ({
        ...p,
        host: realPath(p.host),
      }));
      const own = this.#spawn(
        preopens.map((p) => p.host),
        preopens.filter((p) => p.writable).map((p) => p.host),
      );
      try {
        await own.ready;
        return await own.run({ ...job, preopens });
      } finally {
        own.kill();
      }
    }
    const process = await this.#acquire(job.signal);
    try {
      return await process.run(job);
    } finally {
      this.#release(process);
    }
  }

  #spawn(readDirs: string[], writeDirs: string[] = []): SandboxProcess {
    const process = new SandboxProcess(spawnSandbox(
      writeDirs.length > 0
        ? this.#command(readDirs, writeDirs)
        : this.#command(readDirs),
    ));
    this.#all.add(process);
    process.exited.then(() => this.#all.delete(process));
    return process;
  }

  async #acquire(signal?: AbortSignal): Promise<SandboxProcess> {
    for (;;) {
      const idle = this.#idle.pop();
      if (idle && !idle.dead) return idle;
      if (idle) {
        this.#live--;
        continue;
      }
      if (this.#live < this.#size) {
        this.#live++;
        const p = this.#spawn([]);
        try {
          await p.ready;
        } catch (error) {
          this.#live--;
          throw error;
        }
        return p;
      }
      if (this.#waiting.length >= this.#queueLimit) {
        throw new QueueFullError(this.#queueLimit);
      }
      const next = await new Promise<SandboxProcess | null>(
        (resolve, reject) => {
          const waiter = (p: SandboxProcess | null) => {
            signal?.removeEventListener("abort", leave);
            resolve(p);
          };
          const leave = () => {
            const at = this.#waiting.indexOf(waiter);
            if (at >= 0) this.#waiting.splice(at, 1);
            reject(new JobCancelled());
          };
          signal?.addEventListener("abort", leave, { once: true });
          this.#waiting.push(waiter);
        },
      );
      if (next) return next;
    }
  }

  #release(process: SandboxProcess): void {
    if (this.#closed) {
      process.kill();
      return;
    }
    if (process.dead) {
      this.#live--;
      this.#waiting.shift()?.(null);
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter) waiter(process);
    else this.#idle.push(process);
  }

  /**
   * Stops every idle process (busy ones stop when their job ends). An idle
   * process holds nothing worth a graceful end: it is killed, which is
   * immediate, where closing its input lets it take a few milliseconds.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    for (const process of idle) process.kill();
    await Promise.all(idle.map((p) => p.exited));
  }
}
