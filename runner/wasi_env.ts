/**
 * The WASI preview1 environment a guest sees: @bjorn3/browser_wasi_shim's
 * dispatch with the shim's gaps closed (UTF-8 args,
 * errno for sockets, CSPRNG randomness, real CPU clocks, poll_oneoff without
 * busy waiting, lowest-free fd numbers, renumber onto itself, links and
 * renames, capped output capture) and Phase's own host directories
 * (host_fs.ts: read-only, or writable when opted in) and writable scratch
 * tree with symbolic links (scratch_fs.ts). Rights are checked in one place
 * (wasi_rights.ts) before any directory sees a path call.
 * Every function is covered by tests/wasi_test.ts.
 * @module
 */
import { cpuUsage } from "./cpu_usage.ts";
import { Fd, WASI, wasi, WASIProcExit } from "@bjorn3/browser_wasi_shim";
import { DirFd } from "./dir_fd.ts";
import { HostDirFd } from "./host_fs.ts";
import { type HostBudget, UNLIMITED_BUDGET } from "./job_memory.ts";
import { ScratchDirFd } from "./scratch_fs.ts";
import type { SeedEntry } from "./scratch_seed.ts";
import { FD_CALL_RIGHTS, PATH_CALL_RIGHTS } from "./wasi_rights.ts";
import {
  appendOutput,
  createOutputBuffer,
  type OutputBuffer,
  readOutput,
} from "./output_buffer.ts";
import { MIB } from "./wasm_binary.ts";

export { WASIProcExit };

/** Which captured stream a chunk belongs to. */
export type StreamName = "stdout" | "stderr";

/**
 * A standard stream: a character device that cannot seek, with the rights
 * of its direction.
 */
abstract class StreamFd extends Fd {
  readonly #rights: number;

  constructor(rights: number) {
    super();
    this.#rights = rights;
  }

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_CHARACTER_DEVICE, 0);
    fdstat.fs_rights_base = BigInt(
      this.#rights | wasi.RIGHTS_POLL_FD_READWRITE,
    );
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_filestat_get() {
    return {
      ret: wasi.ERRNO_SUCCESS,
      filestat: new wasi.Filestat(0n, wasi.FILETYPE_CHARACTER_DEVICE, 0n),
    };
  }

  override fd_seek() {
    return { ret: wasi.ERRNO_SPIPE, offset: 0n };
  }

  override fd_tell() {
    return { ret: wasi.ERRNO_SPIPE, offset: 0n };
  }
}

/** Standard input served from bytes held in memory. */
class StdinFd extends StreamFd {
  #data: Uint8Array;
  #position = 0;

  constructor(data: Uint8Array) {
    super(wasi.RIGHTS_FD_READ);
    this.#data = data;
  }

  override fd_read(size: number) {
    const data = this.#data.subarray(this.#position, this.#position + size);
    this.#position += data.length;
    return { ret: wasi.ERRNO_SUCCESS, data };
  }

  override fd_pread() {
    return { ret: wasi.ERRNO_SPIPE, data: new Uint8Array() };
  }

  override fd_write() {
    return { ret: wasi.ERRNO_BADF, nwritten: 0 };
  }

  override fd_pwrite() {
    return { ret: wasi.ERRNO_BADF, nwritten: 0 };
  }
}

/**
 * A captured output stream. Bytes past the cap (or the job's memory budget)
 * are dropped and the stream is marked truncated; the guest still sees its
 * writes succeed so it runs on.
 */
export class OutputCapture extends StreamFd {
  /** Where kept bytes go. */
  readonly kept: OutputBuffer;

  constructor(
    limit: number,
    readonly budget: HostBudget = UNLIMITED_BUDGET,
  ) {
    super(wasi.RIGHTS_FD_WRITE);
    this.kept = createOutputBuffer(limit);
  }

  override fd_write(data: Uint8Array) {
    appendOutput(this.kept, data, this.budget);
    return { ret: wasi.ERRNO_SUCCESS, nwritten: data.length };
  }

  override fd_pwrite() {
    return { ret: wasi.ERRNO_SPIPE, nwritten: 0 };
  }

  override fd_read() {
    return { ret: wasi.ERRNO_BADF, data: new Uint8Array() };
  }

  override fd_pread() {
    return { ret: wasi.ERRNO_BADF, data: new Uint8Array() };
  }

  /** True once a write went past the cap or the budget. */
  get truncated(): boolean {
    return readOutput(this.kept).truncated;
  }

  /** All kept bytes. */
  bytes(): Uint8Array {
    return readOutput(this.kept).bytes;
  }
}

/** A host directory shown to the guest: read-only unless `writable`. */
export interface Preopen {
  /** Directory on the host. */
  host: string;
  /** Path the guest sees, e.g. `/data`. */
  guest: string;
  /** The guest may change the directory (local runs only; opt-in). */
  writable?: boolean;
}

/** How to build a guest's WASI environment. */
export interface WasiEnvOptions {
  /** argv, including argv[0]. */
  argv: string[];
  /** Environment variables. */
  env: Record<string, string>;
  /** Bytes on standard input. */
  stdin: Uint8Array;
  /** Cap on kept bytes per output stream. */
  outputLimit: number;
  /** Host directories. */
  preopens?: Preopen[];
  /** Guest path of a writable in-memory directory discarded after the run. */
  scratch?: string;
  /** What the scratch directory starts with (copied on write). */
  scratchSeed?: SeedEntry[];
  /** Cap on the file bytes held in the scratch directory (default 64 MiB). */
  scratchBytes?: number;
  /** The job's memory budget, which scratch files and kept output take from. */
  budget?: HostBudget;
  /**
   * Called between the pieces (at most {@link SLEEP_SLICE_MS} each) of a
   * guest's sleep in `poll_oneoff`; a throw stops the guest there.
   */
  whileSleeping?: () => void;
  /**
   * Takes fuel for host work: calls that move bytes pay one fuel per
   * {@link HOST_BYTES_PER_FUEL} bytes of the buffers they are given (sizes
   * chosen by the guest, so the charge is deterministic).
   */
  charge?: (fuel: number) => void;
}

/** The longest a guest's sleep runs before the host looks at its clock. */
export const SLEEP_SLICE_MS = 50;

/**
 * Most buffers one read or write call takes (Linux's IOV_MAX); more is
 * EINVAL, so a list of empty buffers cannot make the host build millions of
 * objects for one call.
 */
export const MAX_IOVECS = 1024;

/**
 * Most subscriptions one poll_oneoff takes (every descriptor a guest may
 * hold, and as many clocks); more is EINVAL.
 */
export const MAX_SUBSCRIPTIONS = 2048;

/**
 * Longest path, in bytes, a path call takes (Linux's PATH_MAX); longer is
 * ENAMETOOLONG, so one call's walk stays short.
 */
export const MAX_PATH_BYTES = 4096;

/** Which arguments of each path call are path lengths. */
const PATH_LENGTH_ARGS: Record<string, number[]> = {
  path_create_directory: [2],
  path_filestat_get: [3],
  path_filestat_set_times: [3],
  path_link: [3, 6],
  path_open: [3],
  path_readlink: [2],
  path_remove_directory: [2],
  path_rename: [2, 5],
  path_symlink: [1, 4],
  path_unlink_file: [2],
};

/** Bytes of a host call's buffers that cost one fuel. */
export const HOST_BYTES_PER_FUEL = 64;

/** Descriptors a guest may hold open at once (then ENFILE). */
export const MAX_OPEN_FILES = 1024;

/** A guest's WASI environment, ready for instantiation. */
export interface WasiEnv {
  /** The shim instance (call `start` with the instance). */
  wasi: WASI;
  /** Import object for `wasi_snapshot_preview1`. */
  imports: Record<string, (...args: never[]) => unknown>;
  /** Captured standard output. */
  stdout: OutputCapture;
  /** Captured standard error. */
  stderr: OutputCapture;
}

const encoder = new TextEncoder();
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function cpuTimeNs(): bigint {
  const { user, system } = cpuUsage();
  return BigInt(user + system) * 1000n;
}

function nowNs(clock: number): bigint | null {
  switch (clock) {
    case wasi.CLOCKID_REALTIME:
      return BigInt(Date.now()) * 1_000_000n;
    case wasi.CLOCKID_MONOTONIC:
      return BigInt(Math.round(performance.now() * 1e6));
    case wasi.CLOCKID_PROCESS_CPUTIME_ID:
    case wasi.CLOCKID_THREAD_CPUTIME_ID:
      return cpuTimeNs();
    default:
      return null;
  }
}

/** Writes a string list the way args_get/environ_get expect (UTF-8, NUL). */
function writeStrings(
  memory: WebAssembly.Memory,
  items: Uint8Array[],
  pointers: number,
  buffer: number,
): number {
  const view = new DataView(memory.buffer);
  const bytes = new Uint8Array(memory.buffer);
  for (const item of items) {
    view.setUint32(pointers, buffer, true);
    pointers += 4;
    bytes.set(item, buffer);
    bytes[buffer + item.length] = 0;
    buffer += item.length + 1;
  }
  return wasi.ERRNO_SUCCESS;
}

function writeSizes(
  memory: WebAssembly.Memory,
  items: Uint8Array[],
  countPtr: number,
  sizePtr: number,
): number {
  const view = new DataView(memory.buffer);
  view.setUint32(countPtr, items.length, true);
  view.setUint32(sizePtr, items.reduce((n, i) => n + i.length + 1, 0), true);
  return wasi.ERRNO_SUCCESS;
}

/** Builds the WASI environment for one guest run. */
export function createWasiEnv(options: WasiEnvOptions): WasiEnv {
  const budget = options.budget ?? UNLIMITED_BUDGET;
  const stdout = new OutputCapture(options.outputLimit, budget);
  const stderr = new OutputCapture(options.outputLimit, budget);
  const fds: Fd[] = [new StdinFd(options.stdin), stdout, stderr];
  for (const preopen of options.preopens ?? []) {
    fds.push(
      HostDirFd.preopen(preopen.host, preopen.guest, preopen.writable),
    );
  }
  if (options.scratch) {
    fds.push(
      ScratchDirFd.preopen(options.scratch, {
        capBytes: options.scratchBytes ?? 64 * MIB,
        budget,
        seed: options.scratchSeed,
      }),
    );
  }
  const envList = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
  const shim = new WASI(options.argv, envList, fds, { debug: false });
  const argvBytes = options.argv.map((a) => encoder.encode(a));
  const envBytes = envList.map((e) => encoder.encode(e));
  const memory = () => shim.inst.exports.memory;
  const table = shim.fds as (Fd | undefined)[];
  const notSocket = (fd: number) =>
    table[fd] === undefined ? wasi.ERRNO_BADF : wasi.ERRNO_NOTSOCK;
  const text = (pointer: number, length: number) =>
    new TextDecoder().decode(
      new Uint8Array(memory().buffer, pointer, length),
    );
  /**
   * Links and renames: within one scratch tree or one writable host
   * directory they happen; a read-only host directory answers EROFS;
   * between trees EXDEV.
   */
  const betweenDirs = (
    fromFd: number,
    toFd: number,
    inScratch: (from: ScratchDirFd, to: ScratchDirFd) => number,
    onHost: (from: HostDirFd, to: HostDirFd) => number,
  ) => {
    const from = table[fromFd];
    const to = table[toFd];
    if (from === undefined || to === undefined) return wasi.ERRNO_BADF;
    if (!(from instanceof DirFd) || !(to instanceof DirFd)) {
      return wasi.ERRNO_NOTDIR;
    }
    for (const dir of [from, to]) {
      if (dir instanceof HostDirFd && !dir.writable) return wasi.ERRNO_ROFS;
    }
    if (from instanceof HostDirFd) {
      return from.sameRoot(to) ? onHost(from, to) : wasi.ERRNO_XDEV;
    }
    const scratch = from as ScratchDirFd;
    return scratch.sameTree(to) ? inScratch(scratch, to) : wasi.ERRNO_XDEV;
  };

  const overrides = {
    args_sizes_get: (countPtr: number, sizePtr: number) =>
      writeSizes(memory(), argvBytes, countPtr, sizePtr),
    args_get: (pointers: number, buffer: number) =>
      writeStrings(memory(), argvBytes, pointers, buffer),
    environ_sizes_get: (countPtr: number, sizePtr: number) =>
      writeSizes(memory(), envBytes, countPtr, sizePtr),
    environ_get: (pointers: number, buffer: number) =>
      writeStrings(memory(), envBytes, pointers, buffer),
    clock_res_get(clock: number, resultPtr: number) {
      if (nowNs(clock) === null) return wasi.ERRNO_INVAL;
      const resolution = clock === wasi.CLOCKID_REALTIME ? 1_000_000n : 1000n;
      new DataView(memory().buffer).setBigUint64(resultPtr, resolution, true);
      return wasi.ERRNO_SUCCESS;
    },
    clock_time_get(clock: number, _precision: bigint, resultPtr: number) {
      const now = nowNs(clock);
      if (now === null) return wasi.ERRNO_INVAL;
      new DataView(memory().buffer).setBigUint64(resultPtr, now, true);
      return wasi.ERRNO_SUCCESS;
    },
    random_get(pointer: number, length: number) {
      const target = new Uint8Array(memory().buffer, pointer, length);
      for (let i = 0; i < length; i += 65536) {
        crypto.getRandomValues(target.subarray(i, i + 65536));
      }
      return wasi.ERRNO_SUCCESS;
    },
    path_open(
      dirFd: number,
      dirflags: number,
      pathPtr: number,
      pathLen: number,
      oflags: number,
      rightsBase: bigint,
      rightsInheriting: bigint,
      fdFlags: number,
      openedPtr: number,
    ) {
      const dir = table[dirFd];
      if (dir === undefined) return wasi.ERRNO_BADF;
      if (!table.includes(undefined) && table.length >= MAX_OPEN_FILES) {
        return wasi.ERRNO_NFILE;
      }
      const path = text(pathPtr, pathLen);
      const { ret, fd_obj } = dir.path_open(
        dirflags,
        path,
        oflags,
        rightsBase,
        rightsInheriting,
        fdFlags,
      );
      if (ret !== wasi.ERRNO_SUCCESS || fd_obj === null) return ret;
      let slot = table.indexOf(undefined);
      if (slot === -1) slot = table.length;
      table[slot] = fd_obj;
      new DataView(memory().buffer).setUint32(openedPtr, slot, true);
      return wasi.ERRNO_SUCCESS;
    },
    fd_filestat_get(fd: number, statPtr: number) {
      const file = table[fd];
      if (file === undefined) return wasi.ERRNO_BADF;
      const { ret, filestat } = file.fd_filestat_get();
      if (filestat) writeFilestat(memory(), statPtr, filestat);
      return ret;
    },
    path_filestat_get(
      fd: number,
      flags: number,
      pathPtr: number,
      pathLen: number,
      statPtr: number,
    ) {
      const dir = table[fd];
      if (dir === undefined) return wasi.ERRNO_BADF;
      const { ret, filestat } = dir.path_filestat_get(
        flags,
        text(pathPtr, pathLen),
      );
      if (filestat) writeFilestat(memory(), statPtr, filestat);
      return ret;
    },
    fd_prestat_get(fd: number, pointer: number) {
      const file = table[fd];
      if (file === undefined) return wasi.ERRNO_BADF;
      const { prestat } = file.fd_prestat_get();
      // Only preopened directories have a prestat (wasmtime: EBADF).
      if (prestat === null) return wasi.ERRNO_BADF;
      prestat.write_bytes(new DataView(memory().buffer), pointer);
      return wasi.ERRNO_SUCCESS;
    },
    fd_renumber(fd: number, to: number) {
      if (table[fd] === undefined || table[to] === undefined) {
        return wasi.ERRNO_BADF;
      }
      if (fd === to) return wasi.ERRNO_SUCCESS;
      table[to]!.fd_close();
      table[to] = table[fd];
      table[fd] = undefined;
      return wasi.ERRNO_SUCCESS;
    },
    fd_advise(fd: number, _offset: bigint, _length: bigint, advice: number) {
      if (table[fd] === undefined) return wasi.ERRNO_BADF;
      return advice > wasi.ADVICE_NOREUSE
        ? wasi.ERRNO_INVAL
        : wasi.ERRNO_SUCCESS;
    },
    path_link(
      oldFd: number,
      oldFlags: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ) {
      const follow = (oldFlags & 1) !== 0;
      const oldPath = text(oldPtr, oldLen);
      const newPath = text(newPtr, newLen);
      return betweenDirs(
        oldFd,
        newFd,
        (from, to) => from.link(oldPath, follow, to, newPath),
        (from, to) => from.move("link", oldPath, follow, to, newPath),
      );
    },
    path_rename(
      oldFd: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ) {
      const oldPath = text(oldPtr, oldLen);
      const newPath = text(newPtr, newLen);
      return betweenDirs(
        oldFd,
        newFd,
        (from, to) => from.rename(oldPath, to, newPath),
        (from, to) => from.move("rename", oldPath, false, to, newPath),
      );
    },
    path_symlink(
      oldPtr: number,
      oldLen: number,
      fd: number,
      newPtr: number,
      newLen: number,
    ) {
      const dir = table[fd];
      if (dir === undefined) return wasi.ERRNO_BADF;
      if (dir instanceof HostDirFd || dir instanceof ScratchDirFd) {
        return dir.symlink(text(oldPtr, oldLen), text(newPtr, newLen));
      }
      return wasi.ERRNO_NOTDIR;
    },
    path_readlink(
      fd: number,
      pathPtr: number,
      pathLen: number,
      bufPtr: number,
      bufLen: number,
      usedPtr: number,
    ) {
      const dir = table[fd];
      if (dir === undefined) return wasi.ERRNO_BADF;
      const { ret, data } = dir.path_readlink(text(pathPtr, pathLen));
      if (ret !== wasi.ERRNO_SUCCESS || data === null) return ret;
      // A buffer too small gets the start of the target (as wasmtime).
      const bytes = encoder.encode(data).subarray(0, bufLen);
      new Uint8Array(memory().buffer).set(bytes, bufPtr);
      new DataView(memory().buffer).setUint32(usedPtr, bytes.length, true);
      return wasi.ERRNO_SUCCESS;
    },
    poll_oneoff(inPtr: number, outPtr: number, count: number, nPtr: number) {
      return pollOneoff(
        memory(),
        table,
        { inPtr, outPtr, count, nPtr },
        options.whileSleeping,
      );
    },
    proc_raise: () => wasi.ERRNO_NOSYS,
    sched_yield: () => wasi.ERRNO_SUCCESS,
    sock_accept: (fd: number) => notSocket(fd),
    sock_recv: (fd: number) => notSocket(fd),
    sock_send: (fd: number) => notSocket(fd),
    sock_shutdown: (fd: number) => notSocket(fd),
  };
  const merged = { ...shim.wasiImport, ...overrides } as WasiEnv["imports"];
  const masked = withRightsMasks(merged, table, memory);
  // Sizes first: a refused call costs neither fuel nor a walk of its list.
  const imports = withSizeLimits(
    options.charge ? withHostCharges(masked, memory, options.charge) : masked,
  );
  return { wasi: shim, imports, stdout, stderr };
}

/**
 * Refuses, before any work, iovec lists longer than {@link MAX_IOVECS},
 * more than {@link MAX_SUBSCRIPTIONS} poll subscriptions and paths longer
 * than {@link MAX_PATH_BYTES}.
 */
function withSizeLimits(imports: WasiEnv["imports"]): WasiEnv["imports"] {
  const out: WasiEnv["imports"] = { ...imports };
  const limit = (name: string, refusal: (args: number[]) => number | null) => {
    const call = imports[name] as (...args: number[]) => number;
    out[name] =
      ((...args: number[]) => refusal(args) ?? call(...args)) as WasiEnv[
        "imports"
      ][string];
  };
  for (const name of ["fd_read", "fd_write", "fd_pread", "fd_pwrite"]) {
    limit(name, ([, , count]) => count > MAX_IOVECS ? wasi.ERRNO_INVAL : null);
  }
  limit(
    "poll_oneoff",
    ([, , count]) => count > MAX_SUBSCRIPTIONS ? wasi.ERRNO_INVAL : null,
  );
  for (const [name, lengths] of Object.entries(PATH_LENGTH_ARGS)) {
    limit(
      name,
      (args) =>
        lengths.some((at) => args[at] > MAX_PATH_BYTES)
          ? wasi.ERRNO_NAMETOOLONG
          : null,
    );
  }
  return out;
}

/**
 * Wraps the calls that move bytes so they take fuel for the buffers they are
 * given: iovec lists (reads and writes), random_get and fd_readdir buffers.
 */
function withHostCharges(
  imports: WasiEnv["imports"],
  memory: () => WebAssembly.Memory,
  charge: (fuel: number) => void,
): WasiEnv["imports"] {
  const iovecBytes = (pointer: number, count: number) => {
    const view = new DataView(memory().buffer);
    let total = 0;
    for (let i = 0; i < count; i++) {
      total += view.getUint32(pointer + i * 8 + 4, true);
    }
    return total;
  };
  const out: WasiEnv["imports"] = { ...imports };
  const wrap = (name: string, bytes: (args: number[]) => number) => {
    const call = imports[name] as (...args: unknown[]) => number;
    out[name] = ((...args: number[]) => {
      charge(Math.floor(bytes(args) / HOST_BYTES_PER_FUEL));
      return call(...args);
    }) as WasiEnv["imports"][string];
  };
  for (const name of ["fd_read", "fd_write", "fd_pread", "fd_pwrite"]) {
    wrap(name, ([, iovs, count]) => iovecBytes(iovs, count));
  }
  wrap("random_get", ([, length]) => length);
  wrap("fd_readdir", ([, , length]) => length);
  return out;
}

/**
 * Rights, checked here for every call (wasi_rights.ts says which): a path
 * call on a descriptor that is not a directory is ENOTDIR, one whose
 * directory lacks a needed right ENOTCAPABLE. fd_fdstat_set_rights works
 * for every descriptor: rights may only be dropped; fd_fdstat_get reports
 * what is left and descriptor calls needing a dropped right answer
 * ENOTCAPABLE.
 */
function withRightsMasks(
  imports: WasiEnv["imports"],
  table: (Fd | undefined)[],
  memory: () => WebAssembly.Memory,
): WasiEnv["imports"] {
  const masks = new WeakMap<Fd, { base: bigint; inheriting: bigint }>();
  const rightsOf = (file: Fd) => {
    const { fdstat } = file.fd_fdstat_get();
    const mask = masks.get(file);
    const base = fdstat?.fs_rights_base ?? 0n;
    const inheriting = fdstat?.fs_rights_inherited ?? 0n;
    return mask
      ? {
        fdstat,
        base: base & mask.base,
        inheriting: inheriting & mask.inheriting,
      }
      : { fdstat, base, inheriting };
  };
  const out: WasiEnv["imports"] = { ...imports };
  for (const [name, needs] of Object.entries(PATH_CALL_RIGHTS)) {
    const call = imports[name] as (...args: number[]) => number;
    out[name] = ((...args: number[]) => {
      for (const need of needs) {
        const file = table[args[need.fdArg]];
        if (file === undefined) return wasi.ERRNO_BADF;
        if (!(file instanceof DirFd)) return wasi.ERRNO_NOTDIR;
        const wanted = need.rights(args);
        if ((rightsOf(file).base & wanted) !== wanted) {
          return wasi.ERRNO_NOTCAPABLE;
        }
      }
      return call(...args);
    }) as WasiEnv["imports"][string];
  }
  for (const [name, right] of Object.entries(FD_CALL_RIGHTS)) {
    const call = imports[name] as (fd: number, ...rest: unknown[]) => number;
    out[name] = ((fd: number, ...rest: unknown[]) => {
      const file = table[fd];
      if (
        file && masks.has(file) && (rightsOf(file).base & BigInt(right)) === 0n
      ) {
        return wasi.ERRNO_NOTCAPABLE;
      }
      return call(fd, ...rest);
    }) as WasiEnv["imports"][string];
  }
  out.fd_fdstat_get = ((fd: number, pointer: number) => {
    const file = table[fd];
    if (file === undefined) return wasi.ERRNO_BADF;
    const { fdstat, base, inheriting } = rightsOf(file);
    if (fdstat === null) return wasi.ERRNO_NOTSUP;
    fdstat.fs_rights_base = base;
    fdstat.fs_rights_inherited = inheriting;
    fdstat.write_bytes(new DataView(memory().buffer), pointer);
    return wasi.ERRNO_SUCCESS;
  }) as WasiEnv["imports"][string];
  out.fd_fdstat_set_rights =
    ((fd: number, base: bigint, inheriting: bigint) => {
      const file = table[fd];
      if (file === undefined) return wasi.ERRNO_BADF;
      const current = rightsOf(file);
      if (
        (base & ~current.base) !== 0n ||
        (inheriting & ~current.inheriting) !== 0n
      ) {
        return wasi.ERRNO_NOTCAPABLE;
      }
      masks.set(file, { base, inheriting });
      return wasi.ERRNO_SUCCESS;
    }) as WasiEnv["imports"][string];
  return out;
}

/**
 * Writes a filestat with the preview1 layout (the shim's own writer puts the
 * three timestamps at wrong offsets, over the top bytes of `size`).
 */
function writeFilestat(
  memory: WebAssembly.Memory,
  at: number,
  stat: wasi.Filestat,
): void {
  const view = new DataView(memory.buffer);
  new Uint8Array(memory.buffer, at, 64).fill(0);
  view.setBigUint64(at, stat.dev, true);
  view.setBigUint64(at + 8, stat.ino, true);
  view.setUint8(at + 16, stat.filetype);
  view.setBigUint64(at + 24, stat.nlink, true);
  view.setBigUint64(at + 32, stat.size, true);
  view.setBigUint64(at + 40, stat.atim, true);
  view.setBigUint64(at + 48, stat.mtim, true);
  view.setBigUint64(at + 56, stat.ctim, true);
}

const SUBSCRIPTION_SIZE = 48;
const EVENT_SIZE = 32;

/**
 * poll_oneoff: descriptors are all in memory and always ready; clocks sleep
 * with Atomics.wait (no busy loop) until the earliest deadline.
 */
function pollOneoff(
  memory: WebAssembly.Memory,
  table: (Fd | undefined)[],
  { inPtr, outPtr, count, nPtr: neventsPtr }: {
    inPtr: number;
    outPtr: number;
    count: number;
    nPtr: number;
  },
  whileSleeping?: () => void,
): number {
  if (count === 0) return wasi.ERRNO_INVAL;
  let view = new DataView(memory.buffer);
  type Clock = { userdata: bigint; deadline: bigint; clock: number };
  const clocks: Clock[] = [];
  const ready: { userdata: bigint; error: number; type: number }[] = [];
  for (let i = 0; i < count; i++) {
    const at = inPtr + i * SUBSCRIPTION_SIZE;
    const userdata = view.getBigUint64(at, true);
    const type = view.getUint8(at + 8);
    if (type === wasi.EVENTTYPE_CLOCK) {
      const clock = view.getUint32(at + 16, true);
      const timeout = view.getBigUint64(at + 24, true);
      const flags = view.getUint16(at + 40, true);
      const now = nowNs(clock);
      if (now === null) {
        ready.push({ userdata, error: wasi.ERRNO_INVAL, type });
        continue;
      }
      const absolute =
        (flags & wasi.SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) !==
          0;
      clocks.push({
        userdata,
        clock,
        deadline: absolute ? timeout : now + timeout,
      });
    } else if (
      type === wasi.EVENTTYPE_FD_READ || type === wasi.EVENTTYPE_FD_WRITE
    ) {
      const fd = view.getUint32(at + 16, true);
      const error = table[fd] === undefined
        ? wasi.ERRNO_BADF
        : wasi.ERRNO_SUCCESS;
      ready.push({ userdata, error, type });
    } else {
      ready.push({ userdata, error: wasi.ERRNO_INVAL, type });
    }
  }
  while (ready.length === 0 && clocks.length > 0) {
    const wait = clocks
      .map((c) => c.deadline - nowNs(c.clock)!)
      .reduce((min, left) => left < min ? left : min);
    if (wait <= 0n) break;
    const ms = Math.min(Math.max(Number(wait) / 1e6, 0.001), SLEEP_SLICE_MS);
    Atomics.wait(sleepCell, 0, 0, ms);
    whileSleeping?.();
  }
  for (const c of clocks) {
    if (nowNs(c.clock)! >= c.deadline) {
      ready.push({
        userdata: c.userdata,
        error: 0,
        type: wasi.EVENTTYPE_CLOCK,
      });
    }
  }
  view = new DataView(memory.buffer);
  ready.forEach((event, i) => {
    const at = outPtr + i * EVENT_SIZE;
    new Uint8Array(memory.buffer, at, EVENT_SIZE).fill(0);
    view.setBigUint64(at, event.userdata, true);
    view.setUint16(at + 8, event.error, true);
    view.setUint8(at + 10, event.type);
  });
  view.setUint32(neventsPtr, ready.length, true);
  return wasi.ERRNO_SUCCESS;
}
