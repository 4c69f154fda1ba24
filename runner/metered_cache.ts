/**
 * Metered modules cached by the original module's sha256, so repeated jobs
 * pay instrumentation once: in memory always, and on disk in a directory
 * when this process may write there (never in Private mode).
 * @module
 */
import { instrumentFuel, METERING_VERSION } from "./metering.ts";
import { readSections } from "./wasm_binary.ts";

/** How to cache metered modules. */
export interface MeteredModuleCacheOptions {
  /** Directory for instrumented modules; none keeps them in memory only. */
  dir?: string | null;
  /** Modules kept in memory (default 64). */
  maxEntries?: number;
  /** Bytes of metered modules kept in memory (default 256 MiB). */
  maxBytes?: number;
  /** Files kept in `dir`; the least recently used go first (default 256). */
  maxFiles?: number;
}

/** A metered module and the key that names its bytes. */
export interface CachedModule {
  /** Instrumented bytes. */
  bytes: Uint8Array;
  /** Names these bytes (original hash and instrumentation version). */
  key: string;
}

/** Where a cached module came from, for tests and benchmarks. */
export interface MeteredModuleCacheStats {
  /** Served from memory. */
  memoryHits: number;
  /** Read back from disk. */
  diskHits: number;
  /** Instrumented now. */
  instrumented: number;
}

/** Metered modules by the sha256 of the original module. */
export class MeteredModuleCache {
  readonly #dir: string | null;
  readonly #max: number;
  readonly #maxBytes: number;
  readonly #maxFiles: number;
  #bytes = 0;
  readonly #entries = new Map<string, CachedModule>();
  /** Counts of where modules came from. */
  readonly stats: MeteredModuleCacheStats = {
    memoryHits: 0,
    diskHits: 0,
    instrumented: 0,
  };

  /** Creates an empty cache. */
  constructor(options: MeteredModuleCacheOptions = {}) {
    this.#dir = options.dir ?? null;
    this.#max = options.maxEntries ?? 64;
    this.#maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    this.#maxFiles = options.maxFiles ?? 256;
  }

  /**
   * The metered form of `module`, whose sha256 reference is `moduleHash`
   * (`sha256:<hex>`). Throws ModuleError for modules that cannot be metered.
   */
  async metered(module: Uint8Array, moduleHash: string): Promise<CachedModule> {
    const key = `${moduleHash}+fuel${METERING_VERSION}`;
    const hit = this.#entries.get(key);
    if (hit) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      this.stats.memoryHits++;
      return hit;
    }
    const path = this.#dir &&
      `${this.#dir}/${
        moduleHash.replace("sha256:", "")
      }.fuel${METERING_VERSION}.wasm`;
    let bytes = path ? await readIfSound(path) : null;
    if (bytes) this.stats.diskHits++;
    else {
      bytes = instrumentFuel(module).bytes;
      this.stats.instrumented++;
      if (path && await writeIfAllowed(this.#dir!, path, bytes)) {
        await pruneOldest(this.#dir!, this.#maxFiles);
      }
    }
    const entry = { bytes, key };
    this.#entries.set(key, entry);
    this.#bytes += bytes.length;
    // Least recently used first; the entry just added always stays.
    for (const [oldKey, old] of this.#entries) {
      if (this.#entries.size <= this.#max && this.#bytes <= this.#maxBytes) {
        break;
      }
      if (oldKey === key) break;
      this.#entries.delete(oldKey);
      this.#bytes -= old.bytes.length;
    }
    return entry;
  }
}

/** A cached file, or null when it is missing or not a whole module. */
async function readIfSound(path: string): Promise<Uint8Array | null> {
  try {
    const bytes = await Deno.readFile(path);
    readSections(bytes);
    // Mark it used, so pruning removes the least recently used files.
    await Deno.utime(path, new Date(), new Date()).catch(() => {});
    return bytes;
  } catch {
    return null;
  }
}

/**
 * Writes atomically (temporary file + rename); false when skipped for want
 * of permission or failed.
 */
async function writeIfAllowed(
  dir: string,
  path: string,
  bytes: Uint8Array,
): Promise<boolean> {
  const state = Deno.permissions.querySync({ name: "write", path: dir }).state;
  if (state !== "granted") return false;
  const temporary = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
    return true;
  } catch {
    // A cache that cannot be written only costs the next run a rebuild.
    await Deno.remove(temporary).catch(() => {});
    return false;
  }
}

/** Removes the least recently used cached modules past `keep`. */
async function pruneOldest(dir: string, keep: number): Promise<void> {
  try {
    const files: { path: string; used: number }[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(".wasm")) continue;
      const path = `${dir}/${entry.name}`;
      files.push({ path, used: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
    }
    files.sort((a, b) => a.used - b.used);
    for (const file of files.slice(0, Math.max(0, files.length - keep))) {
      await Deno.remove(file.path).catch(() => {});
    }
  } catch {
    // Pruning is housekeeping; the cache works without it.
  }
}
