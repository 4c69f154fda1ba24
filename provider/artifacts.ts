/**
 * The artifacts directory (`<root>/<channel>/<arch>/<file>`): safe name
 * resolution (nothing outside the root is ever served, symlinks included)
 * and sha256 hashes that cannot go stale: a hash is kept for a file identity
 * (device, inode, size, mtime, ctime) and recomputed when any of them
 * changes. ctime is set by the kernel on every change and cannot be set
 * back (`cp -p`, `rsync -a` and `touch -r` restore mtime only), but Deno
 * reports it in whole seconds, so a hash read less than a second after the
 * file's last change is "racy" (as git calls it) and is recomputed on the
 * next use until the file is older than that.
 * @module
 */
import { createHash } from "node:crypto";
import { canonicalArch, type Channel } from "../schemas/mod.ts";

/** Names allowed for channels, arches and artifact files. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The channels a provider serves. */
export const CHANNELS: readonly Channel[] = ["stable", "testing", "nightly"];

/** The file name of a manifest inside a channel/arch directory. */
export const MANIFEST_FILE = "manifest.json";

/** A resolved artifact file. */
export interface ArtifactFile {
  /** File name. */
  name: string;
  /** Real path on the host. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time. */
  mtime: Date;
  /** Device, inode, size, mtime and ctime: changes whenever the bytes may have. */
  identity: string;
  /** The file's last change (ctime, else mtime), ms since the epoch, whole seconds. */
  changedMs: number;
}

/**
 * True when bytes read from `file` from `readStartMs` on are known to be
 * its bytes for as long as its identity stays the same: its last change
 * (whole seconds) lies before the read began.
 */
export function readAfterChange(
  file: ArtifactFile,
  readStartMs: number,
): boolean {
  return file.changedMs + 1000 <= readStartMs;
}

/** The identity of a file from its stat. */
export function fileIdentity(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}`;
}

/** The identity of the file at `path` now, or null when it is gone. */
export function currentIdentity(path: string): string | null {
  try {
    return fileIdentity(Deno.statSync(path));
  } catch {
    return null;
  }
}

/** A computed hash and whether it can be trusted for its identity. */
interface HashEntry {
  identity: string;
  sha256: string;
  /** False while the file's last change is too recent to tell apart. */
  settled: boolean;
}

/** Hash cache entries kept at most (least recently computed go first). */
const MAX_HASH_ENTRIES = 10_000;

/** Directory names an arch may be stored under, canonical name first. */
function archDirs(arch: string): string[] {
  const canonical = canonicalArch(arch);
  if (canonical === "x86_64") return ["x86_64", "amd64"];
  if (canonical === "aarch64") return ["aarch64", "arm64"];
  return [];
}

/** Streams a file through sha256; returns lowercase hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1024 * 1024);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/** Options for {@link ArtifactStore}. */
export interface ArtifactStoreOptions {
  /** The artifacts directory. */
  root: string;
  /** JSON file where computed hashes persist across restarts (optional). */
  hashCachePath?: string;
}

/** The artifacts directory of a provider. */
export class ArtifactStore {
  /** The artifacts directory as given. */
  readonly root: string;
  #realRoot: string | null = null;
  /** By real path. */
  #hashes = new Map<string, HashEntry>();
  #hashCachePath?: string;
  #pending = new Map<string, Promise<string>>();

  /** Opens the store; nothing is read until first use. */
  constructor(options: ArtifactStoreOptions) {
    this.root = options.root;
    this.#hashCachePath = options.hashCachePath;
    if (this.#hashCachePath) {
      try {
        const saved = JSON.parse(Deno.readTextFileSync(this.#hashCachePath));
        for (const [path, entry] of Object.entries(saved)) {
          if (
            Array.isArray(entry) && typeof entry[0] === "string" &&
            typeof entry[1] === "string" && currentIdentity(path) !== null
          ) {
            this.#hashes.set(path, {
              identity: entry[0],
              sha256: entry[1],
              settled: true,
            });
          }
        }
      } catch {
        // no cache yet, or unreadable: hashes are recomputed
      }
    }
  }

  #real(): string {
    this.#realRoot ??= Deno.realPathSync(this.root);
    return this.#realRoot;
  }

  /** True when a real path is inside the root. */
  #inside(real: string): boolean {
    const root = this.#real();
    return real === root || real.startsWith(root + "/");
  }

  /** The existing directory for a channel/arch (arch aliases tried), or null. */
  async directory(channel: string, arch: string): Promise<string | null> {
    if (!CHANNELS.includes(channel as Channel)) return null;
    let root: string;
    try {
      root = this.#real();
    } catch {
      return null;
    }
    for (const dir of archDirs(arch)) {
      const path = `${root}/${channel}/${dir}`;
      try {
        const real = await Deno.realPath(path);
        if (this.#inside(real) && (await Deno.stat(real)).isDirectory) {
          return real;
        }
      } catch {
        // try the alias
      }
    }
    return null;
  }

  /**
   * Resolves one artifact. Returns null for bad names, missing files,
   * non-regular files and anything whose real path leaves the root.
   */
  async resolve(
    channel: string,
    arch: string,
    name: string,
  ): Promise<ArtifactFile | null> {
    if (!NAME_PATTERN.test(name)) return null;
    const dir = await this.directory(channel, arch);
    return dir ? await this.#fileIn(dir, name) : null;
  }

  /** A regular file `name` in the resolved directory `dir`, inside the root. */
  async #fileIn(dir: string, name: string): Promise<ArtifactFile | null> {
    try {
      const real = await Deno.realPath(`${dir}/${name}`);
      if (!this.#inside(real)) return null;
      const info = await Deno.stat(real);
      if (!info.isFile) return null;
      return {
        name,
        path: real,
        size: info.size,
        mtime: info.mtime!,
        identity: fileIdentity(info),
        changedMs: (info.ctime ?? info.mtime)?.getTime() ?? Infinity,
      };
    } catch {
      return null;
    }
  }

  /** Artifact files of a channel/arch (manifest.json excluded), by name. */
  async list(channel: string, arch: string): Promise<ArtifactFile[]> {
    const dir = await this.directory(channel, arch);
    if (!dir) return [];
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name !== MANIFEST_FILE && NAME_PATTERN.test(entry.name)) {
        names.push(entry.name);
      }
    }
    names.sort();
    const files: ArtifactFile[] = [];
    for (const name of names) {
      const file = await this.#fileIn(dir, name);
      if (file) files.push(file);
    }
    return files;
  }

  /**
   * sha256 hex of an artifact, computed once per identity (again while the
   * identity is racy, see the module notes).
   */
  hash(file: ArtifactFile): Promise<string> {
    const known = this.#hashes.get(file.path);
    if (known?.identity === file.identity && known.settled) {
      return Promise.resolve(known.sha256);
    }
    const key = `${file.path}\0${file.identity}`;
    let pending = this.#pending.get(key);
    if (!pending) {
      const started = Date.now();
      pending = sha256File(file.path).then((sha256) => {
        this.#pending.delete(key);
        this.#remember(file, sha256, started);
        return sha256;
      }, (error) => {
        this.#pending.delete(key);
        throw error;
      });
      this.#pending.set(key, pending);
    }
    return pending;
  }

  /** True when the hash known for this identity needs no recomputation. */
  settled(file: ArtifactFile): boolean {
    const known = this.#hashes.get(file.path);
    return known?.identity === file.identity && known.settled;
  }

  #remember(file: ArtifactFile, sha256: string, started: number): void {
    // The identity must still be the one hashed, and the last change must
    // lie before the read began: a later change would carry a later ctime.
    if (currentIdentity(file.path) !== file.identity) return;
    const settled = readAfterChange(file, started);
    this.#hashes.delete(file.path);
    this.#hashes.set(file.path, { identity: file.identity, sha256, settled });
    if (!settled) return;
    for (const path of this.#hashes.keys()) {
      if (this.#hashes.size <= MAX_HASH_ENTRIES) break;
      this.#hashes.delete(path);
    }
    this.#saveHashes();
  }

  /** Persists settled hashes, dropping those of files that are gone. */
  #saveHashes(): void {
    const saved: Record<string, [string, string]> = {};
    for (const [path, entry] of this.#hashes) {
      if (currentIdentity(path) === null) {
        this.#hashes.delete(path);
      } else if (entry.settled) {
        saved[path] = [entry.identity, entry.sha256];
      }
    }
    if (!this.#hashCachePath) return;
    try {
      const tmp = `${this.#hashCachePath}.tmp`;
      Deno.writeTextFileSync(tmp, JSON.stringify(saved));
      Deno.renameSync(tmp, this.#hashCachePath);
    } catch {
      // a read-only data directory only costs recomputation after restart
    }
  }

  /** True when the root can be listed. */
  async readable(): Promise<boolean> {
    try {
      for await (const _ of Deno.readDir(this.root)) break;
      return true;
    } catch {
      return false;
    }
  }
}
