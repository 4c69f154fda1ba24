/**
 * Rights, in one place: what Phase's descriptors hold, and the rights each
 * preview1 call needs from the descriptors it is given. runner/wasi_env.ts
 * checks every path call against these before any tree sees it (a path
 * call on a descriptor that is not a directory is ENOTDIR, one whose
 * directory lacks a needed right ENOTCAPABLE), and descriptor calls once
 * the guest has narrowed a descriptor's rights.
 * @module
 */
import { wasi } from "@bjorn3/browser_wasi_shim";

const bit = (...rights: number[]) =>
  rights.reduce((all, r) => all | BigInt(r), 0n);

/** Rights of a file opened for reading and writing. */
export const FILE_RIGHTS: bigint = bit(
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

/** Rights of a file in a read-only directory. */
export const READ_FILE_RIGHTS: bigint = bit(
  wasi.RIGHTS_FD_READ,
  wasi.RIGHTS_FD_SEEK,
  wasi.RIGHTS_FD_TELL,
  wasi.RIGHTS_FD_FILESTAT_GET,
  wasi.RIGHTS_FD_ADVISE,
  wasi.RIGHTS_FD_FDSTAT_SET_FLAGS,
  wasi.RIGHTS_POLL_FD_READWRITE,
);

/**
 * Rights of a directory. Read-only directories hold them too and answer
 * changes with EROFS, as a read-only file system does.
 */
export const DIR_RIGHTS: bigint = bit(
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

/** The right each descriptor call needs once rights were narrowed. */
export const FD_CALL_RIGHTS: Readonly<Record<string, number>> = {
  fd_read: wasi.RIGHTS_FD_READ,
  fd_pread: wasi.RIGHTS_FD_READ,
  fd_write: wasi.RIGHTS_FD_WRITE,
  fd_pwrite: wasi.RIGHTS_FD_WRITE,
  fd_seek: wasi.RIGHTS_FD_SEEK,
  fd_tell: wasi.RIGHTS_FD_TELL,
  fd_readdir: wasi.RIGHTS_FD_READDIR,
  fd_filestat_set_size: wasi.RIGHTS_FD_FILESTAT_SET_SIZE,
  fd_allocate: wasi.RIGHTS_FD_ALLOCATE,
};

/** A directory descriptor argument of a path call and the rights it needs. */
export interface PathRightsNeed {
  /** Index of the descriptor among the call's arguments. */
  fdArg: number;
  /** Rights the descriptor must hold for this call with these arguments. */
  rights: (args: number[]) => bigint;
}

const fixed = (fdArg: number, right: number): PathRightsNeed => ({
  fdArg,
  rights: () => BigInt(right),
});

/**
 * Every path call's directory descriptors and the rights they need,
 * depending on the call's arguments (path_open: O_CREAT needs
 * PATH_CREATE_FILE, O_TRUNC PATH_FILESTAT_SET_SIZE).
 */
export const PATH_CALL_RIGHTS: Readonly<Record<string, PathRightsNeed[]>> = {
  path_open: [{
    fdArg: 0,
    rights: (args) => {
      const oflags = args[4];
      let need = BigInt(wasi.RIGHTS_PATH_OPEN);
      if (oflags & wasi.OFLAGS_CREAT) {
        need |= BigInt(wasi.RIGHTS_PATH_CREATE_FILE);
      }
      if (oflags & wasi.OFLAGS_TRUNC) {
        need |= BigInt(wasi.RIGHTS_PATH_FILESTAT_SET_SIZE);
      }
      return need;
    },
  }],
  path_create_directory: [fixed(0, wasi.RIGHTS_PATH_CREATE_DIRECTORY)],
  path_filestat_get: [fixed(0, wasi.RIGHTS_PATH_FILESTAT_GET)],
  path_filestat_set_times: [fixed(0, wasi.RIGHTS_PATH_FILESTAT_SET_TIMES)],
  path_link: [
    fixed(0, wasi.RIGHTS_PATH_LINK_SOURCE),
    fixed(4, wasi.RIGHTS_PATH_LINK_TARGET),
  ],
  path_readlink: [fixed(0, wasi.RIGHTS_PATH_READLINK)],
  path_remove_directory: [fixed(0, wasi.RIGHTS_PATH_REMOVE_DIRECTORY)],
  path_rename: [
    fixed(0, wasi.RIGHTS_PATH_RENAME_SOURCE),
    fixed(3, wasi.RIGHTS_PATH_RENAME_TARGET),
  ],
  path_symlink: [fixed(2, wasi.RIGHTS_PATH_SYMLINK)],
  path_unlink_file: [fixed(0, wasi.RIGHTS_PATH_UNLINK_FILE)],
};
