/**
 * Verifying what nodes sign, alone: receipts (schema, Ed25519 signature under
 * the key inside `node_peer_id`, and what the verifier expects of it) and
 * boot manifests (signed by a pinned key, not expired, no rollback). Pure
 * JavaScript over schemas/ (JCS bytes, WebCrypto's Ed25519 with
 * @noble/ed25519 where WebCrypto lacks it): no node, no network.
 * @module
 */
import {
  type ManifestVerdict,
  parsePublicKey,
  type ReceiptExpectations,
  type ReceiptVerdict,
  verifyManifest,
  verifyReceipt,
} from "../schemas/mod.ts";
import { InvalidReceiptError } from "./errors.ts";
import type { NodeInfo, PreparedJob } from "./job.ts";
import type { Receipt } from "../schemas/mod.ts";

export { verifyReceipt };
export type { ManifestVerdict, ReceiptExpectations, ReceiptVerdict };

/** What a boot manifest verifier insists on. */
export interface BootManifestExpectations {
  /** Keys trusted to sign: peer ids (`12D3KooW…`), 64 hex digits or base64. */
  trustedKeys: (string | Uint8Array)[];
  /** The time to judge expiry at (default now). */
  now?: Date;
  /** Lowest acceptable `manifest_version` (rollback protection). */
  minVersion?: number;
  /** The channel asked for. */
  channel?: string;
  /** The architecture asked for (aliases allowed). */
  arch?: string;
}

/**
 * Verifies a parsed boot manifest: a signature by one of the pinned keys
 * (never a key named only inside the manifest), expiry, rollback floor,
 * channel and arch.
 */
export async function verifyBootManifest(
  manifest: unknown,
  expect: BootManifestExpectations,
): Promise<ManifestVerdict> {
  let trustedKeys: Uint8Array[];
  try {
    trustedKeys = expect.trustedKeys.map((key) =>
      typeof key === "string" ? parsePublicKey(key) : key
    );
  } catch (error) {
    return { valid: false, reason: (error as Error).message };
  }
  return await verifyManifest(manifest, { ...expect, trustedKeys });
}

/**
 * Checks a receipt a transport brought back for a prepared job: signed by
 * the node the transport talked to, for this module, input and nonce (and
 * job id where the transport sets it). Throws {@link InvalidReceiptError}.
 */
export async function verifyDelivered(
  receipt: unknown,
  job: PreparedJob,
  node: NodeInfo,
  bindsJobId: boolean,
): Promise<Receipt> {
  const verdict = await verifyReceipt(receipt, {
    peerId: node.peerId,
    moduleHash: job.moduleHash,
    inputHash: job.inputHash,
    nonce: job.nonce,
    ...(bindsJobId ? { jobId: job.jobId } : {}),
  });
  if (!verdict.valid) throw new InvalidReceiptError(verdict.reason, receipt);
  return verdict.receipt;
}
