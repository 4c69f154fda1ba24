/**
 * Host directories for the WASI shim: read-only by default, writable when
 * the user opts in (`--dir HOST:GUEST:rw`, local runs only).
 *
 * Paths are walked by runner/path_walk.ts one component at a time with
 * lstat, so `..` above the preopen, absolute paths and symbolic links
 * leading out are refused with ENOTCAPABLE before the host is touched.
 * Deno has no openat, so the walk and the operation cannot share a
 * directory handle; the window between them is closed this way:
 *
 * - every operation first changes the process's working directory to the
 *   directory holding the last name and asks the kernel where that is
 *   (getcwd reads the directory itself, not the path): outside the root,
 *   ENOTCAPABLE. The operation then names only that last component,
 *   relative to the working directory, so no directory component can be
 *   swapped under it;
 * - a last component that is opened is compared after opening (device and
 *   inode of the open file against the lstat before): a component swapped
 *   for a link in between is refused before a byte is read or written;
 *   files are created with O_EXCL (which never follows a link) and
 *   truncated only once the open file is verified;
 * - renames and links between two different directories name the source by
 *   its full path: a host process swapping a component of that path during
 *   the call could move or link a file from elsewhere; the result is
 *   verified and undone (docs/threat-model.md says what remains).
 *
 * Deno creates symbolic links only with unscoped read and write
 * permission, which a sandbox never holds: path_symlink in a writable host
 * directory answers ENOTSUP (the scratch tree has links).
 * @module
 */
import { Fd, wasi } from "@bjorn3/browser_wasi_shim";
import { DirFd } from "./dir_fd.ts";
import {
  type Entry,
  LOOKUP_SYMLINK_FOLLOW,
  walk,
  type WalkTree,
} from "./path_walk.ts";
import { DIR_RIGHTS, FILE_RIGHTS, READ_FILE_RIGHTS } from "./wasi_rights.ts";

const WRITE_RIGHTS = BigInt(
  wasi.RIGHTS_FD_WRITE | wasi.RIGHTS_FD_ALLOCATE |
    wasi.RIGHTS_FD_FILESTAT_SET_SIZE | wasi.RIGHTS_FD_DATASYNC,
);

function fileType(info: Deno.FileInfo): number {
  if (info.isSymlink) return wasi.FILETYPE_SYMBOLIC_LINK;
  if (info.isDirectory) return wasi.FILETYPE_DIRECTORY;
  if (info.isFile) return wasi.FILETYPE_REGULAR_FILE;
  return wasi.FILETYPE_UNKNOWN;
}

function toFilestat(info: Deno.FileInfo): wasi.Filestat {
  const stat = new wasi.Filestat(
    BigInt(info.ino ?? 0),
    fileType(info),
    BigInt(info.size),
  );
  stat.dev = BigInt(info.dev);
  stat.nlink = BigInt(info.nlink ?? 1);
  const ns = (d: Date | null) => d ? BigInt(d.getTime()) * 1_000_000n : 0n;
  stat.atim = ns(info.atime);
  stat.mtim = ns(info.mtime);
  stat.ctim = ns(info.ctime ?? info.mtime);
  return stat;
}

/** The errno of a host error. */
function errnoOf(error: unknown): number {
  if (error instanceof Deno.errors.NotFound) return wasi.ERRNO_NOENT;
  if (error instanceof Deno.errors.AlreadyExists) return wasi.ERRNO_EXIST;
  if (error instanceof Deno.errors.NotADirectory) return wasi.ERRNO_NOTDIR;
  if (error instanceof Deno.errors.IsADirectory) return wasi.ERRNO_ISDIR;
  if (error instanceof Deno.errors.FilesystemLoop) return wasi.ERRNO_LOOP;
  if (error instanceof Deno.errors.NotCapable) return wasi.ERRNO_NOTCAPABLE;
  if (error instanceof Deno.errors.PermissionDenied) return wasi.ERRNO_ACCES;
  const code = (error as { code?: string })?.code;
  if (code === "EXDEV") return wasi.ERRNO_XDEV;
  if (code === "EINVAL") return wasi.ERRNO_INVAL;
  if (code === "ENOSPC") return wasi.ERRNO_NOSPC;
  if (code === "EMLINK") return wasi.ERRNO_MLINK;
  if (code === "ENOTEMPTY") return wasi.ERRNO_NOTEMPTY;
  return wasi.ERRNO_IO;
}

const sameFile = (a: Deno.FileInfo, b: Deno.FileInfo) =>
  a.dev === b.dev && a.ino === b.ino;

/** Hooks a test uses to swap a component in the middle of a call. */
export interface HostFsHooks {
  /** Called after a path is walked, before the host operation runs. */
  afterWalk?: () => void;
}

/**
 * Test hooks for every host directory of this thread (never set outside
 * tests/host_fs_race_test.ts).
 */
export const hostFsHooks: HostFsHooks = {};

/** Thrown inside an operation when a verified name turned out to be another file. */
class Swapped extends Error {}

/** Shared state of one preopened root; directories are real host paths. */
class HostRoot implements WalkTree<string> {
  /** Real path of the root on the host. */
  readonly real: string;
  constructor(hostPath: string, readonly writable: boolean) {
    this.real = Deno.realPathSync(hostPath);
    if (!Deno.statSync(this.real).isDirectory) {
      throw new Error(`${hostPath} is not a directory`);
    }
  }

  /** True when a real host path lies inside the root. */
  contains(real: string): boolean {
    return real === this.real || real.startsWith(this.real + "/");
  }

  lookup(dir: string, name: string): Entry<string> | null | number {
    const path = `${dir}/${name}`;
    try {
      const info = Deno.lstatSync(path);
      if (info.isSymlink) {
        return { kind: "symlink", target: Deno.readLinkSync(path) };
      }
      if (info.isDirectory) return { kind: "dir", dir: path };
      return info.isFile ? { kind: "file" } : { kind: "other" };
    } catch (error) {
      return error instanceof Deno.errors.NotFound ? null : errnoOf(error);
    }
  }

  /**
   * Runs `op` with the working directory set to `dir`, once the kernel
   * confirms that directory is inside the root; `op` names only entries of
   * it. Host errors become errno values.
   */
  at<T, F>(dir: string, op: () => T, failed: (errno: number) => F): T | F {
    let before: string | null = null;
    try {
      before = Deno.cwd();
    } catch {
      // The sandbox may not read its starting folder: nothing to restore.
    }
    try {
      hostFsHooks.afterWalk?.();
      Deno.chdir(dir);
      if (!this.contains(Deno.cwd())) return failed(wasi.ERRNO_NOTCAPABLE);
      return op();
    } catch (error) {
      if (error instanceof Swapped) return failed(wasi.ERRNO_NOTCAPABLE);
      return failed(errnoOf(error));
    } finally {
      if (before !== null) {
        try {
          Deno.chdir(before);
        } catch {
          // gone: stay where we are
        }
      }
    }
  }

  /**
   * Opens `name` in the working directory (checked by {@link at}) and
   * verifies that what was opened is what lstat saw: never a link.
   */
  openVerified(name: string, options: Deno.OpenOptions): Deno.FsFile {
    const before = Deno.lstatSync(name);
    if (before.isSymlink) throw new Swapped();
    const file = Deno.openSync(name, options);
    if (!sameFile(before, file.statSync())) {
      file.close();
      throw new Swapped();
    }
    return file;
  }
}

/** An open host file. */
class HostFileFd extends Fd {
  #file: Deno.FsFile;
  #position = 0n;
  #flags: number;
  readonly #rights: bigint;

  constructor(file: Deno.FsFile, flags: number, rights: bigint) {
    super();
    this.#file = file;
    this.#flags = flags;
    this.#rights = rights;
  }

  get #writable(): boolean {
    return (this.#rights & BigInt(wasi.RIGHTS_FD_WRITE)) !== 0n;
  }

  #try<T, F>(op: () => T, failed: (errno: number) => F): T | F {
    try {
      return op();
    } catch (error) {
      return failed(errnoOf(error));
    }
  }

  override fd_close(): number {
    this.#file.close();
    return wasi.ERRNO_SUCCESS;
  }

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_REGULAR_FILE, this.#flags);
    fdstat.fs_rights_base = this.#rights;
    fdstat.fs_rights_inherited = 0n;
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_fdstat_set_flags(flags: number): number {
    if (flags & wasi.FDFLAGS_APPEND && !this.#writable) return wasi.ERRNO_ROFS;
    if (flags & ~0x1f) return wasi.ERRNO_INVAL;
    this.#flags = flags;
    return wasi.ERRNO_SUCCESS;
  }

  override fd_filestat_get() {
    return this.#try(
      () => ({
        ret: wasi.ERRNO_SUCCESS,
        filestat: toFilestat(this.#file.statSync()),
      }),
      (ret) => ({ ret, filestat: null }),
    );
  }

  override fd_pread(size: number, offset: bigint) {
    return this.#try(() => {
      const data = new Uint8Array(size);
      this.#file.seekSync(offset, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < size) {
        const n = this.#file.readSync(data.subarray(filled));
        if (n === null || n === 0) break;
        filled += n;
      }
      return { ret: wasi.ERRNO_SUCCESS, data: data.subarray(0, filled) };
    }, (ret) => ({ ret, data: new Uint8Array() }));
  }

  override fd_read(size: number) {
    const result = this.fd_pread(size, this.#position);
    this.#position += BigInt(result.data.length);
    return result;
  }

  override fd_seek(offset: bigint, whence: number) {
    let base: bigint;
    if (whence === wasi.WHENCE_SET) base = 0n;
    else if (whence === wasi.WHENCE_CUR) base = this.#position;
    else if (whence === wasi.WHENCE_END) {
      base = BigInt(this.#file.statSync().size);
    } else return { ret: wasi.ERRNO_INVAL, offset: 0n };
    const next = base + offset;
    if (next < 0n) return { ret: wasi.ERRNO_INVAL, offset: 0n };
    this.#position = next;
    return { ret: wasi.ERRNO_SUCCESS, offset: next };
  }

  override fd_tell() {
    return { ret: wasi.ERRNO_SUCCESS, offset: this.#position };
  }

  override fd_pwrite(data: Uint8Array, offset: bigint) {
    if (!this.#writable) return { ret: wasi.ERRNO_BADF, nwritten: 0 };
    return this.#try(() => {
      this.#file.seekSync(offset, Deno.SeekMode.Start);
      let written = 0;
      while (written < data.length) {
        written += this.#file.writeSync(data.subarray(written));
      }
      return { ret: wasi.ERRNO_SUCCESS, nwritten: written };
    }, (ret) => ({ ret, nwritten: 0 }));
  }

  override fd_write(data: Uint8Array) {
    if (this.#writable && this.#flags & wasi.FDFLAGS_APPEND) {
      this.#position = BigInt(this.#file.statSync().size);
    }
    const result = this.fd_pwrite(data, this.#position);
    this.#position += BigInt(result.nwritten);
    return result;
  }

  override fd_allocate(offset: bigint, length: bigint): number {
    if (!this.#writable) return wasi.ERRNO_BADF;
    return this.#try(() => {
      const end = Number(offset + length);
      if (end > this.#file.statSync().size) this.#file.truncateSync(end);
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }

  override fd_filestat_set_size(size: bigint): number {
    if (!this.#writable) return wasi.ERRNO_BADF;
    return this.#try(() => {
      this.#file.truncateSync(Number(size));
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }

  override fd_filestat_set_times(
    atim: bigint,
    mtim: bigint,
    flags: number,
  ): number {
    if (!this.#writable) return wasi.ERRNO_ROFS;
    return this.#try(() => setTimes(this.#file, atim, mtim, flags), (r) => r);
  }

  override fd_sync(): number {
    return this.#try(() => {
      if (this.#writable) this.#file.syncSync();
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }
}

/** Sets an open file's times from fstflags (atim 1, now 2, mtim 4, now 8). */
function setTimes(
  file: Deno.FsFile,
  atim: bigint,
  mtim: bigint,
  flags: number,
): number {
  if ((flags & 3) === 3 || (flags & 12) === 12 || flags & ~0xf) {
    return wasi.ERRNO_INVAL;
  }
  const info = file.statSync();
  const now = new Date();
  const pick = (value: bigint, set: number, setNow: number, old: Date | null) =>
    flags & setNow
      ? now
      : flags & set
      ? new Date(Number(value / 1_000_000n))
      : old ?? now;
  file.utimeSync(
    pick(atim, 1, 2, info.atime),
    pick(mtim, 4, 8, info.mtime),
  );
  return wasi.ERRNO_SUCCESS;
}

/** A host directory (a preopen or a directory under one). */
export class HostDirFd extends DirFd {
  #root: HostRoot;
  #path: string;
  #entries: wasi.Dirent[] | null = null;

  /**
   * Opens `hostPath` as a preopen named `guestPath`, writable when asked.
   * Throws when the host path is not a readable directory.
   */
  static preopen(
    hostPath: string,
    guestPath: string,
    writable = false,
  ): HostDirFd {
    const root = new HostRoot(hostPath, writable);
    return new HostDirFd(root, root.real, guestPath);
  }

  private constructor(
    root: HostRoot,
    path: string,
    preopenName: string | null,
  ) {
    super(preopenName);
    this.#root = root;
    this.#path = path;
  }

  /** True when this directory's root was opened writable. */
  get writable(): boolean {
    return this.#root.writable;
  }

  /** True when `other` is a directory under the same root. */
  sameRoot(other: unknown): other is HostDirFd {
    return other instanceof HostDirFd && other.#root === this.#root;
  }

  #walk(path: string, follow: boolean) {
    return walk(this.#root, this.#path, path, follow);
  }

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_DIRECTORY, 0);
    fdstat.fs_rights_base = DIR_RIGHTS;
    // Write rights are inheritable even when read-only, so that wasi-libc
    // asks for them on O_WRONLY/O_RDWR and path_open can answer EROFS.
    fdstat.fs_rights_inherited = DIR_RIGHTS | FILE_RIGHTS;
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_filestat_get() {
    return this.#root.at(
      this.#path,
      () => ({
        ret: wasi.ERRNO_SUCCESS,
        filestat: toFilestat(Deno.statSync(".")),
      }),
      (ret) => ({ ret, filestat: null }),
    );
  }

  override fd_filestat_set_times(
    atim: bigint,
    mtim: bigint,
    flags: number,
  ): number {
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    return this.#root.at(this.#path, () => {
      const dir = Deno.openSync(".", { read: true });
      try {
        return setTimes(dir, atim, mtim, flags);
      } finally {
        dir.close();
      }
    }, (ret) => ret);
  }

  override fd_readdir_single(cookie: bigint) {
    if (this.#entries === null || cookie === 0n) {
      const listed = this.#root.at(this.#path, () => {
        const names = [...Deno.readDirSync(".")].map((e) => e.name)
          .sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
        const self = Deno.statSync(".");
        const list: [string, number, bigint][] = [
          [".", wasi.FILETYPE_DIRECTORY, BigInt(self.ino ?? 0)],
          ["..", wasi.FILETYPE_DIRECTORY, 0n],
        ];
        for (const name of names) {
          const info = Deno.lstatSync(name);
          list.push([name, fileType(info), BigInt(info.ino ?? 0)]);
        }
        return list;
      }, (ret) => ret);
      if (typeof listed === "number") return { ret: listed, dirent: null };
      this.#entries = listed.map(([name, type, ino], i) =>
        new wasi.Dirent(BigInt(i + 1), ino, name, type)
      );
    }
    if (cookie >= BigInt(this.#entries.length)) {
      return { ret: wasi.ERRNO_SUCCESS, dirent: null };
    }
    return { ret: wasi.ERRNO_SUCCESS, dirent: this.#entries[Number(cookie)] };
  }

  override path_filestat_get(flags: number, path: string) {
    const at = this.#walk(path, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (at.dir === null) return { ret: at.ret, filestat: null };
    if (at.entry === null) return { ret: wasi.ERRNO_NOENT, filestat: null };
    return this.#root.at(at.dir, () => ({
      ret: wasi.ERRNO_SUCCESS,
      filestat: toFilestat(Deno.lstatSync(at.name)),
    }), (ret) => ({ ret, filestat: null }));
  }

  override path_open(
    dirflags: number,
    path: string,
    oflags: number,
    rightsBase: bigint,
    _rightsInheriting: bigint,
    fdFlags: number,
  ): { ret: number; fd_obj: Fd | null } {
    const creating = (oflags & wasi.OFLAGS_CREAT) !== 0;
    const exclusive = creating && (oflags & wasi.OFLAGS_EXCL) !== 0;
    const follow = (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0 && !exclusive;
    const at = this.#walk(path, follow);
    const none = (ret: number) => ({ ret, fd_obj: null });
    if (at.dir === null) return none(at.ret);
    const writing = (oflags & wasi.OFLAGS_TRUNC) !== 0 ||
      (rightsBase & WRITE_RIGHTS) !== 0n ||
      (fdFlags & wasi.FDFLAGS_APPEND) !== 0;
    if (at.entry === null) {
      if (!creating) return none(wasi.ERRNO_NOENT);
      if (!this.#root.writable) return none(wasi.ERRNO_ROFS);
      if (at.slash || oflags & wasi.OFLAGS_DIRECTORY) {
        return none(wasi.ERRNO_ISDIR);
      }
    } else if (exclusive) return none(wasi.ERRNO_EXIST);
    const entry = at.entry;
    if (entry?.kind === "symlink") return none(wasi.ERRNO_LOOP);
    // FIFOs, sockets and devices: opening one could block or act.
    if (entry?.kind === "other") return none(wasi.ERRNO_NOTSUP);
    if (entry?.kind === "dir") {
      if (writing) return none(wasi.ERRNO_ISDIR);
      return {
        ret: wasi.ERRNO_SUCCESS,
        fd_obj: new HostDirFd(
          this.#root,
          at.name === "." ? entry.dir : `${at.dir}/${at.name}`,
          null,
        ),
      };
    }
    if (entry && oflags & wasi.OFLAGS_DIRECTORY) {
      return none(wasi.ERRNO_NOTDIR);
    }
    if (writing && !this.#root.writable) return none(wasi.ERRNO_ROFS);
    const rights = this.#root.writable
      ? rightsBase & FILE_RIGHTS
      : READ_FILE_RIGHTS;
    const write = this.#root.writable && (writing || creating);
    return this.#root.at(at.dir, () => {
      let file: Deno.FsFile;
      if (entry === null) {
        try {
          // O_EXCL: never follows a link put there in the meantime.
          file = Deno.openSync(at.name, {
            read: true,
            write: true,
            createNew: true,
          });
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
          file = this.#root.openVerified(at.name, { read: true, write: true });
        }
      } else {
        file = this.#root.openVerified(at.name, { read: true, write });
      }
      // Truncated only now that the open file is known to be the right one.
      if (oflags & wasi.OFLAGS_TRUNC) file.truncateSync(0);
      return {
        ret: wasi.ERRNO_SUCCESS,
        fd_obj: new HostFileFd(
          file,
          fdFlags,
          write ? rights : rights & ~WRITE_RIGHTS,
        ) as Fd,
      };
    }, none);
  }

  override path_readlink(path: string) {
    const at = this.#walk(path, false);
    if (at.dir === null) return { ret: at.ret, data: null };
    if (at.entry === null) return { ret: wasi.ERRNO_NOENT, data: null };
    if (at.entry.kind !== "symlink") {
      return { ret: wasi.ERRNO_INVAL, data: null };
    }
    return this.#root.at(
      at.dir,
      () => ({ ret: wasi.ERRNO_SUCCESS, data: Deno.readLinkSync(at.name) }),
      (ret) => ({ ret, data: null }),
    );
  }

  override path_create_directory(path: string): number {
    const at = this.#walk(path, false);
    if (at.dir === null) return at.ret;
    if (at.entry !== null) return wasi.ERRNO_EXIST;
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    return this.#root.at(at.dir, () => {
      Deno.mkdirSync(at.name);
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }

  override path_unlink_file(path: string): number {
    const at = this.#walk(path, false);
    if (at.dir === null) return at.ret;
    if (at.entry === null) return wasi.ERRNO_NOENT;
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    if (at.entry.kind === "dir") return wasi.ERRNO_ISDIR;
    return this.#root.at(at.dir, () => {
      if (Deno.lstatSync(at.name).isDirectory) return wasi.ERRNO_ISDIR;
      Deno.removeSync(at.name);
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }

  override path_remove_directory(path: string): number {
    const at = this.#walk(path, false);
    if (at.dir === null) return at.ret;
    if (at.entry === null) return wasi.ERRNO_NOENT;
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    if (at.entry.kind !== "dir") return wasi.ERRNO_NOTDIR;
    if (at.name === ".") return wasi.ERRNO_INVAL;
    return this.#root.at(at.dir, () => {
      if (!Deno.lstatSync(at.name).isDirectory) return wasi.ERRNO_NOTDIR;
      Deno.removeSync(at.name);
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }

  override path_filestat_set_times(
    flags: number,
    path: string,
    atim: bigint,
    mtim: bigint,
    fstFlags: number,
  ): number {
    const at = this.#walk(path, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (at.dir === null) return at.ret;
    if (at.entry === null) return wasi.ERRNO_NOENT;
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    // A link's own times cannot be set with Deno's API.
    if (at.entry.kind === "symlink") return wasi.ERRNO_NOTSUP;
    return this.#root.at(at.dir, () => {
      const file = this.#root.openVerified(at.name, { read: true });
      try {
        return setTimes(file, atim, mtim, fstFlags);
      } finally {
        file.close();
      }
    }, (ret) => ret);
  }

  /** Creates a symbolic link: never possible with a sandbox's permissions. */
  symlink(target: string, path: string): number {
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    if (target.includes("\0")) return wasi.ERRNO_INVAL;
    const at = this.#walk(path, false);
    if (at.dir === null) return at.ret;
    if (at.entry !== null) return wasi.ERRNO_EXIST;
    return wasi.ERRNO_NOTSUP;
  }

  /**
   * Moves (`rename`) or hard-links (`link`) `oldPath` to `newPath` under
   * `target`, a directory of the same root.
   */
  move(
    kind: "rename" | "link",
    oldPath: string,
    follow: boolean,
    target: HostDirFd,
    newPath: string,
  ): number {
    if (!this.#root.writable) return wasi.ERRNO_ROFS;
    const from = this.#walk(oldPath, kind === "link" && follow);
    if (from.dir === null) return from.ret;
    if (from.entry === null) return wasi.ERRNO_NOENT;
    const to = target.#walk(newPath, false);
    if (to.dir === null) return to.ret;
    if (from.name === "." || to.name === ".") {
      return kind === "link" ? wasi.ERRNO_PERM : wasi.ERRNO_BUSY;
    }
    if (kind === "link") {
      if (from.entry.kind === "dir") return wasi.ERRNO_PERM;
      if (to.entry !== null) return wasi.ERRNO_EXIST;
      if (to.slash) return wasi.ERRNO_NOENT;
    } else if (from.entry.kind !== "dir" && to.slash && to.entry === null) {
      return wasi.ERRNO_NOTDIR;
    }
    const fromDir = from.dir;
    const source = (cwd: string) =>
      cwd === fromDir ? from.name : `${fromDir}/${from.name}`;
    // What the source is, looked at from its own (verified) directory.
    const before = this.#root.at(
      fromDir,
      () => Deno.lstatSync(from.name),
      (ret) => ret,
    );
    if (typeof before === "number") return before;
    return this.#root.at(to.dir, () => {
      const cwd = Deno.cwd();
      if (kind === "link") Deno.linkSync(source(cwd), to.name);
      else Deno.renameSync(source(cwd), to.name);
      // From another directory the source was named by a path that could
      // have been swapped: what arrived must be what was looked at.
      if (cwd !== fromDir && !sameFile(before, Deno.lstatSync(to.name))) {
        if (kind === "link") Deno.removeSync(to.name);
        else Deno.renameSync(to.name, source(cwd));
        throw new Swapped();
      }
      return wasi.ERRNO_SUCCESS;
    }, (ret) => ret);
  }
}
