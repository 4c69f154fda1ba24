/**
 * Path resolution beneath a directory, shared by the scratch tree and host
 * directories so that both follow the same rules (those of wasmtime's
 * cap-std): a path is walked one component at a time from the directory it
 * is relative to; absolute paths, `..` above that directory and symbolic
 * links whose target is absolute or climbs above it are refused with
 * ENOTCAPABLE; links in the middle of a path are always followed, a final
 * link only when asked (SYMLINK_FOLLOW) or when the path ends with `/`;
 * more than {@link MAX_SYMLINK_EXPANSIONS} links in one walk is ELOOP.
 * @module
 */
import { wasi } from "@bjorn3/browser_wasi_shim";

/** Links followed in one walk before ELOOP (Linux's and cap-std's 40). */
export const MAX_SYMLINK_EXPANSIONS = 40;

/** lookupflags bit: follow a final symbolic link (WASI preview1). */
export const LOOKUP_SYMLINK_FOLLOW = 1;

/** What one name in a directory is. */
export type Entry<D> =
  | { kind: "dir"; dir: D }
  | { kind: "file" }
  | { kind: "symlink"; target: string }
  | { kind: "other" };

/** How a walk looks names up: one directory at a time. */
export interface WalkTree<D> {
  /** The entry `name` in `dir`, null when missing, or an errno. */
  lookup(dir: D, name: string): Entry<D> | null | number;
}

/** Where a walk ended: the directory holding the last name, and that name. */
export type Walked<D> =
  | {
    ret: 0;
    /** Directory holding `name` (or the directory itself for `.`). */
    dir: D;
    /** The last component; "." when the path names a directory itself. */
    name: string;
    /** The last entry, null when it does not exist. */
    entry: Entry<D> | null;
    /** The path ended with `/` (its last component must be a directory). */
    slash: boolean;
  }
  | { ret: number; dir: null; name: ""; entry: null; slash: false };

function fail<D>(ret: number): Walked<D> {
  return { ret, dir: null, name: "", entry: null, slash: false };
}

/**
 * Walks `path` from `start`. With `follow`, a final symbolic link is
 * followed (a trailing `/` follows it too); a missing last name is not an
 * error (its entry is null) so that callers can create it.
 */
export function walk<D>(
  tree: WalkTree<D>,
  start: D,
  path: string,
  follow: boolean,
): Walked<D> {
  if (path.includes("\0")) return fail(wasi.ERRNO_INVAL);
  if (path === "") return fail(wasi.ERRNO_NOENT);
  if (path.startsWith("/")) return fail(wasi.ERRNO_NOTCAPABLE);
  const stack: D[] = [start];
  // Components still to walk, last first (so pop gives the next one).
  const todo = path.split("/").reverse();
  let expansions = 0;
  for (;;) {
    const part = todo.pop()!;
    const last = todo.every((p) => p === "" || p === ".") &&
      part !== "" && part !== ".";
    // `name/` and `name/.` need `name` to be a directory.
    const slash = last && todo.length > 0;
    const dir = stack.at(-1)!;
    if (part === "" || part === ".") {
      if (todo.length === 0) {
        return {
          ret: 0,
          dir,
          name: ".",
          entry: { kind: "dir", dir },
          slash: path.endsWith("/"),
        };
      }
      continue;
    }
    if (part === "..") {
      if (stack.length === 1) return fail(wasi.ERRNO_NOTCAPABLE);
      stack.pop();
      if (last) {
        const up = stack.at(-1)!;
        return {
          ret: 0,
          dir: up,
          name: ".",
          entry: { kind: "dir", dir: up },
          slash,
        };
      }
      continue;
    }
    const entry = tree.lookup(dir, part);
    if (typeof entry === "number") return fail(entry);
    if (entry === null) {
      if (last) return { ret: 0, dir, name: part, entry: null, slash };
      return fail(wasi.ERRNO_NOENT);
    }
    if (entry.kind === "symlink" && (!last || follow || slash)) {
      if (++expansions > MAX_SYMLINK_EXPANSIONS) return fail(wasi.ERRNO_LOOP);
      if (entry.target.startsWith("/")) return fail(wasi.ERRNO_NOTCAPABLE);
      if (entry.target === "") return fail(wasi.ERRNO_NOENT);
      // The target replaces this component (a link to `x/` adds a slash).
      todo.push(...entry.target.split("/").reverse());
      continue;
    }
    if (last) {
      if (slash && entry.kind !== "dir") return fail(wasi.ERRNO_NOTDIR);
      return { ret: 0, dir, name: part, entry, slash };
    }
    if (entry.kind !== "dir") return fail(wasi.ERRNO_NOTDIR);
    stack.push(entry.dir);
  }
}
