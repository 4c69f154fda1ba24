import { signingBytesWithout } from "./canonical.ts";
import {
  type NodeKey,
  peerIdOfPublicKey,
  signBytes,
  verifyBytes,
} from "./keys.ts";
import type { Arch, BootManifest, ManifestSignature } from "./types.ts";
import { SchemaError, validateBootManifest } from "./validate.ts";

/** Canonical architecture for a name or alias; undefined if unknown. */
export function canonicalArch(name: string): Arch | undefined {
  switch (name) {
    case "x86_64":
    case "amd64":
      return "x86_64";
    case "aarch64":
    case "arm64":
      return "aarch64";
    default:
      return undefined;
  }
}

/** The bytes a boot manifest signature covers. */
export function manifestSigningBytes(manifest: BootManifest): Uint8Array {
  return signingBytesWithout(manifest, "signatures");
}

/**
 * Adds (or replaces) the signature of `key`, keeping other signatures. The
 * manifest is validated first.
 */
export async function signManifest(
  manifest: BootManifest,
  key: NodeKey,
): Promise<BootManifest> {
  const valid = validateBootManifest(manifest);
  const sig = await signBytes(key, manifestSigningBytes(valid));
  const others = valid.signatures.filter((s) => s.key_id !== key.peerId);
  return validateBootManifest({
    ...valid,
    signatures: [...others, { key_id: key.peerId, algorithm: "ed25519", sig }],
  });
}

/**
 * The first pinned key that signed `bytes` among `signatures` (manifest
 * shape: `key_id`, `sig`). A `key_id` is only a hint: a signature counts only
 * if it verifies under a key from `trustedKeys`, and a signature naming a
 * pinned key that does not verify is refused outright.
 */
export async function pinnedSigner(
  bytes: Uint8Array,
  signatures: ManifestSignature[],
  trustedKeys: Uint8Array[],
): Promise<{ signer: string } | { reason: string }> {
  if (trustedKeys.length === 0) return { reason: "no trusted keys are pinned" };
  for (const key of trustedKeys) {
    const peerId = peerIdOfPublicKey(key);
    for (const entry of signatures) {
      if (entry.key_id !== peerId) continue;
      if (await verifyBytes(key, bytes, entry.sig)) return { signer: peerId };
      return { reason: `invalid signature by ${peerId}` };
    }
  }
  return { reason: "not signed by any trusted key" };
}

/** What a boot manifest verifier insists on. */
export interface ManifestPolicy {
  /** Raw Ed25519 public keys the verifier trusts; at least one must sign. */
  trustedKeys: Uint8Array[];
  /** Current time (default now); an expired manifest is refused. */
  now?: Date;
  /** Lowest acceptable manifest_version (rollback protection). */
  minVersion?: number;
  /** Expected channel and arch, when the verifier asked for them. */
  channel?: string;
  /** Expected architecture (aliases allowed). */
  arch?: string;
}

/** Outcome of {@link verifyManifest}. */
export type ManifestVerdict =
  | { valid: true; manifest: BootManifest; signer: string }
  | { valid: false; reason: string };

/**
 * Verifies a boot manifest against pinned keys. The keys named inside the
 * manifest are only hints: a signature counts only if it verifies under a
 * key from `policy.trustedKeys`.
 */
export async function verifyManifest(
  value: unknown,
  policy: ManifestPolicy,
): Promise<ManifestVerdict> {
  let manifest: BootManifest;
  try {
    manifest = validateBootManifest(value);
  } catch (error) {
    if (error instanceof SchemaError) {
      return { valid: false, reason: error.message };
    }
    throw error;
  }
  const checked = await pinnedSigner(
    manifestSigningBytes(manifest),
    manifest.signatures,
    policy.trustedKeys,
  );
  if ("reason" in checked) return { valid: false, reason: checked.reason };
  const signer = checked.signer;
  const now = policy.now ?? new Date();
  if (Date.parse(manifest.expires_at) <= now.getTime()) {
    return {
      valid: false,
      reason: `manifest expired at ${manifest.expires_at}`,
    };
  }
  if (
    policy.minVersion !== undefined &&
    manifest.manifest_version < policy.minVersion
  ) {
    return {
      valid: false,
      reason:
        `rollback: manifest_version ${manifest.manifest_version} is lower than ${policy.minVersion} seen before`,
    };
  }
  if (policy.channel && manifest.channel !== policy.channel) {
    return {
      valid: false,
      reason:
        `manifest is for channel ${manifest.channel}, not ${policy.channel}`,
    };
  }
  if (policy.arch && manifest.arch !== canonicalArch(policy.arch)) {
    return {
      valid: false,
      reason: `manifest is for ${manifest.arch}, not ${policy.arch}`,
    };
  }
  return { valid: true, manifest, signer };
}
