/**
 * The artifacts directory (`<root>/<channel>/<arch>/<file>`): safe name
 * resolution (nothing outside the root is ever served, symlinks included)
 * and sha256 hashes computed once per (path, size, mtime).
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
}

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
  readonly root: string;
  #realRoot: string | null = null;
  #hashes = new Map<string, string>();
  #hashCachePath?: string;
  #pending = new Map<string, Promise<string>>();

  /** Opens the store; nothing is read until first use. */
  constructor(options: ArtifactStoreOptions) {
    this.root = options.root;
    this.#hashCachePath = options.hashCachePath;
    if (this.#hashCachePath) {
      try {
        const saved = JSON.parse(Deno.readTextFileSync(this.#hashCachePath));
        for (const [k, v] of Object.entries(saved)) {
          if (typeof v === "string") this.#hashes.set(k, v);
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
      return { name, path: real, size: info.size, mtime: info.mtime! };
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

  /** sha256 hex of an artifact, computed once per (path, size, mtime). */
  hash(file: ArtifactFile): Promise<string> {
    const key = `${file.path}\0${file.size}\0${file.mtime.getTime()}`;
    const known = this.#hashes.get(key);
    if (known) return Promise.resolve(known);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = sha256File(file.path).then((hex) => {
        this.#hashes.set(key, hex);
        this.#pending.delete(key);
        this.#saveHashes();
        return hex;
      }, (error) => {
        this.#pending.delete(key);
        throw error;
      });
      this.#pending.set(key, pending);
    }
    return pending;
  }

  #saveHashes(): void {
    if (!this.#hashCachePath) return;
    try {
      const tmp = `${this.#hashCachePath}.tmp`;
      Deno.writeTextFileSync(
        tmp,
        JSON.stringify(Object.fromEntries(this.#hashes)),
      );
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
