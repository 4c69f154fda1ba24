import { canonicalBytes, signingBytes } from "./canonical.ts";
import { sha256Ref } from "./encoding.ts";
import {
  type NodeKey,
  publicKeyOfPeerId,
  signBytes,
  verifyBytes,
} from "./keys.ts";
import type { Receipt, Sha256Ref, UnsignedReceipt } from "./types.ts";
import { SchemaError, validateReceipt } from "./validate.ts";

/** What a job's input was, for {@link inputHash}. */
export interface JobInput {
  /** Guest arguments after argv[0]. */
  args: string[];
  /** Guest environment. */
  env: Record<string, string>;
  /** Bytes given on standard input. */
  stdin: Uint8Array;
}

/**
 * The receipt's `input_hash`: sha256 of the JCS bytes of
 * `{"args": [...], "env": {...}, "stdin_sha256": "sha256:<hex>"}`.
 */
export async function inputHash(input: JobInput): Promise<Sha256Ref> {
  return await sha256Ref(canonicalBytes({
    args: input.args,
    env: input.env,
    stdin_sha256: await sha256Ref(input.stdin),
  }));
}

/** Signs a receipt with the node key; `node_peer_id` must be that key's. */
export async function signReceipt(
  unsigned: UnsignedReceipt,
  key: NodeKey,
): Promise<Receipt> {
  if (unsigned.node_peer_id !== key.peerId) {
    throw new Error("node_peer_id does not match the signing key");
  }
  const signature = await signBytes(key, canonicalBytes(unsigned));
  return validateReceipt({ ...unsigned, signature });
}

/** Outcome of {@link verifyReceipt}. */
export type ReceiptVerdict =
  | { valid: true; receipt: Receipt }
  | { valid: false; reason: string };

/** What a verifier expects beyond a good signature. */
export interface ReceiptExpectations {
  /** The peer the verifier talked to. */
  peerId?: string;
  /** The module it sent. */
  moduleHash?: string;
  /** The input it sent. */
  inputHash?: string;
  /** The nonce it chose. */
  nonce?: string;
  /** The job id it chose. */
  jobId?: string;
}

/**
 * Verifies a parsed receipt: schema, then the Ed25519 signature against the
 * key inside `node_peer_id` (never a key carried elsewhere in the document),
 * then any expectations.
 */
export async function verifyReceipt(
  value: unknown,
  expect: ReceiptExpectations = {},
): Promise<ReceiptVerdict> {
  let receipt: Receipt;
  try {
    receipt = validateReceipt(value);
  } catch (error) {
    if (error instanceof SchemaError) {
      return { valid: false, reason: error.message };
    }
    throw error;
  }
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyOfPeerId(receipt.node_peer_id);
  } catch (error) {
    return { valid: false, reason: (error as Error).message };
  }
  if (!await verifyBytes(publicKey, signingBytes(receipt), receipt.signature)) {
    return { valid: false, reason: "invalid signature" };
  }
  const mismatches: [keyof ReceiptExpectations, string][] = [
    ["peerId", receipt.node_peer_id],
    ["moduleHash", receipt.module_hash],
    ["inputHash", receipt.input_hash],
    ["nonce", receipt.nonce],
    ["jobId", receipt.job_id],
  ];
  for (const [field, actual] of mismatches) {
    const wanted = expect[field];
    if (wanted !== undefined && wanted !== actual) {
      return {
        valid: false,
        reason: `${field} is ${actual}, expected ${wanted}`,
      };
    }
  }
  return { valid: true, receipt };
}
