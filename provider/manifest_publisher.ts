/**
 * Boot manifests as a provider serves them: a manifest signed offline
 * (`<channel>/<arch>/manifest.json`) is served byte for byte; otherwise one
 * is generated from the artifacts, signed by the provider key, and
 * regenerated when the artifacts change, with a manifest_version that grows
 * only then. The last signed manifest and what it was made from persist in
 * the data directory, so a restart with unchanged artifacts serves the same
 * manifest (same version) instead of a new one.
 * @module
 */
import {
  type BootArtifact,
  type BootManifest,
  canonicalArch,
  canonicalBytes,
  type Channel,
  type NodeKey,
  sha256Hex,
  signManifest,
  validateBootManifest,
} from "../schemas/mod.ts";
import {
  type ArtifactFile,
  type ArtifactStore,
  MANIFEST_FILE,
} from "./artifacts.ts";

/** Default validity of generated manifests. */
export const DEFAULT_VALIDITY_DAYS = 7;

/** Maps a file name to the role a boot manifest gives it. */
export function artifactRole(filename: string): string {
  if (/^(vmlinuz|vmlinux|bzImage|Image|kernel)([._-]|$)/.test(filename)) {
    return "kernel";
  }
  if (/^(initramfs|initrd)([._-]|$)/.test(filename)) return "initramfs";
  if (/^rootfs([._-]|$)/.test(filename)) return "rootfs";
  if (/^dtbs?([._-]|$)/.test(filename)) return "dtbs";
  return filename;
}

/** Options for {@link buildManifest}. */
export interface BuildManifestOptions {
  /** Store holding the artifacts. */
  store: ArtifactStore;
  /** Channel. */
  channel: Channel;
  /** Architecture (aliases allowed). */
  arch: string;
  /** manifest_version to write. */
  manifestVersion: number;
  /** Release version string. */
  version: string;
  /** Kernel command line. */
  cmdline: string;
  /** Days until expiry. */
  validityDays?: number;
  /** Provider block, when a provider generates the manifest. */
  provider?: BootManifest["provider"];
  /** Creation time (default now). */
  now?: Date;
}

/** The artifacts block for a list of files (relative URLs). */
export async function artifactEntries(
  store: ArtifactStore,
  channel: string,
  arch: string,
  files: ArtifactFile[],
): Promise<Record<string, BootArtifact>> {
  const entries: Record<string, BootArtifact> = {};
  for (const file of files) {
    let role = artifactRole(file.name);
    if (entries[role]) role = file.name;
    entries[role] = {
      filename: file.name,
      size: file.size,
      sha256: await store.hash(file),
      urls: [`/${channel}/${canonicalArch(arch) ?? arch}/${file.name}`],
    };
  }
  return entries;
}

/** Builds an unsigned manifest from the artifacts directory. */
export async function buildManifest(
  options: BuildManifestOptions,
): Promise<BootManifest> {
  const arch = canonicalArch(options.arch);
  if (!arch) throw new Error(`unknown architecture ${options.arch}`);
  const files = await options.store.list(options.channel, arch);
  const now = options.now ?? new Date();
  const days = options.validityDays ?? DEFAULT_VALIDITY_DAYS;
  const manifest: BootManifest = {
    format: "phase-boot-manifest/1",
    manifest_version: options.manifestVersion,
    version: options.version,
    channel: options.channel,
    arch,
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + days * 86_400_000).toISOString(),
    cmdline: options.cmdline,
    ...(options.provider ? { provider: options.provider } : {}),
    artifacts: await artifactEntries(
      options.store,
      options.channel,
      arch,
      files,
    ),
    signatures: [],
  };
  return validateBootManifest(manifest);
}

/** A manifest ready to send. */
export interface PublishedManifest {
  /** Exact bytes to send. */
  bytes: Uint8Array;
  /** The parsed manifest. */
  manifest: BootManifest;
  /** Strong ETag. */
  etag: string;
  /** True when it was signed offline (served as stored). */
  offline: boolean;
}

/** Options for {@link ManifestPublisher}. */
export interface PublisherOptions {
  /** The artifacts. */
  store: ArtifactStore;
  /** Key that signs generated manifests (the provider key). */
  key: NodeKey;
  /** Release version written into generated manifests. */
  version: string;
  /** Kernel command line for generated manifests. */
  cmdline: string;
  /** Provider addresses written into generated manifests. */
  addresses: () => string[];
  /** Where manifest versions persist (omit in Private mode). */
  statePath?: string;
  /** How long a scan result is reused, in ms (default 1000). */
  rescanMs?: number;
  /** Days generated manifests stay valid. */
  validityDays?: number;
}

interface VersionState {
  [channelArch: string]: {
    manifest_version: number;
    fingerprint: string;
    /** The signed manifest last served for this fingerprint. */
    manifest?: BootManifest;
  };
}

/** An offline-signed manifest.json that cannot be served; one line. */
export class InvalidManifestError extends Error {
  /** Creates the error. */
  constructor(path: string, cause: unknown) {
    super(
      `offline manifest ${path} is invalid: ${
        String((cause as Error)?.message ?? cause).split("\n")[0]
      }`,
    );
    this.name = "InvalidManifestError";
  }
}

function published(manifest: BootManifest): Promise<PublishedManifest> {
  const bytes = new TextEncoder().encode(
    JSON.stringify(manifest, null, 2) + "\n",
  );
  return sha256Hex(bytes).then((hex) => ({
    bytes,
    manifest,
    etag: `"${hex}"`,
    offline: false,
  }));
}

/** Serves the current manifest per channel/arch. */
export class ManifestPublisher {
  #options: PublisherOptions;
  #state: VersionState = {};
  #cache = new Map<
    string,
    { at: number; published: PublishedManifest | null }
  >();
  #building = new Map<string, Promise<PublishedManifest | null>>();

  /** Creates the publisher and loads persisted versions. */
  constructor(options: PublisherOptions) {
    this.#options = options;
    if (options.statePath) {
      try {
        this.#state = JSON.parse(Deno.readTextFileSync(options.statePath));
      } catch {
        this.#state = {};
      }
    }
  }

  /**
   * The manifest for a channel/arch, or null when there is nothing to serve.
   * Throws {@link InvalidManifestError} for a broken offline manifest.
   */
  current(channel: Channel, arch: string): Promise<PublishedManifest | null> {
    const canonical = canonicalArch(arch);
    if (!canonical) return Promise.resolve(null);
    const key = `${channel}/${canonical}`;
    const cached = this.#cache.get(key);
    if (
      cached &&
      performance.now() - cached.at < (this.#options.rescanMs ?? 1000)
    ) {
      return Promise.resolve(cached.published);
    }
    let building = this.#building.get(key);
    if (!building) {
      building = this.#refresh(channel, canonical, cached?.published ?? null)
        .then((published) => {
          this.#cache.set(key, { at: performance.now(), published });
          return published;
        }).finally(() => this.#building.delete(key));
      this.#building.set(key, building);
    }
    return building;
  }

  async #refresh(
    channel: Channel,
    arch: string,
    previous: PublishedManifest | null,
  ): Promise<PublishedManifest | null> {
    const { store } = this.#options;
    const stored = await store.resolve(channel, arch, MANIFEST_FILE);
    if (stored) {
      const bytes = await Deno.readFile(stored.path);
      let manifest: BootManifest;
      try {
        manifest = validateBootManifest(
          JSON.parse(new TextDecoder().decode(bytes)),
        );
      } catch (error) {
        throw new InvalidManifestError(
          `${channel}/${arch}/${MANIFEST_FILE}`,
          error,
        );
      }
      return {
        bytes,
        manifest,
        etag: `"${await sha256Hex(bytes)}"`,
        offline: true,
      };
    }
    const files = await store.list(channel, arch);
    if (files.length === 0) return null;
    const artifacts = await artifactEntries(store, channel, arch, files);
    const fingerprint = await sha256Hex(canonicalBytes({
      artifacts,
      cmdline: this.#options.cmdline,
      version: this.#options.version,
      addresses: this.#options.addresses(),
      signer: this.#options.key.peerId,
    }));
    const key = `${channel}/${arch}`;
    const known = this.#state[key];
    if (known?.fingerprint === fingerprint) {
      if (previous && !previous.offline && this.#fresh(previous.manifest)) {
        return previous;
      }
      // After a restart: the manifest signed for the same content, if the
      // stored copy is intact and not half-way to expiry.
      try {
        const stored = validateBootManifest(known.manifest);
        if (this.#fresh(stored)) return await published(stored);
      } catch {
        // missing or damaged: sign a new one
      }
    }
    // A version both above the last one and tied to the clock, so it keeps
    // growing even when the state could not be persisted.
    const manifestVersion = Math.max(
      (known?.manifest_version ?? 0) + 1,
      Math.floor(Date.now() / 1000),
    );
    const unsigned = await buildManifest({
      store,
      channel,
      arch,
      manifestVersion,
      version: this.#options.version,
      cmdline: this.#options.cmdline,
      validityDays: this.#options.validityDays,
      provider: {
        peer_id: this.#options.key.peerId,
        addresses: this.#options.addresses(),
      },
    });
    const manifest = await signManifest(unsigned, this.#options.key);
    this.#state[key] = {
      manifest_version: manifestVersion,
      fingerprint,
      manifest,
    };
    this.#saveState();
    return await published(manifest);
  }

  /** True while a generated manifest is less than half-way to expiry. */
  #fresh(manifest: BootManifest): boolean {
    const validity = (this.#options.validityDays ?? DEFAULT_VALIDITY_DAYS) *
      86_400_000;
    return Date.parse(manifest.expires_at) - Date.now() >= validity / 2;
  }

  #saveState(): void {
    const path = this.#options.statePath;
    if (!path) return;
    try {
      Deno.writeTextFileSync(
        `${path}.tmp`,
        JSON.stringify(this.#state, null, 2),
      );
      Deno.renameSync(`${path}.tmp`, path);
    } catch {
      // versions stay monotonic through the clock-based floor
    }
  }
}
