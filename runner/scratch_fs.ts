/**
 * The writable scratch directory: an in-memory tree that lives for one run,
 * with a byte cap. Written for Phase because the shim's own in-memory
 * directory loses APPEND, reports no rights, overflows timestamps, links
 * onto existing names and has no size limit.
 * Symbolic links are not supported (NOTSUP on creation; nothing is a link).
 * @module
 */
import { Fd, wasi } from "@bjorn3/browser_wasi_shim";
import { DirFd } from "./dir_fd.ts";
import { type HostBudget, UNLIMITED_BUDGET } from "./job_memory.ts";

/**
 * Host bytes charged per directory entry besides its name: the map slot,
 * the node object and its times (measured ~300 bytes in V8, rounded up).
 */
export const SCRATCH_ENTRY_BYTES = 512;

/** Bytes charged for an entry's name (a JS string holds up to 2 per char). */
const nameBytes = (name: string) => 2 * name.length;

/** fstflags bits (the shim's constants are all 1). */
export const FSTFLAGS = {
  atim: 1,
  atimNow: 2,
  mtim: 4,
  mtimNow: 8,
} as const;

const bit = (...rights: number[]) =>
  rights.reduce((all, r) => all | BigInt(r), 0n);

/** Rights of a scratch file opened for reading and writing. */
export const FILE_RIGHTS = bit(
  wasi.RIGHTS_FD_DATASYNC,
  wasi.RIGHTS_FD_READ,
  wasi.RIGHTS_FD_SEEK,
  wasi.RIGHTS_FD_FDSTAT_SET_FLAGS,
  wasi.RIGHTS_FD_SYNC,
  wasi.RIGHTS_FD_TELL,
  wasi.RIGHTS_FD_WRITE,
  wasi.RIGHTS_FD_ADVISE,
  wasi.RIGHTS_FD_ALLOCATE,
  wasi.RIGHTS_FD_FILESTAT_GET,
  wasi.RIGHTS_FD_FILESTAT_SET_SIZE,
  wasi.RIGHTS_FD_FILESTAT_SET_TIMES,
  wasi.RIGHTS_POLL_FD_READWRITE,
);
/** Rights of a scratch directory. */
export const DIR_RIGHTS = bit(
  wasi.RIGHTS_FD_FDSTAT_SET_FLAGS,
  wasi.RIGHTS_FD_SYNC,
  wasi.RIGHTS_FD_ADVISE,
  wasi.RIGHTS_PATH_CREATE_DIRECTORY,
  wasi.RIGHTS_PATH_CREATE_FILE,
  wasi.RIGHTS_PATH_LINK_SOURCE,
  wasi.RIGHTS_PATH_LINK_TARGET,
  wasi.RIGHTS_PATH_OPEN,
  wasi.RIGHTS_FD_READDIR,
  wasi.RIGHTS_PATH_READLINK,
  wasi.RIGHTS_PATH_RENAME_SOURCE,
  wasi.RIGHTS_PATH_RENAME_TARGET,
  wasi.RIGHTS_PATH_FILESTAT_GET,
  wasi.RIGHTS_PATH_FILESTAT_SET_SIZE,
  wasi.RIGHTS_PATH_FILESTAT_SET_TIMES,
  wasi.RIGHTS_FD_FILESTAT_GET,
  wasi.RIGHTS_FD_FILESTAT_SET_TIMES,
  wasi.RIGHTS_PATH_SYMLINK,
  wasi.RIGHTS_PATH_REMOVE_DIRECTORY,
  wasi.RIGHTS_PATH_UNLINK_FILE,
);

const now = () => BigInt(Date.now()) * 1_000_000n;

interface Times {
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

/** A file's bytes and metadata; shared by hard links. */
class FileNode {
  readonly kind = "file";
  data = new Uint8Array(0);
  size = 0;
  nlink = 0;
  readonly times: Times;
  constructor(readonly ino: bigint) {
    const t = now();
    this.times = { atim: t, mtim: t, ctim: t };
  }
}

/** A directory's entries and metadata. */
class DirNode {
  readonly kind = "dir";
  readonly entries = new Map<string, Node>();
  readonly times: Times;
  constructor(readonly ino: bigint, public parent: DirNode | null) {
    const t = now();
    this.times = { atim: t, mtim: t, ctim: t };
  }
}

type Node = FileNode | DirNode;

/**
 * Shared state of one scratch tree: inode numbers, the cap on file bytes,
 * and the job's memory budget, which pays for file buffers, entries and
 * names alike.
 */
class ScratchTree {
  #nextIno = 1n;
  used = 0;
  readonly root: DirNode;
  constructor(readonly capBytes: number, readonly budget: HostBudget) {
    this.root = new DirNode(this.#nextIno++, null);
  }

  /** Adds a name to a directory; false when the budget has no room. */
  addEntry(dir: DirNode, name: string, node: Node): boolean {
    if (!this.budget.take(SCRATCH_ENTRY_BYTES + nameBytes(name))) return false;
    dir.entries.set(name, node);
    return true;
  }

  /** Removes a name from a directory and gives its bytes back. */
  removeEntry(dir: DirNode, name: string): void {
    if (dir.entries.delete(name)) {
      this.budget.give(SCRATCH_ENTRY_BYTES + nameBytes(name));
    }
  }

  file(): FileNode {
    return new FileNode(this.#nextIno++);
  }

  dir(parent: DirNode): DirNode {
    return new DirNode(this.#nextIno++, parent);
  }

  /**
   * Resizes a file's bytes within the cap and the budget (which pays for
   * the buffer's capacity); false when it does not fit.
   */
  resize(file: FileNode, size: number): boolean {
    const growth = size - file.size;
    if (growth > 0 && this.used + growth > this.capBytes) return false;
    if (size > file.data.length) {
      const doubled = Math.min(
        Math.max(size, file.data.length * 2, 64),
        this.capBytes,
      );
      const capacity = this.budget.take(doubled - file.data.length)
        ? doubled
        : size;
      if (
        capacity === size && !this.budget.take(capacity - file.data.length)
      ) {
        return false;
      }
      const data = new Uint8Array(capacity);
      data.set(file.data.subarray(0, file.size));
      file.data = data;
    } else if (size < file.size) {
      file.data.fill(0, size, file.size);
    }
    this.used += growth;
    file.size = size;
    return true;
  }

  /** Frees a file's bytes once its last link is gone and nothing has it open. */
  release(file: FileNode, openCount: number): void {
    if (file.nlink !== 0 || openCount !== 0) return;
    this.used -= file.size;
    this.budget.give(file.data.length);
    file.size = 0;
    file.data = new Uint8Array(0);
  }
}

function stat(node: Node): wasi.Filestat {
  const isFile = node.kind === "file";
  const s = new wasi.Filestat(
    node.ino,
    isFile ? wasi.FILETYPE_REGULAR_FILE : wasi.FILETYPE_DIRECTORY,
    BigInt(isFile ? node.size : 0),
  );
  s.dev = 1n;
  s.nlink = BigInt(isFile ? node.nlink : 1);
  s.atim = node.times.atim;
  s.mtim = node.times.mtim;
  s.ctim = node.times.ctim;
  return s;
}

function setTimes(
  times: Times,
  atim: bigint,
  mtim: bigint,
  flags: number,
): number {
  if (
    (flags & FSTFLAGS.atim && flags & FSTFLAGS.atimNow) ||
    (flags & FSTFLAGS.mtim && flags & FSTFLAGS.mtimNow) ||
    flags & ~0xf
  ) return wasi.ERRNO_INVAL;
  const t = now();
  if (flags & FSTFLAGS.atim) times.atim = atim;
  if (flags & FSTFLAGS.atimNow) times.atim = t;
  if (flags & FSTFLAGS.mtim) times.mtim = mtim;
  if (flags & FSTFLAGS.mtimNow) times.mtim = t;
  times.ctim = t;
  return wasi.ERRNO_SUCCESS;
}

/** A path split into the directory holding it and its last component. */
type Located =
  | { ret: 0; dir: DirNode; name: string; node: Node | null; slash: boolean }
  | { ret: number; dir: null; name: ""; node: null; slash: false };

const fail = (ret: number): Located => ({
  ret,
  dir: null,
  name: "",
  node: null,
  slash: false,
});

/** Open-file counts per file node, so unlinked open files keep their bytes. */
const openFiles = new WeakMap<FileNode, number>();

/** An open scratch file. */
class ScratchFileFd extends Fd {
  #position = 0;
  #flags: number;
  readonly #rights: bigint;

  constructor(
    readonly tree: ScratchTree,
    readonly node: FileNode,
    flags: number,
    rights: bigint,
  ) {
    super();
    this.#flags = flags;
    this.#rights = rights;
    openFiles.set(node, (openFiles.get(node) ?? 0) + 1);
  }

  #may(right: number): boolean {
    return (this.#rights & BigInt(right)) !== 0n;
  }

  override fd_close(): number {
    const open = (openFiles.get(this.node) ?? 1) - 1;
    openFiles.set(this.node, open);
    this.tree.release(this.node, open);
    return wasi.ERRNO_SUCCESS;
  }

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_REGULAR_FILE, this.#flags);
    fdstat.fs_rights_base = this.#rights;
    fdstat.fs_rights_inherited = 0n;
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_fdstat_set_flags(flags: number): number {
    if (flags & ~0x1f) return wasi.ERRNO_INVAL;
    this.#flags = flags;
    return wasi.ERRNO_SUCCESS;
  }

  override fd_filestat_get() {
    return { ret: wasi.ERRNO_SUCCESS, filestat: stat(this.node) };
  }

  override fd_filestat_set_size(size: bigint): number {
    if (!this.#may(wasi.RIGHTS_FD_FILESTAT_SET_SIZE)) return wasi.ERRNO_BADF;
    if (size > BigInt(this.tree.capBytes)) return wasi.ERRNO_FBIG;
    if (!this.tree.resize(this.node, Number(size))) return wasi.ERRNO_NOSPC;
    this.node.times.mtim = this.node.times.ctim = now();
    return wasi.ERRNO_SUCCESS;
  }

  override fd_allocate(offset: bigint, length: bigint): number {
    if (!this.#may(wasi.RIGHTS_FD_ALLOCATE)) return wasi.ERRNO_BADF;
    const end = offset + length;
    if (end > BigInt(this.tree.capBytes)) return wasi.ERRNO_FBIG;
    if (Number(end) <= this.node.size) return wasi.ERRNO_SUCCESS;
    return this.tree.resize(this.node, Number(end))
      ? wasi.ERRNO_SUCCESS
      : wasi.ERRNO_NOSPC;
  }

  override fd_filestat_set_times(
    atim: bigint,
    mtim: bigint,
    flags: number,
  ): number {
    return setTimes(this.node.times, atim, mtim, flags);
  }

  override fd_pread(size: number, offset: bigint) {
    if (!this.#may(wasi.RIGHTS_FD_READ)) {
      return { ret: wasi.ERRNO_BADF, data: new Uint8Array() };
    }
    const start = Math.min(Number(offset), this.node.size);
    const end = Math.min(start + size, this.node.size);
    this.node.times.atim = now();
    return {
      ret: wasi.ERRNO_SUCCESS,
      data: this.node.data.slice(start, end),
    };
  }

  override fd_read(size: number) {
    const result = this.fd_pread(size, BigInt(this.#position));
    this.#position += result.data.length;
    return result;
  }

  override fd_pwrite(data: Uint8Array, offset: bigint) {
    if (!this.#may(wasi.RIGHTS_FD_WRITE)) {
      return { ret: wasi.ERRNO_BADF, nwritten: 0 };
    }
    const at = Number(offset);
    const end = at + data.length;
    if (end > this.node.size && !this.tree.resize(this.node, end)) {
      return { ret: wasi.ERRNO_NOSPC, nwritten: 0 };
    }
    this.node.data.set(data, at);
    this.node.times.mtim = this.node.times.ctim = now();
    return { ret: wasi.ERRNO_SUCCESS, nwritten: data.length };
  }

  override fd_write(data: Uint8Array) {
    if (this.#flags & wasi.FDFLAGS_APPEND) this.#position = this.node.size;
    const result = this.fd_pwrite(data, BigInt(this.#position));
    this.#position += result.nwritten;
    return result;
  }

  override fd_seek(offset: bigint, whence: number) {
    let base: number;
    if (whence === wasi.WHENCE_SET) base = 0;
    else if (whence === wasi.WHENCE_CUR) base = this.#position;
    else if (whence === wasi.WHENCE_END) base = this.node.size;
    else return { ret: wasi.ERRNO_INVAL, offset: 0n };
    const next = BigInt(base) + offset;
    if (next < 0n || next > BigInt(Number.MAX_SAFE_INTEGER)) {
      return { ret: wasi.ERRNO_INVAL, offset: 0n };
    }
    this.#position = Number(next);
    return { ret: wasi.ERRNO_SUCCESS, offset: next };
  }

  override fd_tell() {
    return { ret: wasi.ERRNO_SUCCESS, offset: BigInt(this.#position) };
  }
}

/** A scratch directory: the preopen or one opened under it. */
export class ScratchDirFd extends DirFd {
  readonly #tree: ScratchTree;
  readonly #node: DirNode;

  /**
   * A fresh, empty scratch tree shown to the guest as `guestPath`, holding
   * at most `capBytes` of file data and paying for everything from
   * `budget`.
   */
  static preopen(
    guestPath: string,
    capBytes: number,
    budget: HostBudget = UNLIMITED_BUDGET,
  ): ScratchDirFd {
    const tree = new ScratchTree(capBytes, budget);
    return new ScratchDirFd(tree, tree.root, guestPath);
  }

  private constructor(
    tree: ScratchTree,
    node: DirNode,
    preopenName: string | null,
  ) {
    super(preopenName);
    this.#tree = tree;
    this.#node = node;
  }

  /** True when `other` is a directory of the same scratch tree. */
  sameTree(other: unknown): other is ScratchDirFd {
    return other instanceof ScratchDirFd && other.#tree === this.#tree;
  }

  /** Resolves `path` under this directory to its parent and last name. */
  #locate(path: string): Located {
    if (path.includes("\0")) return fail(wasi.ERRNO_INVAL);
    if (path.startsWith("/")) return fail(wasi.ERRNO_NOTCAPABLE);
    if (path === "") return fail(wasi.ERRNO_NOENT);
    const slash = path.endsWith("/");
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    // Directories walked from this one; `..` may not leave it (as cap-std).
    const walked: DirNode[] = [this.#node];
    let dir = this.#node;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i];
      if (part === "..") {
        if (walked.length === 1) return fail(wasi.ERRNO_NOTCAPABLE);
        walked.pop();
        dir = walked.at(-1)!;
        continue;
      }
      const next = dir.entries.get(part);
      if (!next) return fail(wasi.ERRNO_NOENT);
      if (next.kind !== "dir") return fail(wasi.ERRNO_NOTDIR);
      walked.push(next);
      dir = next;
    }
    const last = parts.at(-1);
    if (last === undefined) {
      return { ret: 0, dir, name: ".", node: dir, slash: true };
    }
    if (last === "..") {
      if (walked.length === 1) return fail(wasi.ERRNO_NOTCAPABLE);
      const up = walked.at(-2)!;
      return { ret: 0, dir: up, name: ".", node: up, slash };
    }
    const node = dir.entries.get(last) ?? null;
    if (node?.kind === "file" && slash) return fail(wasi.ERRNO_NOTDIR);
    return { ret: 0, dir, name: last, node, slash };
  }

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_DIRECTORY, 0);
    fdstat.fs_rights_base = DIR_RIGHTS;
    fdstat.fs_rights_inherited = DIR_RIGHTS | FILE_RIGHTS;
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_fdstat_set_flags(): number {
    return wasi.ERRNO_SUCCESS;
  }

  override fd_filestat_get() {
    return { ret: wasi.ERRNO_SUCCESS, filestat: stat(this.#node) };
  }

  override fd_filestat_set_times(
    atim: bigint,
    mtim: bigint,
    flags: number,
  ): number {
    return setTimes(this.#node.times, atim, mtim, flags);
  }

  override fd_filestat_set_size(): number {
    return wasi.ERRNO_ISDIR;
  }

  override fd_allocate(): number {
    return wasi.ERRNO_ISDIR;
  }

  override fd_pread() {
    return { ret: wasi.ERRNO_ISDIR, data: new Uint8Array() };
  }

  override fd_pwrite() {
    return { ret: wasi.ERRNO_BADF, nwritten: 0 };
  }

  override fd_tell() {
    return { ret: wasi.ERRNO_ISDIR, offset: 0n };
  }

  override fd_readdir_single(cookie: bigint) {
    const listing: [string, Node][] = [
      [".", this.#node],
      ["..", this.#node.parent ?? this.#node],
      ...[...this.#node.entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
    ];
    if (cookie >= BigInt(listing.length)) {
      return { ret: wasi.ERRNO_SUCCESS, dirent: null };
    }
    const [name, node] = listing[Number(cookie)];
    const type = node.kind === "dir"
      ? wasi.FILETYPE_DIRECTORY
      : wasi.FILETYPE_REGULAR_FILE;
    return {
      ret: wasi.ERRNO_SUCCESS,
      dirent: new wasi.Dirent(cookie + 1n, node.ino, name, type),
    };
  }

  override path_open(
    _dirflags: number,
    path: string,
    oflags: number,
    rightsBase: bigint,
    _rightsInheriting: bigint,
    fdFlags: number,
  ) {
    const at = this.#locate(path);
    if (at.dir === null) return { ret: at.ret, fd_obj: null };
    let node = at.node;
    if (node && oflags & wasi.OFLAGS_CREAT && oflags & wasi.OFLAGS_EXCL) {
      return { ret: wasi.ERRNO_EXIST, fd_obj: null };
    }
    if (!node) {
      if (!(oflags & wasi.OFLAGS_CREAT)) {
        return { ret: wasi.ERRNO_NOENT, fd_obj: null };
      }
      if (at.slash || oflags & wasi.OFLAGS_DIRECTORY) {
        return { ret: wasi.ERRNO_ISDIR, fd_obj: null };
      }
      const file = this.#tree.file();
      if (!this.#tree.addEntry(at.dir, at.name, file)) {
        return { ret: wasi.ERRNO_NOSPC, fd_obj: null };
      }
      file.nlink = 1;
      at.dir.times.mtim = now();
      node = file;
    }
    if (node.kind === "dir") {
      const writing = (rightsBase & BigInt(wasi.RIGHTS_FD_WRITE)) !== 0n;
      if (writing || oflags & wasi.OFLAGS_TRUNC) {
        return { ret: wasi.ERRNO_ISDIR, fd_obj: null };
      }
      return {
        ret: wasi.ERRNO_SUCCESS,
        fd_obj: new ScratchDirFd(this.#tree, node, null),
      };
    }
    if (oflags & wasi.OFLAGS_DIRECTORY) {
      return { ret: wasi.ERRNO_NOTDIR, fd_obj: null };
    }
    if (oflags & wasi.OFLAGS_TRUNC) this.#tree.resize(node, 0);
    return {
      ret: wasi.ERRNO_SUCCESS,
      fd_obj: new ScratchFileFd(
        this.#tree,
        node,
        fdFlags,
        rightsBase & FILE_RIGHTS,
      ),
    };
  }

  override path_create_directory(path: string): number {
    const at = this.#locate(path);
    if (at.dir === null) return at.ret;
    if (at.node) return wasi.ERRNO_EXIST;
    if (!this.#tree.addEntry(at.dir, at.name, this.#tree.dir(at.dir))) {
      return wasi.ERRNO_NOSPC;
    }
    at.dir.times.mtim = now();
    return wasi.ERRNO_SUCCESS;
  }

  override path_filestat_get(_flags: number, path: string) {
    const at = this.#locate(path);
    if (at.dir === null) return { ret: at.ret, filestat: null };
    if (!at.node) return { ret: wasi.ERRNO_NOENT, filestat: null };
    return { ret: wasi.ERRNO_SUCCESS, filestat: stat(at.node) };
  }

  override path_filestat_set_times(
    _flags: number,
    path: string,
    atim: bigint,
    mtim: bigint,
    fstFlags: number,
  ): number {
    const at = this.#locate(path);
    if (at.dir === null) return at.ret;
    if (!at.node) return wasi.ERRNO_NOENT;
    return setTimes(at.node.times, atim, mtim, fstFlags);
  }

  override path_readlink(path: string) {
    const at = this.#locate(path);
    if (at.dir === null) return { ret: at.ret, data: null };
    // Nothing in a scratch tree is a symbolic link.
    return { ret: at.node ? wasi.ERRNO_INVAL : wasi.ERRNO_NOENT, data: null };
  }

  override path_remove_directory(path: string): number {
    const at = this.#locate(path);
    if (at.dir === null) return at.ret;
    if (!at.node) return wasi.ERRNO_NOENT;
    if (at.node.kind !== "dir") return wasi.ERRNO_NOTDIR;
    if (at.name === ".") return wasi.ERRNO_INVAL;
    if (at.node.entries.size > 0) return wasi.ERRNO_NOTEMPTY;
    this.#tree.removeEntry(at.dir, at.name);
    at.dir.times.mtim = now();
    return wasi.ERRNO_SUCCESS;
  }

  override path_unlink_file(path: string): number {
    const at = this.#locate(path);
    if (at.dir === null) return at.ret;
    if (!at.node) return wasi.ERRNO_NOENT;
    if (at.node.kind === "dir") return wasi.ERRNO_ISDIR;
    this.#tree.removeEntry(at.dir, at.name);
    at.node.nlink--;
    at.node.times.ctim = at.dir.times.mtim = now();
    this.#tree.release(at.node, openFiles.get(at.node) ?? 0);
    return wasi.ERRNO_SUCCESS;
  }

  /** Hard-links the file at `oldPath` as `newPath` under `target`. */
  link(oldPath: string, target: ScratchDirFd, newPath: string): number {
    const from = this.#locate(oldPath);
    if (from.dir === null) return from.ret;
    if (!from.node) return wasi.ERRNO_NOENT;
    if (from.node.kind === "dir") return wasi.ERRNO_PERM;
    const to = target.#locate(newPath);
    if (to.dir === null) return to.ret;
    if (to.node) return wasi.ERRNO_EXIST;
    if (to.slash) return wasi.ERRNO_NOENT;
    if (!this.#tree.addEntry(to.dir, to.name, from.node)) {
      return wasi.ERRNO_NOSPC;
    }
    from.node.nlink++;
    from.node.times.ctim = to.dir.times.mtim = now();
    return wasi.ERRNO_SUCCESS;
  }

  /** Renames `oldPath` to `newPath` under `target` (POSIX rename rules). */
  rename(oldPath: string, target: ScratchDirFd, newPath: string): number {
    const from = this.#locate(oldPath);
    if (from.dir === null) return from.ret;
    if (!from.node) return wasi.ERRNO_NOENT;
    const to = target.#locate(newPath);
    if (to.dir === null) return to.ret;
    if (from.name === "." || to.name === ".") return wasi.ERRNO_BUSY;
    const moving = from.node;
    const replaced = to.node;
    if (moving.kind === "file" && to.slash && !replaced) {
      return wasi.ERRNO_NOTDIR;
    }
    if (replaced === moving) return wasi.ERRNO_SUCCESS;
    if (replaced) {
      if (moving.kind === "dir" && replaced.kind === "file") {
        return wasi.ERRNO_NOTDIR;
      }
      if (moving.kind === "file" && replaced.kind === "dir") {
        return wasi.ERRNO_ISDIR;
      }
      if (replaced.kind === "dir" && replaced.entries.size > 0) {
        return wasi.ERRNO_NOTEMPTY;
      }
    }
    if (moving.kind === "dir") {
      for (let d: DirNode | null = to.dir; d; d = d.parent) {
        if (d === moving) return wasi.ERRNO_INVAL;
      }
    }
    if (!replaced && !this.#tree.addEntry(to.dir, to.name, moving)) {
      return wasi.ERRNO_NOSPC;
    }
    if (replaced) to.dir.entries.set(to.name, moving);
    this.#tree.removeEntry(from.dir, from.name);
    if (moving.kind === "dir") moving.parent = to.dir;
    if (replaced?.kind === "file") {
      replaced.nlink--;
      this.#tree.release(replaced, openFiles.get(replaced) ?? 0);
    }
    const t = now();
    moving.times.ctim = from.dir.times.mtim = to.dir.times.mtim = t;
    return wasi.ERRNO_SUCCESS;
  }
}
