/**
 * The digest a receipt gives a seeded scratch directory (`limits.preopens[]
 * .seed_sha256`), so a client can check that the node ran with the seed it
 * sent.
 * @module
 */
import { canonicalBytes } from "./canonical.ts";
import { sha256Ref } from "./encoding.ts";

/** One seed entry, with a file's bytes decoded. */
export interface SeedDigestEntry {
  /** Relative path in the scratch directory. */
  path: string;
  /** What the entry is. */
  kind: "file" | "dir" | "symlink";
  /** A file's bytes. */
  data?: Uint8Array;
  /** A link's target. */
  target?: string;
}

/**
 * sha256 of the JCS bytes of `{"entries": [{"path", "kind", "sha256"
 * (files), "target" (links)}]}`, entries in the seed's order.
 */
export async function seedDigest(seed: SeedDigestEntry[]): Promise<string> {
  const entries = [];
  for (const e of seed) {
    entries.push({
      path: e.path,
      kind: e.kind,
      ...(e.kind === "file"
        ? { sha256: await sha256Ref(e.data ?? new Uint8Array()) }
        : {}),
      ...(e.kind === "symlink" ? { target: e.target } : {}),
    });
  }
  return await sha256Ref(canonicalBytes({ entries }));
}
