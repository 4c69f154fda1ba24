/**
 * The writable scratch directory: an in-memory tree that lives for one run,
 * with a byte cap, optionally seeded from a host directory or a job's
 * request (runner/scratch_seed.ts). Seeded file bytes are shared with the
 * seed until the guest first changes them (copy on write). Written for
 * Phase because the shim's own in-memory directory loses APPEND, reports no
 * rights, overflows timestamps, links onto existing names, has no symbolic
 * links and no size limit. Paths are walked by runner/path_walk.ts, the
 * same rules as host directories.
 * @module
 */
import { Fd, wasi } from "@bjorn3/browser_wasi_shim";
import { DirFd } from "./dir_fd.ts";
import { type HostBudget, UNLIMITED_BUDGET } from "./job_memory.ts";
import {
  type Entry,
  LOOKUP_SYMLINK_FOLLOW,
  walk,
  type WalkTree,
} from "./path_walk.ts";
import {
  SCRATCH_ENTRY_BYTES,
  type SeedEntry,
  seedProblem,
  stringBytes,
} from "./scratch_seed.ts";
import { DIR_RIGHTS, FILE_RIGHTS } from "./wasi_rights.ts";

export { SCRATCH_ENTRY_BYTES };

/** fstflags bits (the shim's constants are all 1). */
export const FSTFLAGS = {
  atim: 1,
  atimNow: 2,
  mtim: 4,
  mtimNow: 8,
} as const;

const now = () => BigInt(Date.now()) * 1_000_000n;

interface Times {
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

const fresh = (): Times => {
  const t = now();
  return { atim: t, mtim: t, ctim: t };
};

/** A file's bytes and metadata; shared by hard links. */
class FileNode {
  readonly kind = "file";
  data: Uint8Array = new Uint8Array(0);
  size = 0;
  nlink = 0;
  /** `data` is a seed's bytes, not yet copied (copy on write). */
  shared = false;
  readonly times: Times = fresh();
  constructor(readonly ino: bigint) {}
}

/** A directory's entries and metadata. */
class DirNode {
  readonly kind = "dir";
  readonly entries = new Map<string, Node>();
  readonly times: Times = fresh();
  constructor(readonly ino: bigint, public parent: DirNode | null) {}
}

/** A symbolic link: its target, resolved inside the tree when followed. */
class LinkNode {
  readonly kind = "symlink";
  nlink = 0;
  readonly times: Times = fresh();
  constructor(readonly ino: bigint, readonly target: string) {}
}

type Node = FileNode | DirNode | LinkNode;

/** Budget bytes an entry holds beyond its name: a link's target. */
const extraBytes = (node: Node) =>
  node.kind === "symlink" ? stringBytes(node.target) : 0;

/**
 * Shared state of one scratch tree: inode numbers, the cap on file bytes,
 * and the job's memory budget, which pays for file buffers, entries, names
 * and link targets alike.
 */
class ScratchTree implements WalkTree<DirNode> {
  #nextIno = 1n;
  used = 0;
  readonly root: DirNode;
  constructor(readonly capBytes: number, readonly budget: HostBudget) {
    this.root = new DirNode(this.#nextIno++, null);
  }

  lookup(dir: DirNode, name: string): Entry<DirNode> | null {
    const node = dir.entries.get(name);
    if (!node) return null;
    if (node.kind === "dir") return { kind: "dir", dir: node };
    if (node.kind === "symlink") {
      return { kind: "symlink", target: node.target };
    }
    return { kind: "file" };
  }

  /** Adds a name to a directory; false when the budget has no room. */
  addEntry(dir: DirNode, name: string, node: Node): boolean {
    const cost = SCRATCH_ENTRY_BYTES + stringBytes(name) + extraBytes(node);
    if (!this.budget.take(cost)) return false;
    dir.entries.set(name, node);
    return true;
  }

  /**
   * Points an existing name at another node, paying the difference of
   * their link targets; false (nothing changed) when it does not fit.
   */
  swapEntry(dir: DirNode, name: string, old: Node, node: Node): boolean {
    const more = extraBytes(node) - extraBytes(old);
    if (more > 0 && !this.budget.take(more)) return false;
    if (more < 0) this.budget.give(-more);
    dir.entries.set(name, node);
    return true;
  }

  /** Removes a name from a directory and gives its bytes back. */
  removeEntry(dir: DirNode, name: string): void {
    const node = dir.entries.get(name);
    if (node && dir.entries.delete(name)) {
      this.budget.give(
        SCRATCH_ENTRY_BYTES + stringBytes(name) + extraBytes(node),
      );
    }
  }

  file(): FileNode {
    return new FileNode(this.#nextIno++);
  }

  dir(parent: DirNode): DirNode {
    return new DirNode(this.#nextIno++, parent);
  }

  link(target: string): LinkNode {
    return new LinkNode(this.#nextIno++, target);
  }

  /**
   * Resizes a file's bytes within the cap and the budget (which pays for
   * the buffer's capacity); false when it does not fit. A file still
   * sharing its seed's bytes gets its own copy first.
   */
  resize(file: FileNode, size: number): boolean {
    const growth = size - file.size;
    if (growth > 0 && this.used + growth > this.capBytes) return false;
    if (file.shared || size > file.data.length) {
      // A seed's buffer stays with the seed: the copy is paid in full.
      const held = file.shared ? 0 : file.data.length;
      const doubled = Math.min(
        Math.max(size, held * 2, 64),
        Math.max(this.capBytes, size),
      );
      let capacity = doubled;
      if (!this.budget.take(doubled - held)) {
        capacity = size;
        if (!this.budget.take(capacity - held)) return false;
      }
      const data = new Uint8Array(capacity);
      data.set(file.data.subarray(0, Math.min(file.size, size)));
      file.data = data;
      file.shared = false;
    } else if (size < file.size) {
      file.data.fill(0, size, file.size);
    }
    this.used += growth;
    file.size = size;
    return true;
  }

  /** Makes a file's bytes its own before they change in place. */
  own(file: FileNode): boolean {
    return !file.shared || this.resize(file, file.size);
  }

  /** Frees a file's bytes once its last link is gone and nothing has it open. */
  release(file: FileNode, openCount: number): void {
    if (file.nlink !== 0 || openCount !== 0) return;
    this.used -= file.size;
    if (!file.shared) this.budget.give(file.data.length);
    file.size = 0;
    file.data = new Uint8Array(0);
    file.shared = false;
  }

  /**
   * Fills the tree from a seed (checked by seedProblem). The seed's bytes
   * are charged to the budget here; false when they do not fit.
   */
  seed(entries: SeedEntry[]): boolean {
    for (const entry of entries) {
      const parts = entry.path.split("/");
      let dir = this.root;
      for (const part of parts.slice(0, -1)) {
        let next = dir.entries.get(part);
        if (!next) {
          next = this.dir(dir);
          if (!this.addEntry(dir, part, next)) return false;
        }
        dir = next as DirNode;
      }
      const name = parts.at(-1)!;
      const existing = dir.entries.get(name);
      if (existing?.kind === "dir" && entry.kind === "dir") continue;
      let node: Node;
      if (entry.kind === "dir") node = this.dir(dir);
      else if (entry.kind === "symlink") {
        node = this.link(entry.target ?? "");
        node.nlink = 1;
      } else {
        const file = this.file();
        const data = entry.data ?? new Uint8Array();
        if (this.used + data.length > this.capBytes) return false;
        if (!this.budget.take(data.length)) return false;
        file.data = data;
        file.size = data.length;
        file.shared = true;
        file.nlink = 1;
        this.used += data.length;
        node = file;
      }
      if (!this.addEntry(dir, name, node)) return false;
    }
    return true;
  }
}

function filetype(node: Node): number {
  if (node.kind === "file") return wasi.FILETYPE_REGULAR_FILE;
  if (node.kind === "dir") return wasi.FILETYPE_DIRECTORY;
  return wasi.FILETYPE_SYMBOLIC_LINK;
}

function stat(node: Node): wasi.Filestat {
  const size = node.kind === "file"
    ? node.size
    : node.kind === "symlink"
    ? new TextEncoder().encode(node.target).length
    : 0;
  const s = new wasi.Filestat(node.ino, filetype(node), BigInt(size));
  s.dev = 1n;
  s.nlink = BigInt(node.kind === "dir" ? 1 : node.nlink);
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

/** A path walked to the directory holding it, its last name and node. */
type Located =
  | { ret: 0; dir: DirNode; name: string; node: Node | null; slash: boolean }
  | { ret: number; dir: null; name: ""; node: null; slash: false };

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
    const fits = end > this.node.size
      ? this.tree.resize(this.node, end)
      : this.tree.own(this.node);
    if (!fits) return { ret: wasi.ERRNO_NOSPC, nwritten: 0 };
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

/** Options of a scratch preopen. */
export interface ScratchOptions {
  /** Cap on the file bytes held (the job's memory budget). */
  capBytes: number;
  /** Pays for everything the tree holds (default unlimited). */
  budget?: HostBudget;
  /** What the tree starts with (default nothing). */
  seed?: SeedEntry[];
}

/** A seed that does not fit its job's memory budget. */
export class SeedTooLarge extends Error {
  /** Creates the error. */
  constructor() {
    super(
      "memory limit: the scratch seed does not fit the job's memory budget",
    );
    this.name = "SeedTooLarge";
  }
}

/** A scratch directory: the preopen or one opened under it. */
export class ScratchDirFd extends DirFd {
  readonly #tree: ScratchTree;
  readonly #node: DirNode;

  /**
   * A fresh scratch tree shown to the guest as `guestPath`, holding at most
   * `capBytes` of file data and paying for everything from `budget`. A
   * seed that is malformed throws Error; one that does not fit the budget
   * throws {@link SeedTooLarge}.
   */
  static preopen(guestPath: string, options: ScratchOptions): ScratchDirFd {
    const tree = new ScratchTree(
      options.capBytes,
      options.budget ?? UNLIMITED_BUDGET,
    );
    if (options.seed) {
      const problem = seedProblem(options.seed);
      if (problem) throw new Error(problem);
      if (!tree.seed(options.seed)) throw new SeedTooLarge();
    }
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

  /**
   * Walks `path` under this directory (runner/path_walk.ts); `follow`
   * follows a final link.
   */
  #locate(path: string, follow: boolean): Located {
    const at = walk(this.#tree, this.#node, path, follow);
    if (at.dir === null) {
      return { ret: at.ret, dir: null, name: "", node: null, slash: false };
    }
    const node = at.name === "." ? at.dir : at.dir.entries.get(at.name) ?? null;
    return { ret: 0, dir: at.dir, name: at.name, node, slash: at.slash };
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
    return {
      ret: wasi.ERRNO_SUCCESS,
      dirent: new wasi.Dirent(cookie + 1n, node.ino, name, filetype(node)),
    };
  }

  override path_open(
    dirflags: number,
    path: string,
    oflags: number,
    rightsBase: bigint,
    _rightsInheriting: bigint,
    fdFlags: number,
  ) {
    const exclusive = (oflags & wasi.OFLAGS_CREAT) !== 0 &&
      (oflags & wasi.OFLAGS_EXCL) !== 0;
    // O_EXCL never follows a final link (POSIX): the link itself exists.
    const follow = (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0 && !exclusive;
    const at = this.#locate(path, follow);
    if (at.dir === null) return { ret: at.ret, fd_obj: null };
    let node = at.node;
    if (node && exclusive) return { ret: wasi.ERRNO_EXIST, fd_obj: null };
    if (node?.kind === "symlink") return { ret: wasi.ERRNO_LOOP, fd_obj: null };
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
    if (oflags & wasi.OFLAGS_TRUNC && !this.#tree.resize(node, 0)) {
      return { ret: wasi.ERRNO_NOSPC, fd_obj: null };
    }
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
    const at = this.#locate(path, false);
    if (at.dir === null) return at.ret;
    if (at.node) return wasi.ERRNO_EXIST;
    if (!this.#tree.addEntry(at.dir, at.name, this.#tree.dir(at.dir))) {
      return wasi.ERRNO_NOSPC;
    }
    at.dir.times.mtim = now();
    return wasi.ERRNO_SUCCESS;
  }

  override path_filestat_get(flags: number, path: string) {
    const at = this.#locate(path, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (at.dir === null) return { ret: at.ret, filestat: null };
    if (!at.node) return { ret: wasi.ERRNO_NOENT, filestat: null };
    return { ret: wasi.ERRNO_SUCCESS, filestat: stat(at.node) };
  }

  override path_filestat_set_times(
    flags: number,
    path: string,
    atim: bigint,
    mtim: bigint,
    fstFlags: number,
  ): number {
    const at = this.#locate(path, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (at.dir === null) return at.ret;
    if (!at.node) return wasi.ERRNO_NOENT;
    return setTimes(at.node.times, atim, mtim, fstFlags);
  }

  override path_readlink(path: string) {
    const at = this.#locate(path, false);
    if (at.dir === null) return { ret: at.ret, data: null };
    if (!at.node) return { ret: wasi.ERRNO_NOENT, data: null };
    if (at.node.kind !== "symlink") {
      return { ret: wasi.ERRNO_INVAL, data: null };
    }
    return { ret: wasi.ERRNO_SUCCESS, data: at.node.target };
  }

  override path_remove_directory(path: string): number {
    const at = this.#locate(path, false);
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
    const at = this.#locate(path, false);
    if (at.dir === null) return at.ret;
    if (!at.node) return wasi.ERRNO_NOENT;
    if (at.node.kind === "dir") return wasi.ERRNO_ISDIR;
    this.#tree.removeEntry(at.dir, at.name);
    at.node.nlink--;
    at.node.times.ctim = at.dir.times.mtim = now();
    if (at.node.kind === "file") {
      this.#tree.release(at.node, openFiles.get(at.node) ?? 0);
    }
    return wasi.ERRNO_SUCCESS;
  }

  /** Creates a symbolic link `path` holding `target` (never checked). */
  symlink(target: string, path: string): number {
    if (target.includes("\0")) return wasi.ERRNO_INVAL;
    if (target === "") return wasi.ERRNO_NOENT;
    const at = this.#locate(path, false);
    if (at.dir === null) return at.ret;
    if (at.node) return wasi.ERRNO_EXIST;
    if (at.slash) return wasi.ERRNO_NOENT;
    const link = this.#tree.link(target);
    if (!this.#tree.addEntry(at.dir, at.name, link)) return wasi.ERRNO_NOSPC;
    link.nlink = 1;
    at.dir.times.mtim = now();
    return wasi.ERRNO_SUCCESS;
  }

  /**
   * Hard-links `oldPath` (its final link followed when `follow`) as
   * `newPath` under `target`.
   */
  link(
    oldPath: string,
    follow: boolean,
    target: ScratchDirFd,
    newPath: string,
  ): number {
    const from = this.#locate(oldPath, follow);
    if (from.dir === null) return from.ret;
    if (!from.node) return wasi.ERRNO_NOENT;
    if (from.node.kind === "dir") return wasi.ERRNO_PERM;
    const to = target.#locate(newPath, false);
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
    const from = this.#locate(oldPath, false);
    if (from.dir === null) return from.ret;
    if (!from.node) return wasi.ERRNO_NOENT;
    const to = target.#locate(newPath, false);
    if (to.dir === null) return to.ret;
    if (from.name === "." || to.name === ".") return wasi.ERRNO_BUSY;
    const moving = from.node;
    const replaced = to.node;
    if (moving.kind !== "dir" && to.slash && !replaced) {
      return wasi.ERRNO_NOTDIR;
    }
    if (replaced === moving) return wasi.ERRNO_SUCCESS;
    if (replaced) {
      if (moving.kind === "dir" && replaced.kind !== "dir") {
        return wasi.ERRNO_NOTDIR;
      }
      if (moving.kind !== "dir" && replaced.kind === "dir") {
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
    if (replaced) {
      // The name stays; only a link target's bytes can differ.
      if (!this.#tree.swapEntry(to.dir, to.name, replaced, moving)) {
        return wasi.ERRNO_NOSPC;
      }
      if (replaced.kind !== "dir") replaced.nlink--;
    } else if (!this.#tree.addEntry(to.dir, to.name, moving)) {
      return wasi.ERRNO_NOSPC;
    }
    this.#tree.removeEntry(from.dir, from.name);
    if (moving.kind === "dir") moving.parent = to.dir;
    if (replaced?.kind === "file") {
      this.#tree.release(replaced, openFiles.get(replaced) ?? 0);
    }
    const t = now();
    moving.times.ctim = from.dir.times.mtim = to.dir.times.mtim = t;
    return wasi.ERRNO_SUCCESS;
  }
}
