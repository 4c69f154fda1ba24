/**
 * Runs one WASI guest inside the current process and thread. This is the
 * code that executes guests; it is loaded only by the sandbox process (and
 * by in-process benchmarks and tests). A metered guest gets its fuel in
 * slices: each time one is spent it calls the host back (runner/metering.ts),
 * which is where its wall clock is checked and where the caller's `watch`
 * runs, so even a guest that never calls the host is stopped in time.
 * @module
 */
import { cpuUsage } from "./cpu_usage.ts";
import { JobMemory } from "./job_memory.ts";
import { checkLink } from "./link.ts";
import {
  FUEL_EXPORT,
  GROW_FAILED_EXPORT,
  MEMORY_PAGES_EXPORT,
  REFUEL_IMPORT,
  START_EXPORT,
} from "./metering.ts";
import { initialOutputBytes } from "./output_buffer.ts";
import {
  capMemory,
  MIB,
  ModuleError,
  TABLE_ENTRY_BYTES,
  WASM_PAGE,
} from "./wasm_binary.ts";
import { createWasiEnv, type Preopen, WASIProcExit } from "./wasi_env.ts";
import type { ExecutionStatus } from "../schemas/mod.ts";
import { SeedTooLarge } from "./scratch_fs.ts";
import type { SeedEntry } from "./scratch_seed.ts";

/** One guest run. */
export interface ExecuteRequest {
  /** The module bytes: metered (runner/metering.ts) for jobs with fuel. */
  module: Uint8Array;
  /** Names the bytes of `module` in the compile cache. */
  moduleKey: string;
  /**
   * Fuel budget of a metered module (default: practically unlimited).
   * Refused for a module without metering.
   */
  fuel?: number;
  /** argv[0] shown to the guest. */
  programName: string;
  /** Arguments after argv[0]. */
  args: string[];
  /** Environment variables. */
  env: Record<string, string>;
  /** Bytes on standard input. */
  stdin: Uint8Array;
  /**
   * The job's memory budget in bytes: linear memory, tables, standard
   * input, scratch files and kept output together (runner/job_memory.ts).
   */
  memoryBytes: number;
  /** Cap on kept bytes per output stream. */
  outputLimit: number;
  /** Host directories (read-only unless marked writable). */
  preopens: Preopen[];
  /** Guest path of a writable in-memory scratch directory, if any. */
  scratch?: string;
  /** What the scratch directory starts with (charged to the budget). */
  scratchSeed?: SeedEntry[];
  /**
   * Wall-clock limit in milliseconds, counted from the call (compiling
   * included); needs a metered module. Default: none.
   */
  timeoutMs?: number;
  /**
   * When the wall clock started (a `performance.now()` time), if before the
   * call: a sandbox starts it when the job arrives, before compiling.
   */
  clockStartedAt?: number;
  /**
   * Called while the guest runs, at most every {@link WATCH_INTERVAL_MS}
   * (only for a metered module, from its fuel checks and its sleeps); a
   * throw stops the guest as a trap.
   */
  watch?: () => void;
}

/** The least time between two calls of a request's `watch`. */
export const WATCH_INTERVAL_MS = 100;

/** What happened in one guest run. */
export interface ExecuteOutcome {
  /** How the run ended. */
  status: ExecutionStatus;
  /** Exit code, or null when the guest did not exit by itself. */
  exitCode: number | null;
  /** One-line reason when status is not `exited`. */
  error: string | null;
  /** Wall time of instantiation plus run. */
  wallTimeMs: number;
  /** CPU time of this process during the run. */
  cpuTimeMs: number;
  /**
   * The most of the job's memory budget in use at once: linear memory,
   * tables, standard input, scratch files and kept output.
   */
  memoryPeakBytes: number;
  /** Fuel the guest used, or null for a module without metering. */
  fuelConsumed: number | null;
  /** Kept standard output. */
  stdout: Uint8Array;
  /** Kept standard error. */
  stderr: Uint8Array;
  /** Output past the cap was dropped. */
  stdoutTruncated: boolean;
  /** Output past the cap was dropped. */
  stderrTruncated: boolean;
}

/**
 * Compiled modules a process keeps for the jobs after theirs: at most 32,
 * of at most 8 MiB of module bytes together besides the newest, whose code
 * (about ten times its bytes) the sandbox holds outside any job's budget.
 */
const COMPILE_CACHE_SIZE = 32;
const COMPILE_CACHE_BYTES = 8 * 1024 * 1024;

/** A compiled module and what its budget is charged at the start. */
interface Compiled {
  module: WebAssembly.Module;
  /** Bytes of the module compiled. */
  bytes: number;
  /** The module carries runner/metering.ts's instrumentation. */
  metered: boolean;
  initialBytes: number;
  tableBytes: number;
}

const compiled = new Map<string, Compiled>();

/** The compile cache's entry for a request, freshened, if there is one. */
function cached(request: ExecuteRequest): Compiled | undefined {
  const key = `${request.moduleKey}/${request.memoryBytes}`;
  const hit = compiled.get(key);
  if (hit) {
    compiled.delete(key);
    compiled.set(key, hit);
  }
  return hit;
}

/** The request's module checked and its memory capped, ready to compile. */
function capped(request: ExecuteRequest) {
  checkLink(request.module, { metered: true });
  return capMemory(request.module, request.memoryBytes);
}

function invalidModule(error: unknown): ModuleError {
  return new ModuleError(
    `not a valid WebAssembly module: ${(error as Error).message}`,
  );
}

/** Checks a compiled module's exports and keeps it in the compile cache. */
function keep(
  request: ExecuteRequest,
  { initialPages, tableEntries }: ReturnType<typeof capped>,
  module: WebAssembly.Module,
): Compiled {
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === "_start" && e.kind === "function")) {
    throw new ModuleError(
      "the module exports no _start function (not a WASI command)",
    );
  }
  if (!exports.some((e) => e.name === "memory" && e.kind === "memory")) {
    throw new ModuleError("the module exports no memory");
  }
  const metered = exports.some((e) =>
    e.name === FUEL_EXPORT && e.kind === "global"
  );
  const entry = {
    module,
    bytes: request.module.length,
    metered,
    initialBytes: initialPages * WASM_PAGE,
    tableBytes: tableEntries * TABLE_ENTRY_BYTES,
  };
  compiled.set(`${request.moduleKey}/${request.memoryBytes}`, entry);
  let kept = 0;
  for (const other of compiled.values()) kept += other.bytes;
  // Oldest first, never the newest (the job about to run).
  for (const [key, other] of compiled) {
    if (
      other === entry ||
      (compiled.size <= COMPILE_CACHE_SIZE &&
        kept - entry.bytes <= COMPILE_CACHE_BYTES)
    ) break;
    compiled.delete(key);
    kept -= other.bytes;
  }
  return entry;
}

/** Compiles (or reuses) a request's module, with its memory capped. */
function compile(request: ExecuteRequest): Compiled {
  const hit = cached(request);
  if (hit) return hit;
  const ready = capped(request);
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(ready.bytes as Uint8Array<ArrayBuffer>);
  } catch (error) {
    throw invalidModule(error);
  }
  return keep(request, ready, module);
}

/**
 * Compiles a request's module ahead of {@link execute}, asynchronously: V8
 * compiles on its own threads while this one stays free (a sandbox watches
 * its parent and the job's wall clock meanwhile). With lazy compilation
 * off (the sandbox's V8 flags), no function is left to compile when the
 * guest first calls it.
 */
export async function compileAhead(request: ExecuteRequest): Promise<void> {
  if (cached(request)) return;
  const ready = capped(request);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(
      ready.bytes as Uint8Array<ArrayBuffer>,
    );
  } catch (error) {
    throw invalidModule(error);
  }
  keep(request, ready, module);
}

/** Thrown out of a host call whose fuel charge overdraws the budget. */
class FuelExhausted extends Error {}

/** Thrown into the guest once its wall clock has passed. */
class WallClockPassed extends Error {}

/**
 * Fuel a guest is first given at a time. Each slice grows (up to
 * {@link MAX_FUEL_SLICE}) while the guest spends one in under
 * {@link SLICE_FLOOR_MS} and shrinks when one lasts over
 * {@link SLICE_CEILING_MS}, so the host looks at the clock every few
 * milliseconds whatever the guest's instruction mix. The ceiling bounds
 * how long a guest built to be slow per fuel (a cache miss on every
 * access, say, at ~100 ns each) can go between two looks: about a second.
 * At the densest burn measured it costs about 2% (`deno task bench`).
 */
const FIRST_FUEL_SLICE = 100_000n;
const MIN_FUEL_SLICE = 1_000n;
const MAX_FUEL_SLICE = 10_000_000n;
const SLICE_FLOOR_MS = 1;
const SLICE_CEILING_MS = 10;

/**
 * The job's fuel, handed to the guest's fuel global a slice at a time.
 * What the guest has left is always `global + reserve`, and it stops at
 * the same instruction as if it had been given everything at once: a check
 * finds the global below zero, and the reserve cannot cover it.
 */
class FuelTank {
  #reserve: bigint;
  #slice = FIRST_FUEL_SLICE;
  #lastRefuel = performance.now();

  constructor(
    readonly global: WebAssembly.Global,
    readonly budget: bigint,
  ) {
    const first = budget < this.#slice ? budget : this.#slice;
    this.#reserve = budget - first;
    global.value = first;
  }

  /** Fuel left in total (below zero once overdrawn). */
  get left(): bigint {
    return (this.global.value as bigint) + this.#reserve;
  }

  /** Covers an overdrawn global from the reserve, or throws once spent. */
  refuel(now: number): void {
    const spentIn = now - this.#lastRefuel;
    this.#lastRefuel = now;
    if (spentIn < SLICE_FLOOR_MS && this.#slice < MAX_FUEL_SLICE) {
      this.#slice *= 2n;
    } else if (spentIn > SLICE_CEILING_MS && this.#slice > MIN_FUEL_SLICE) {
      this.#slice /= 2n;
    }
    const value = this.global.value as bigint;
    if (value >= 0n) return;
    const wanted = -value + this.#slice;
    const given = wanted < this.#reserve ? wanted : this.#reserve;
    this.#reserve -= given;
    this.global.value = value + given;
    if (value + given < 0n) throw new FuelExhausted();
  }
}
/** The error of a run that ended because the stack ran out. */
const STACK_OVERFLOW = "trap: stack overflow";

function trapMessage(error: unknown): string {
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return "stack overflow";
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

const mib = (bytes: number) => `${Math.ceil(bytes / MIB * 10) / 10} MiB`;

/**
 * Compiles (or reuses) and runs the guest to its end. Throws
 * {@link ModuleError} when the module cannot run at all (including when
 * its tables, memory at start and standard input alone exceed the budget);
 * every way a started guest can end is reported in the outcome, never
 * thrown.
 */
export function execute(request: ExecuteRequest): ExecuteOutcome {
  const callStarted = performance.now();
  const { module, metered, initialBytes, tableBytes } = compile(request);
  if (request.fuel !== undefined && !metered) {
    throw new ModuleError("a fuel budget needs a metered module");
  }
  if (request.timeoutMs !== undefined && !metered) {
    throw new ModuleError("a wall-clock limit needs a metered module");
  }
  // Each output stream holds its first step from the start (so a guest
  // that spent its budget elsewhere can still say so): charged up front.
  const outputBytes = 2 * initialOutputBytes(request.outputLimit);
  const fixed = request.stdin.length + tableBytes + outputBytes;
  if (fixed + initialBytes > request.memoryBytes) {
    throw new ModuleError(
      `memory limit: the module's tables (${
        mib(tableBytes)
      }), memory at start (${mib(initialBytes)}), standard input (${
        mib(request.stdin.length)
      }) and output buffers (${mib(outputBytes)}) need more than the job's ${
        mib(request.memoryBytes)
      } budget`,
    );
  }
  const memory = new JobMemory(request.memoryBytes, fixed);
  let tank: FuelTank | undefined;
  const deadline = request.timeoutMs === undefined
    ? Infinity
    : (request.clockStartedAt ?? callStarted) + request.timeoutMs;
  let lastWatch = callStarted;
  // The guest's clock and its caller's watch, looked at from fuel checks
  // and between the pieces of a sleep.
  const lookAtClock = () => {
    const now = performance.now();
    if (now >= deadline) throw new WallClockPassed();
    if (request.watch && now - lastWatch >= WATCH_INTERVAL_MS) {
      lastWatch = now;
      request.watch();
    }
    return now;
  };
  let env: ReturnType<typeof createWasiEnv>;
  try {
    env = createEnv();
  } catch (error) {
    if (error instanceof SeedTooLarge) throw new ModuleError(error.message);
    throw error;
  }
  function createEnv() {
    return createWasiEnv({
      argv: [request.programName, ...request.args],
      env: request.env,
      stdin: request.stdin,
      outputLimit: request.outputLimit,
      preopens: request.preopens,
      scratch: request.scratch,
      scratchSeed: request.scratchSeed,
      scratchBytes: request.memoryBytes,
      budget: memory,
      whileSleeping: () => {
        if (tank) lookAtClock();
      },
      charge: (units) => {
        if (!tank || units <= 0) return;
        tank.global.value = (tank.global.value as bigint) - BigInt(units);
        if (tank.global.value < 0n) tank.refuel(performance.now());
      },
    });
  }
  const cpuBefore = cpuUsage();
  const started = performance.now();
  let status: ExecutionStatus = "exited";
  let exitCode: number | null = null;
  let error: string | null = null;
  let instance: WebAssembly.Instance | undefined;
  try {
    // Every host call looks at the clock first, so a guest that spends its
    // time in host calls (cheap in fuel, not in time) is stopped too.
    const hostCalls = Object.fromEntries(
      Object.entries(env.imports).map(([name, call]) => [
        name,
        (...args: never[]) => {
          if (tank) lookAtClock();
          return call(...args);
        },
      ]),
    );
    instance = new WebAssembly.Instance(module, {
      wasi_snapshot_preview1: hostCalls,
      [REFUEL_IMPORT.module]: {
        [REFUEL_IMPORT.name]: () => tank?.refuel(lookAtClock()),
      },
    });
    const exports = instance.exports;
    const linear = exports.memory as WebAssembly.Memory;
    const pages = exports[MEMORY_PAGES_EXPORT] as
      | WebAssembly.Global
      | undefined;
    memory.attach(
      () => linear.buffer.byteLength,
      (limit) => {
        if (pages) pages.value = BigInt(limit);
      },
    );
    const fuel = exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
    if (fuel) {
      tank = new FuelTank(
        fuel,
        BigInt(request.fuel ?? Number.MAX_SAFE_INTEGER),
      );
    }
    env.wasi.inst = instance as unknown as typeof env.wasi.inst;
    // The start function runs here, not at instantiation, so it pays from
    // the job's budget like the rest of the guest.
    (exports[START_EXPORT] as (() => void) | undefined)?.();
    (exports._start as () => void)();
    exitCode = 0;
  } catch (thrown) {
    if (thrown instanceof WASIProcExit) {
      // preview1 exit codes are u32; the shim hands over an i32.
      exitCode = thrown.code >>> 0;
    } else if (thrown instanceof WallClockPassed) {
      status = "timeout";
      error = `timeout: the guest ran longer than ${
        request.timeoutMs! / 1000
      } s`;
    } else {
      status = "trap";
      error = `trap: ${trapMessage(thrown)}`;
    }
  }
  const wallTimeMs = performance.now() - started;
  const cpuAfter = cpuUsage();
  const exports = instance?.exports ?? {};
  const fuelLeft = tank?.left;
  const growRefused =
    (exports[GROW_FAILED_EXPORT] as WebAssembly.Global | undefined)?.value ===
      1;
  const failed = status === "trap" || exitCode !== 0;
  if (status === "timeout") {
    // Stopped from outside its own accounting: neither fuel nor memory.
  } else if (fuelLeft !== undefined && fuelLeft < 0n) {
    // Checks sit at entries and loop headers, so a guest can end between
    // two of them over its budget: that is a fuel stop too, never `exited`.
    status = "fuel_exhausted";
    error = `fuel exhausted: the guest used its budget of ${tank!.budget} fuel`;
  } else if (growRefused && failed) {
    status = "memory_limit";
    error = `memory limit: the guest reached the job's ${
      mib(request.memoryBytes)
    } memory budget`;
  }
  return {
    status,
    exitCode,
    error,
    wallTimeMs,
    cpuTimeMs: (cpuAfter.user + cpuAfter.system - cpuBefore.user -
      cpuBefore.system) / 1000,
    memoryPeakBytes: memory.peak,
    // Where the stack runs out depends on how V8 compiled the code (its
    // frames shrink when a function is optimised), not on the guest alone:
    // the fuel spent by then is no fact about the guest, so none is given.
    fuelConsumed: fuelLeft === undefined ||
        (status === "trap" && error === STACK_OVERFLOW)
      ? null
      : Number(tank!.budget - fuelLeft),
    stdout: env.stdout.bytes(),
    stderr: env.stderr.bytes(),
    stdoutTruncated: env.stdout.truncated,
    stderrTruncated: env.stderr.truncated,
  };
}
