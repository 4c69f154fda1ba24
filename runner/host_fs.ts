/**
 * A read-only view of a host directory for the WASI shim. Every path is
 * resolved inside the preopened root (absolute paths, `..` past the root and
 * symlinks leading out are refused with ENOTCAPABLE) and every mutation is
 * refused with EROFS.
 * @module
 */
import { Fd, wasi } from "@bjorn3/browser_wasi_shim";
import { DirFd } from "./dir_fd.ts";

const ROOT_FILETYPES = {
  file: wasi.FILETYPE_REGULAR_FILE,
  dir: wasi.FILETYPE_DIRECTORY,
  symlink: wasi.FILETYPE_SYMBOLIC_LINK,
};

/** lookupflags bit: follow a final symlink (WASI preview1). */
const LOOKUP_SYMLINK_FOLLOW = 1;

/** Rights a read-only file descriptor may hold. */
const READ_RIGHTS = BigInt(
  wasi.RIGHTS_FD_READ | wasi.RIGHTS_FD_SEEK | wasi.RIGHTS_FD_TELL |
    wasi.RIGHTS_FD_FILESTAT_GET | wasi.RIGHTS_FD_ADVISE |
    wasi.RIGHTS_FD_FDSTAT_SET_FLAGS | wasi.RIGHTS_POLL_FD_READWRITE,
);
/** Rights a read-only directory descriptor may hold. */
const DIR_RIGHTS = BigInt(
  wasi.RIGHTS_FD_READDIR | wasi.RIGHTS_PATH_OPEN |
    wasi.RIGHTS_PATH_FILESTAT_GET | wasi.RIGHTS_PATH_READLINK |
    wasi.RIGHTS_FD_FILESTAT_GET,
);
const WRITE_RIGHTS = BigInt(
  wasi.RIGHTS_FD_WRITE | wasi.RIGHTS_FD_ALLOCATE |
    wasi.RIGHTS_FD_FILESTAT_SET_SIZE | wasi.RIGHTS_FD_DATASYNC,
);

function fileType(info: Deno.FileInfo): number {
  if (info.isSymlink) return ROOT_FILETYPES.symlink;
  if (info.isDirectory) return ROOT_FILETYPES.dir;
  if (info.isFile) return ROOT_FILETYPES.file;
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

function errnoOf(error: unknown): number {
  if (error instanceof Deno.errors.NotFound) return wasi.ERRNO_NOENT;
  if (error instanceof Deno.errors.NotADirectory) return wasi.ERRNO_NOTDIR;
  if (error instanceof Deno.errors.IsADirectory) return wasi.ERRNO_ISDIR;
  if (error instanceof Deno.errors.PermissionDenied) return wasi.ERRNO_ACCES;
  if (error instanceof Deno.errors.FilesystemLoop) return wasi.ERRNO_LOOP;
  return wasi.ERRNO_IO;
}

/** A resolved guest path, or the errno that refused it. */
type Resolved = { ret: 0; host: string } | { ret: number; host: null };

/** Shared state of one preopened root. */
class HostRoot {
  /** Real path of the root on the host. */
  readonly real: string;
  constructor(hostPath: string) {
    this.real = Deno.realPathSync(hostPath);
    if (!Deno.statSync(this.real).isDirectory) {
      throw new Error(`${hostPath} is not a directory`);
    }
  }

  /** True when a real host path lies inside the root. */
  contains(real: string): boolean {
    return real === this.real || real.startsWith(this.real + "/");
  }

  /**
   * Resolves `path` relative to the directory `base` (a path inside the
   * root). With `follow`, a final symlink is followed.
   */
  resolve(base: string, path: string, follow: boolean): Resolved {
    if (path.includes("\0")) return { ret: wasi.ERRNO_INVAL, host: null };
    if (path.startsWith("/")) return { ret: wasi.ERRNO_NOTCAPABLE, host: null };
    const parts = base === this.real
      ? []
      : base.slice(this.real.length + 1).split("/");
    // `..` may not leave the directory the path is relative to (as cap-std).
    const floor = parts.length;
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (parts.length === floor) {
          return { ret: wasi.ERRNO_NOTCAPABLE, host: null };
        }
        parts.pop();
      } else parts.push(part);
    }
    const host = [this.real, ...parts].join("/");
    try {
      const parent = parts.length
        ? Deno.realPathSync([this.real, ...parts.slice(0, -1)].join("/"))
        : this.real;
      if (!this.contains(parent)) {
        return { ret: wasi.ERRNO_NOTCAPABLE, host: null };
      }
      const info = Deno.lstatSync(host);
      if (info.isSymlink && follow) {
        const target = Deno.realPathSync(host);
        if (!this.contains(target)) {
          return { ret: wasi.ERRNO_NOTCAPABLE, host: null };
        }
        return { ret: 0, host: target };
      }
      return { ret: 0, host };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return { ret: wasi.ERRNO_NOENT, host: null };
      }
      return { ret: errnoOf(error), host: null };
    }
  }
}

/** An open read-only host file. */
class HostFileFd extends Fd {
  #file: Deno.FsFile;
  #position = 0n;
  #flags: number;

  constructor(file: Deno.FsFile, flags: number) {
    super();
    this.#file = file;
    this.#flags = flags;
  }

  override fd_close(): number {
    this.#file.close();
    return wasi.ERRNO_SUCCESS;
  }

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_REGULAR_FILE, this.#flags);
    fdstat.fs_rights_base = READ_RIGHTS;
    fdstat.fs_rights_inherited = 0n;
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_fdstat_set_flags(flags: number): number {
    if (flags & wasi.FDFLAGS_APPEND) return wasi.ERRNO_ROFS;
    this.#flags = flags;
    return wasi.ERRNO_SUCCESS;
  }

  override fd_filestat_get() {
    return {
      ret: wasi.ERRNO_SUCCESS,
      filestat: toFilestat(this.#file.statSync()),
    };
  }

  override fd_pread(size: number, offset: bigint) {
    const data = new Uint8Array(size);
    this.#file.seekSync(offset, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < size) {
      const n = this.#file.readSync(data.subarray(filled));
      if (n === null || n === 0) break;
      filled += n;
    }
    return { ret: wasi.ERRNO_SUCCESS, data: data.subarray(0, filled) };
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

  override fd_write() {
    return { ret: wasi.ERRNO_BADF, nwritten: 0 };
  }

  override fd_pwrite() {
    return { ret: wasi.ERRNO_BADF, nwritten: 0 };
  }

  override fd_allocate(): number {
    return wasi.ERRNO_BADF;
  }

  override fd_filestat_set_size(): number {
    return wasi.ERRNO_BADF;
  }

  override fd_filestat_set_times(): number {
    return wasi.ERRNO_ROFS;
  }
}

/** An open read-only host directory (a preopen or a directory under one). */
export class HostDirFd extends DirFd {
  #root: HostRoot;
  #path: string;
  #entries: wasi.Dirent[] | null = null;

  /**
   * Opens `hostPath` as a preopen named `guestPath`. Throws when the host
   * path is not a readable directory.
   */
  static preopen(hostPath: string, guestPath: string): HostDirFd {
    const root = new HostRoot(hostPath);
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

  override fd_fdstat_get() {
    const fdstat = new wasi.Fdstat(wasi.FILETYPE_DIRECTORY, 0);
    fdstat.fs_rights_base = DIR_RIGHTS;
    // Write rights are advertised as inheritable so that wasi-libc asks for
    // them on O_WRONLY/O_RDWR, and path_open can answer EROFS, not a later EBADF.
    fdstat.fs_rights_inherited = DIR_RIGHTS | READ_RIGHTS | WRITE_RIGHTS;
    return { ret: wasi.ERRNO_SUCCESS, fdstat };
  }

  override fd_filestat_get() {
    return {
      ret: wasi.ERRNO_SUCCESS,
      filestat: toFilestat(Deno.statSync(this.#path)),
    };
  }

  override fd_readdir_single(cookie: bigint) {
    if (this.#entries === null) {
      const names = [...Deno.readDirSync(this.#path)]
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      const self = Deno.statSync(this.#path);
      const list: [string, number, bigint][] = [
        [".", wasi.FILETYPE_DIRECTORY, BigInt(self.ino ?? 0)],
        ["..", wasi.FILETYPE_DIRECTORY, 0n],
      ];
      for (const entry of names) {
        const info = Deno.lstatSync(`${this.#path}/${entry.name}`);
        list.push([entry.name, fileType(info), BigInt(info.ino ?? 0)]);
      }
      this.#entries = list.map(([name, type, ino], i) =>
        new wasi.Dirent(BigInt(i + 1), ino, name, type)
      );
    }
    if (cookie >= BigInt(this.#entries.length)) {
      return { ret: wasi.ERRNO_SUCCESS, dirent: null };
    }
    return { ret: wasi.ERRNO_SUCCESS, dirent: this.#entries[Number(cookie)] };
  }

  override path_filestat_get(flags: number, path: string) {
    const follow = (flags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const { ret, host } = this.#root.resolve(this.#path, path, follow);
    if (host === null) return { ret, filestat: null };
    try {
      const info = follow ? Deno.statSync(host) : Deno.lstatSync(host);
      return { ret: wasi.ERRNO_SUCCESS, filestat: toFilestat(info) };
    } catch (error) {
      return { ret: errnoOf(error), filestat: null };
    }
  }

  override path_open(
    dirflags: number,
    path: string,
    oflags: number,
    rightsBase: bigint,
    _rightsInheriting: bigint,
    fdFlags: number,
  ) {
    const follow = (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const { ret, host } = this.#root.resolve(this.#path, path, follow);
    if (host === null) {
      const creating = ret === wasi.ERRNO_NOENT &&
        (oflags & wasi.OFLAGS_CREAT) !== 0;
      return { ret: creating ? wasi.ERRNO_ROFS : ret, fd_obj: null };
    }
    if (
      (oflags & (wasi.OFLAGS_TRUNC)) !== 0 ||
      (oflags & wasi.OFLAGS_CREAT && oflags & wasi.OFLAGS_EXCL) ||
      (rightsBase & WRITE_RIGHTS) !== 0n ||
      (fdFlags & wasi.FDFLAGS_APPEND) !== 0
    ) return { ret: wasi.ERRNO_ROFS, fd_obj: null };
    try {
      const info = Deno.lstatSync(host);
      if (info.isSymlink) return { ret: wasi.ERRNO_LOOP, fd_obj: null };
      if (info.isDirectory) {
        return {
          ret: wasi.ERRNO_SUCCESS,
          fd_obj: new HostDirFd(this.#root, host, null),
        };
      }
      if (oflags & wasi.OFLAGS_DIRECTORY) {
        return { ret: wasi.ERRNO_NOTDIR, fd_obj: null };
      }
      const file = Deno.openSync(host, { read: true });
      return { ret: wasi.ERRNO_SUCCESS, fd_obj: new HostFileFd(file, fdFlags) };
    } catch (error) {
      return { ret: errnoOf(error), fd_obj: null };
    }
  }

  override path_readlink(path: string) {
    const { ret, host } = this.#root.resolve(this.#path, path, false);
    if (host === null) return { ret, data: null };
    try {
      if (!Deno.lstatSync(host).isSymlink) {
        return { ret: wasi.ERRNO_INVAL, data: null };
      }
      return { ret: wasi.ERRNO_SUCCESS, data: Deno.readLinkSync(host) };
    } catch (error) {
      return { ret: errnoOf(error), data: null };
    }
  }

  override path_lookup(path: string, dirflags: number) {
    const follow = (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0;
    const { ret } = this.#root.resolve(this.#path, path, follow);
    // Links and renames out of a read-only tree would need the inode; refuse.
    return { ret: ret === 0 ? wasi.ERRNO_ROFS : ret, inode_obj: null };
  }

  override path_create_directory(): number {
    return wasi.ERRNO_ROFS;
  }

  override path_link(): number {
    return wasi.ERRNO_ROFS;
  }

  override path_unlink() {
    return { ret: wasi.ERRNO_ROFS, inode_obj: null };
  }

  override path_unlink_file(): number {
    return wasi.ERRNO_ROFS;
  }

  override path_remove_directory(): number {
    return wasi.ERRNO_ROFS;
  }

  override path_filestat_set_times(): number {
    return wasi.ERRNO_ROFS;
  }

  override fd_filestat_set_times(): number {
    return wasi.ERRNO_ROFS;
  }

  override fd_filestat_set_size(): number {
    return wasi.ERRNO_BADF;
  }
}
