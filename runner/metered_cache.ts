/**
 * Metered modules cached by the original module's sha256, so repeated jobs
 * pay instrumentation once: in memory always, and on disk in a directory
 * when this process may write there (never in Private mode).
 *
 * A file on disk is never trusted for what it says: it ends in a custom
 * section holding an HMAC-SHA256, keyed by the node's secret, over the
 * original's hash, the metering version and the metered bytes. A file that
 * was swapped, copied from elsewhere or damaged fails the check and is
 * rebuilt, so a receipt's `module_hash` always names the code that ran.
 * @module
 */
import { concatBytes } from "../schemas/encoding.ts";
import { instrumentFuel, METERING_VERSION } from "./metering.ts";
import { atomicWriteFile, removeStaleTemporaries } from "./atomic_file.ts";
import {
  encodeSection,
  Reader,
  readSections,
  SECTION,
  uleb,
} from "./wasm_binary.ts";

/** Name of the custom section that authenticates a cached file. */
const MAC_SECTION = "phase.cache-mac";
const MAC_BYTES = 32;

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
  /** Bytes of files kept in `dir`, least recently used first (default 512 MiB). */
  maxDiskBytes?: number;
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
  readonly #maxDiskBytes: number;
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
    this.#maxDiskBytes = options.maxDiskBytes ?? 512 * 1024 * 1024;
  }

  /** Per-cache secret for files when the caller gives none. */
  readonly #ownSecret = crypto.getRandomValues(new Uint8Array(32));
  #swept = false;

  /**
   * The metered form of `module`, whose sha256 reference is `moduleHash`
   * (`sha256:<hex>`). `secret` keys the check of files on disk (a node
   * passes its key's seed, so its files serve its later runs; without one,
   * files written by this cache serve only this cache). Throws ModuleError
   * for modules that cannot be metered.
   */
  async metered(
    module: Uint8Array,
    moduleHash: string,
    secret: Uint8Array = this.#ownSecret,
  ): Promise<CachedModule> {
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
    const mac = path ? await macKey(secret) : null;
    if (path && !this.#swept) {
      this.#swept = true;
      await removeStaleTemporaries(this.#dir!);
    }
    let bytes = path && mac ? await readIfSound(path, mac, key) : null;
    if (bytes) this.stats.diskHits++;
    else {
      bytes = instrumentFuel(module).bytes;
      this.stats.instrumented++;
      if (
        path && mac &&
        await writeIfAllowed(this.#dir!, path, await sealed(bytes, mac, key))
      ) {
        await pruneOldest(this.#dir!, this.#maxFiles, this.#maxDiskBytes);
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

/** The HMAC key for cache files, derived from a node secret. */
async function macKey(secret: Uint8Array): Promise<CryptoKey> {
  const label = new TextEncoder().encode("phase metered-module cache v1\n");
  const material = new Uint8Array(label.length + secret.length);
  material.set(label);
  material.set(secret, label.length);
  const raw = await crypto.subtle.digest("SHA-256", material);
  return await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/** What the MAC covers: the cache key (original hash, version) and bytes. */
function macInput(key: string, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = new TextEncoder().encode(`${key}\n`);
  const input = new Uint8Array(prefix.length + bytes.length);
  input.set(prefix);
  input.set(bytes, prefix.length);
  return input;
}

/** The metered bytes followed by their MAC section. */
async function sealed(
  bytes: Uint8Array,
  mac: CryptoKey,
  key: string,
): Promise<Uint8Array> {
  const tag = new Uint8Array(
    await crypto.subtle.sign("HMAC", mac, macInput(key, bytes)),
  );
  const name = new TextEncoder().encode(MAC_SECTION);
  const section = encodeSection(SECTION.custom, [
    Uint8Array.from(uleb(name.length)),
    name,
    tag,
  ]);
  return concatBytes([bytes, ...section]);
}

/**
 * A cached file's metered bytes, or null when it is missing, not a whole
 * module, or its MAC does not check out.
 */
async function readIfSound(
  path: string,
  mac: CryptoKey,
  key: string,
): Promise<Uint8Array | null> {
  try {
    const file = await Deno.readFile(path);
    const last = readSections(file).at(-1);
    if (!last || last.id !== SECTION.custom) return null;
    const r = new Reader(last.body);
    if (r.string() !== MAC_SECTION) return null;
    const tag = last.body.slice(r.offset);
    if (tag.length !== MAC_BYTES) return null;
    const bytes = file.subarray(0, file.length - last.raw.length);
    const valid = await crypto.subtle.verify(
      "HMAC",
      mac,
      tag,
      macInput(key, bytes),
    );
    if (!valid) return null;
    // Mark it used, so pruning removes the least recently used files.
    await Deno.utime(path, new Date(), new Date()).catch(() => {});
    return bytes;
  } catch {
    return null;
  }
}

/** Writes atomically; false when skipped for want of permission or failed. */
async function writeIfAllowed(
  dir: string,
  path: string,
  bytes: Uint8Array,
): Promise<boolean> {
  const state = Deno.permissions.querySync({ name: "write", path: dir }).state;
  if (state !== "granted") return false;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await atomicWriteFile(path, bytes);
    return true;
  } catch {
    // A cache that cannot be written only costs the next run a rebuild.
    return false;
  }
}

/** Removes the least recently used cached modules past `keep`. */
async function pruneOldest(
  dir: string,
  keep: number,
  keepBytes: number,
): Promise<void> {
  try {
    const files: { path: string; used: number; size: number }[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(".wasm")) continue;
      const path = `${dir}/${entry.name}`;
      const info = await Deno.stat(path);
      files.push({ path, used: info.mtime?.getTime() ?? 0, size: info.size });
    }
    // Newest first: keep files while both bounds allow, remove the rest.
    files.sort((a, b) => b.used - a.used);
    let bytes = 0;
    for (const [i, file] of files.entries()) {
      bytes += file.size;
      if (i < keep && bytes <= keepBytes) continue;
      await Deno.remove(file.path).catch(() => {});
    }
  } catch {
    // Pruning is housekeeping; the cache works without it.
  }
}
