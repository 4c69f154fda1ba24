/**
 * Release signatures: the Ed25519 signature of a release's SHA256SUMS, in
 * the same form as boot manifest signatures (JCS bytes without
 * `signatures`; only pinned keys count).
 * @module
 */
import { canonicalBytes, signingBytesWithout } from "./canonical.ts";
import { concatBytes, sha256Hex } from "./encoding.ts";
import { pinnedSigner } from "./boot_manifest.ts";
import { type NodeKey, signBytes } from "./keys.ts";
import type { ReleaseSignature } from "./types.ts";
import { SchemaError, validateDocument } from "./validate.ts";

/** The bytes of `SHA256SUMS.sig`: the canonical (JCS) document and a newline. */
export function releaseSignatureBytes(signature: ReleaseSignature): Uint8Array {
  return concatBytes([canonicalBytes(signature), Uint8Array.of(0x0a)]);
}

/** Signs the bytes of a SHA256SUMS file with a release key. */
export async function signReleaseSums(
  sums: Uint8Array,
  key: NodeKey,
  options: { version: string; now?: Date },
): Promise<ReleaseSignature> {
  const unsigned = {
    format: "phase-release-signature/1" as const,
    file: "SHA256SUMS" as const,
    size: sums.length,
    sha256: await sha256Hex(sums),
    version: options.version,
    created_at: (options.now ?? new Date()).toISOString(),
  };
  const sig = await signBytes(
    key,
    signingBytesWithout({ ...unsigned, signatures: [] }, "signatures"),
  );
  return validateDocument<ReleaseSignature>("release signature", {
    ...unsigned,
    signatures: [{ key_id: key.peerId, algorithm: "ed25519", sig }],
  });
}

/** Outcome of {@link verifyReleaseSums}. */
export type ReleaseVerdict =
  | { valid: true; signature: ReleaseSignature; signer: string }
  | { valid: false; reason: string };

/**
 * Checks `SHA256SUMS.sig` (its exact bytes) against the bytes of SHA256SUMS
 * and pinned keys. Any byte that differs from the canonical form is refused,
 * so a changed signature file never passes as an equivalent one.
 */
export async function verifyReleaseSums(
  sums: Uint8Array,
  signatureFile: Uint8Array,
  trustedKeys: Uint8Array[],
): Promise<ReleaseVerdict> {
  let signature: ReleaseSignature;
  try {
    signature = validateDocument<ReleaseSignature>(
      "release signature",
      JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(signatureFile),
      ),
    );
  } catch (error) {
    if (error instanceof SchemaError) {
      return { valid: false, reason: error.message };
    }
    return { valid: false, reason: "SHA256SUMS.sig is not JSON" };
  }
  const canonical = releaseSignatureBytes(signature);
  if (
    canonical.length !== signatureFile.length ||
    canonical.some((b, i) => b !== signatureFile[i])
  ) {
    return {
      valid: false,
      reason: "SHA256SUMS.sig is not in its canonical form (changed bytes)",
    };
  }
  const checked = await pinnedSigner(
    signingBytesWithout(signature, "signatures"),
    signature.signatures,
    trustedKeys,
  );
  if ("reason" in checked) return { valid: false, reason: checked.reason };
  if (
    sums.length !== signature.size || await sha256Hex(sums) !== signature.sha256
  ) {
    return {
      valid: false,
      reason: "SHA256SUMS does not match its signature (changed bytes)",
    };
  }
  return { valid: true, signature, signer: checked.signer };
}
