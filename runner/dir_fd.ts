/**
 * What Phase's directory descriptors (read-only host directories and the
 * scratch tree) share: the preopen name behind fd_prestat_get, and the
 * answers a directory gives to file calls (wasmtime's errno values: EISDIR
 * for reads, seeks, tell, allocate and resize; EBADF for writes).
 * @module
 */
import { Fd, wasi } from "@bjorn3/browser_wasi_shim";

/** A directory descriptor: a preopen when it has a name, else opened below one. */
export abstract class DirFd extends Fd {
  readonly #preopenName: string | null;

  /** `preopenName` is the guest path of a preopen, or null. */
  constructor(preopenName: string | null) {
    super();
    this.#preopenName = preopenName;
  }

  override fd_prestat_get() {
    if (this.#preopenName === null) {
      return { ret: wasi.ERRNO_BADF, prestat: null };
    }
    return {
      ret: wasi.ERRNO_SUCCESS,
      prestat: wasi.Prestat.dir(this.#preopenName),
    };
  }

  override fd_read() {
    return { ret: wasi.ERRNO_ISDIR, data: new Uint8Array() };
  }

  override fd_write() {
    return { ret: wasi.ERRNO_BADF, nwritten: 0 };
  }

  override fd_seek() {
    return { ret: wasi.ERRNO_ISDIR, offset: 0n };
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

  override fd_allocate(): number {
    return wasi.ERRNO_ISDIR;
  }

  override fd_filestat_set_size(): number {
    return wasi.ERRNO_ISDIR;
  }
}
