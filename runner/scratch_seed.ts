/**
 * The seed of a scratch directory: a bounded list of files, directories
 * and symbolic links the guest's writable in-memory tree starts with. A
 * local run reads it from a host directory ({@link readSeedDir}); a remote
 * job sends it in its request (node/job_input.ts). Either way it is checked
 * here ({@link seedProblem}) and priced against the job's memory budget
 * ({@link seedCost}) before anything runs.
 * @module
 */

/** One entry of a seed, at a path relative to the scratch directory. */
export interface SeedEntry {
  /** `a/b.txt`: relative, no `.`/`..`/empty components. */
  path: string;
  /** What the entry is. */
  kind: "file" | "dir" | "symlink";
  /** A file's bytes. */
  data?: Uint8Array;
  /** A link's target (resolved inside the scratch tree only). */
  target?: string;
}

/** The most entries a seed may hold. */
export const MAX_SEED_ENTRIES = 4096;
/** The longest path or link target in a seed, in characters. */
export const MAX_SEED_PATH = 1024;
/** The longest component of a seed path, in characters. */
export const MAX_SEED_NAME = 255;

/**
 * Host bytes charged per tree entry besides its name and data: the map
 * slot, the node object and its times (measured ~300 bytes in V8, rounded
 * up). The scratch tree charges the same.
 */
export const SCRATCH_ENTRY_BYTES = 512;

/** Bytes charged for a name or target (a JS string holds up to 2 per char). */
export const stringBytes = (text: string): number => 2 * text.length;

/** Why `path` cannot name a seed entry, or null when it can. */
export function seedPathProblem(path: string): string | null {
  if (path.length === 0 || path.length > MAX_SEED_PATH) {
    return `a seed path must have 1 to ${MAX_SEED_PATH} characters`;
  }
  if (path.includes("\0")) return "a seed path may not hold NUL";
  if (path.startsWith("/")) return "a seed path must be relative";
  for (const part of path.split("/")) {
    if (part === "" || part === "." || part === "..") {
      return `a seed path may not hold empty, . or .. components: ${
        JSON.stringify(path.slice(0, 64))
      }`;
    }
    if (part.length > MAX_SEED_NAME) {
      return `a seed path component is longer than ${MAX_SEED_NAME} characters`;
    }
  }
  return null;
}

/** A node of the tree a seed describes. */
interface SeedNode {
  /** What the seed lists here; none for a directory it only implies. */
  kind?: SeedEntry["kind"];
  /** The first listed path at or below this node, for messages. */
  via: string;
  children: Map<string, SeedNode>;
}

const quoted = (path: string) => JSON.stringify(path.slice(0, 64));

/**
 * The tree `entries` describe, built one path component at a time, so that
 * judging a seed costs time in proportion to its size whatever its depth
 * (a stranger's seed is judged on the node's event loop); or why it is not
 * a usable seed.
 */
function seedTree(entries: SeedEntry[]): SeedNode | string {
  if (entries.length > MAX_SEED_ENTRIES) {
    return `a seed holds at most ${MAX_SEED_ENTRIES} entries, got ${entries.length}`;
  }
  const root: SeedNode = { via: "", children: new Map() };
  for (const entry of entries) {
    const problem = seedPathProblem(entry.path);
    if (problem) return problem;
    if (entry.kind === "symlink") {
      const target = entry.target ?? "";
      if (
        target.length === 0 || target.length > MAX_SEED_PATH ||
        target.includes("\0")
      ) {
        return `a seed link target must have 1 to ${MAX_SEED_PATH} characters and no NUL`;
      }
    }
    let node = root;
    for (const part of entry.path.split("/")) {
      if (node.kind !== undefined && node.kind !== "dir") {
        return `the seed path ${
          quoted(entry.path)
        } goes through a ${node.kind}`;
      }
      let child = node.children.get(part);
      if (!child) {
        child = { via: entry.path, children: new Map() };
        node.children.set(part, child);
      }
      node = child;
    }
    if (node.kind !== undefined) {
      return `the seed names ${quoted(entry.path)} twice`;
    }
    if (entry.kind !== "dir" && node.children.size > 0) {
      return `the seed path ${quoted(node.via)} goes through a ${entry.kind}`;
    }
    node.kind = entry.kind;
  }
  return root;
}

/**
 * Why `entries` is not a usable seed (too many entries, a bad path, a
 * duplicate, a path through a file or link, a bad link target), or null.
 */
export function seedProblem(entries: SeedEntry[]): string | null {
  const tree = seedTree(entries);
  return typeof tree === "string" ? tree : null;
}

/**
 * What a usable seed costs the job's memory budget once in the tree: its
 * data, names, targets and entries (directories it implies included).
 */
export function seedCost(entries: SeedEntry[]): number {
  let bytes = 0;
  for (const entry of entries) {
    bytes += SCRATCH_ENTRY_BYTES + stringBytes(entry.path.split("/").at(-1)!) +
      (entry.data?.length ?? 0) + stringBytes(entry.target ?? "");
  }
  const tree = seedTree(entries);
  if (typeof tree === "string") return bytes;
  const pending = [...tree.children];
  while (pending.length > 0) {
    const [name, node] = pending.pop()!;
    if (node.kind === undefined) {
      bytes += SCRATCH_ENTRY_BYTES + stringBytes(name);
    }
    pending.push(...node.children);
  }
  return bytes;
}

/** A seed refused while it is read; the message is one line. */
export class SeedError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SeedError";
  }
}

/**
 * Reads host directory `host` into a seed: files, directories and links
 * (kept as links, their targets as written), never following a link; other
 * kinds of file are refused. Stops with {@link SeedError} past `maxBytes`
 * of cost ({@link seedCost}) or {@link MAX_SEED_ENTRIES} entries.
 *
 * Another process may change the folder while it is read. Deno has no
 * `openat`, so each directory is entered (`chdir`) and the working
 * directory checked to be the one expected before its names are read, one
 * component at a time; each file is opened and its descriptor checked to be
 * the regular file that was listed before a byte is read. A folder or file
 * swapped for a link is refused, never followed. Synchronous on purpose:
 * the working directory is the process's, and nothing else may run while
 * it is moved. (A FIFO swapped in for a listed file makes the open wait;
 * Ctrl-C ends it.)
 */
export function readSeedDir(host: string, maxBytes: number): SeedEntry[] {
  const entries: SeedEntry[] = [];
  let cost = 0;
  const changed = (what: string) =>
    new SeedError(`${what} changed while it was read; try again`);
  const enter = (real: string) => {
    Deno.chdir(real);
    if (Deno.cwd() !== real) throw changed(real);
  };
  const visit = (real: string, prefix: string) => {
    enter(real);
    const names: string[] = [];
    for (const item of Deno.readDirSync(".")) names.push(item.name);
    names.sort();
    for (const name of names) {
      const path = prefix ? `${prefix}/${name}` : name;
      const hostPath = `${real}/${name}`;
      if (entries.length >= MAX_SEED_ENTRIES) {
        throw new SeedError(
          `${host} holds more than ${MAX_SEED_ENTRIES} entries`,
        );
      }
      const problem = seedPathProblem(path);
      if (problem) throw new SeedError(`${hostPath}: ${problem}`);
      const info = Deno.lstatSync(name);
      let entry: SeedEntry;
      if (info.isSymlink) {
        entry = { path, kind: "symlink", target: Deno.readLinkSync(name) };
      } else if (info.isDirectory) {
        entry = { path, kind: "dir" };
      } else if (info.isFile) {
        entry = { path, kind: "file", data: readListedFile(name, info) };
      } else {
        throw new SeedError(`${hostPath} is not a file, directory or link`);
      }
      cost += seedCost([entry]);
      if (cost > maxBytes) {
        throw new SeedError(
          `${host} does not fit the job's memory budget of ${maxBytes} bytes`,
        );
      }
      entries.push(entry);
      if (entry.kind === "dir") {
        visit(hostPath, path);
        enter(real);
      }
    }
  };
  const before = Deno.cwd();
  try {
    visit(Deno.realPathSync(host), "");
  } finally {
    Deno.chdir(before);
  }
  return entries;

  /** The bytes of `name`, if it is still the regular file `listed`. */
  function readListedFile(name: string, listed: Deno.FileInfo): Uint8Array {
    if (cost + listed.size > maxBytes) {
      throw new SeedError(
        `${host} does not fit the job's memory budget of ${maxBytes} bytes`,
      );
    }
    using file = Deno.openSync(name, { read: true });
    const opened = file.statSync();
    if (
      !opened.isFile || opened.ino !== listed.ino || opened.dev !== listed.dev
    ) {
      throw changed(`${Deno.cwd()}/${name}`);
    }
    // No more than was listed: a file that grows meanwhile is cut there.
    const data = new Uint8Array(listed.size);
    let filled = 0;
    while (filled < data.length) {
      const n = file.readSync(data.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return data.subarray(0, filled);
  }
}

/** A seed as a frame carries it: a JSON list and one blob of file bytes. */
export interface PackedSeed {
  /** Entries without their bytes; files give their `size`. */
  list: {
    path: string;
    kind: SeedEntry["kind"];
    size?: number;
    target?: string;
  }[];
  /** Every file's bytes, in list order. */
  blob: Uint8Array;
}

/** Packs a seed for a frame. */
export function packSeed(entries: SeedEntry[]): PackedSeed {
  const total = entries.reduce((n, e) => n + (e.data?.length ?? 0), 0);
  const blob = new Uint8Array(total);
  let at = 0;
  const list = entries.map((e) => {
    if (e.kind === "file") {
      const data = e.data ?? new Uint8Array();
      blob.set(data, at);
      at += data.length;
      return { path: e.path, kind: e.kind, size: data.length };
    }
    return e.kind === "symlink"
      ? { path: e.path, kind: e.kind, target: e.target }
      : { path: e.path, kind: e.kind };
  });
  return { list, blob };
}

/** Unpacks a seed from a frame; file bytes are views of `blob`, not copies. */
export function unpackSeed(packed: PackedSeed): SeedEntry[] {
  let at = 0;
  return packed.list.map((e) => {
    if (e.kind !== "file") return { ...e };
    const data = packed.blob.subarray(at, at + (e.size ?? 0));
    at += data.length;
    return { path: e.path, kind: e.kind, data };
  });
}
