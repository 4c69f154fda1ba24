/**
 * Signed, expiring, versioned records for the DHT under `/phase/…`.
 *
 * A record is JSON: `{type, key, seq, peer_id, issued_at, expires_at,
 * payload, signature}`, signed with Ed25519 over the JCS bytes of everything
 * but `signature`, by the key inside `peer_id`. The DHT validator refuses
 * unsigned, wrongly signed, expired, oversized or misplaced records (a record
 * must name the DHT key it is stored under, and per-node keys must be owned by
 * the signer); the selector keeps the valid record with the highest `seq`.
 * @module
 */
import {
  canonicalBytes,
  type NodeKey,
  publicKeyOfPeerId,
  signBytes,
  signingBytes,
  verifyBytes,
} from "../schemas/mod.ts";

/** Largest record accepted, in bytes. */
export const MAX_RECORD_BYTES = 8 * 1024;
/** Records live this long unless said otherwise (and are re-published at half). */
export const DEFAULT_RECORD_TTL_MS = 30 * 60 * 1000;

/** Kinds of record and where they live. */
export type RecordType = "capability" | "boot-provider" | "job-manifest";

/** A signed DHT record. */
export interface SignedRecord<P = Record<string, unknown>> {
  /** Kind of record. */
  type: RecordType;
  /** The DHT key it is stored under. */
  key: string;
  /** Monotonic sequence number chosen by the signer; highest wins. */
  seq: number;
  /** Signer. */
  peer_id: string;
  /** RFC 3339. */
  issued_at: string;
  /** RFC 3339; expired records are refused. */
  expires_at: string;
  /** Content. */
  payload: P;
  /** Base64 Ed25519 signature. */
  signature: string;
}

/** A record that must be refused; the message is one line. */
export class RecordError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RecordError";
  }
}

/** DHT key of a node's capability record. */
export function capabilityKey(peerId: string): string {
  return `/phase/capability/${peerId}`;
}

/** DHT key of a boot provider's record for a channel/arch. */
export function bootProviderKey(
  channel: string,
  arch: string,
  peerId: string,
): string {
  return `/phase/boot/${channel}/${arch}/${peerId}`;
}

/** DHT key of a named job manifest. */
export function jobManifestKey(name: string): string {
  return `/phase/wasm/${name}/manifest`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Creates and signs a record. */
export async function signRecord<P extends Record<string, unknown>>(
  key: NodeKey,
  fields: {
    type: RecordType;
    key: string;
    seq: number;
    payload: P;
    ttlMs?: number;
    now?: Date;
  },
): Promise<SignedRecord<P>> {
  const now = fields.now ?? new Date();
  const unsigned = {
    type: fields.type,
    key: fields.key,
    seq: fields.seq,
    peer_id: key.peerId,
    issued_at: now.toISOString(),
    expires_at: new Date(
      now.getTime() + (fields.ttlMs ?? DEFAULT_RECORD_TTL_MS),
    ).toISOString(),
    payload: fields.payload,
  };
  const signature = await signBytes(key, canonicalBytes(unsigned));
  return { ...unsigned, signature };
}

/** Serialises a record for the DHT; refuses oversized records. */
export function encodeRecord(record: SignedRecord<unknown>): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(record));
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new RecordError(
      `record is ${bytes.length} bytes, the limit is ${MAX_RECORD_BYTES}`,
    );
  }
  return bytes;
}

function ownerOf(dhtKey: string): string | null {
  const parts = dhtKey.split("/");
  if (parts[2] === "capability") return parts[3] ?? null;
  if (parts[2] === "boot") return parts[5] ?? null;
  return null;
}

function typeOf(dhtKey: string): RecordType | null {
  const parts = dhtKey.split("/");
  if (parts[1] !== "phase") return null;
  if (parts[2] === "capability" && parts.length === 4) return "capability";
  if (parts[2] === "boot" && parts.length === 6) return "boot-provider";
  if (parts[2] === "wasm" && parts.length === 5 && parts[4] === "manifest") {
    return "job-manifest";
  }
  return null;
}

/**
 * Decodes and checks a record stored under `dhtKey`; throws
 * {@link RecordError} with the reason when it must be refused.
 */
export async function decodeRecord(
  dhtKey: string,
  bytes: Uint8Array,
  now: Date = new Date(),
): Promise<SignedRecord> {
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new RecordError(
      `record is ${bytes.length} bytes, the limit is ${MAX_RECORD_BYTES}`,
    );
  }
  let record: SignedRecord;
  try {
    record = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new RecordError("record is not JSON");
  }
  const expectedType = typeOf(dhtKey);
  if (!expectedType) {
    throw new RecordError(`no record type lives under ${dhtKey}`);
  }
  if (
    typeof record !== "object" || record === null ||
    record.type !== expectedType ||
    record.key !== dhtKey || !Number.isSafeInteger(record.seq) ||
    record.seq < 0 ||
    typeof record.peer_id !== "string" ||
    typeof record.signature !== "string" ||
    typeof record.payload !== "object" || record.payload === null ||
    Number.isNaN(Date.parse(record.issued_at)) ||
    Number.isNaN(Date.parse(record.expires_at))
  ) {
    throw new RecordError("record is malformed or stored under another key");
  }
  const owner = ownerOf(dhtKey);
  if (owner !== null && owner !== record.peer_id) {
    throw new RecordError(`record under ${dhtKey} is signed by another peer`);
  }
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyOfPeerId(record.peer_id);
  } catch {
    throw new RecordError("record signer is not an Ed25519 peer id");
  }
  if (!await verifyBytes(publicKey, signingBytes(record), record.signature)) {
    throw new RecordError("record signature is invalid");
  }
  if (Date.parse(record.expires_at) <= now.getTime()) {
    throw new RecordError(`record expired at ${record.expires_at}`);
  }
  return record;
}

/** DHT validator for the `phase` namespace. */
export async function validateRecord(
  key: Uint8Array,
  value: Uint8Array,
): Promise<void> {
  await decodeRecord(decoder.decode(key), value);
}

/** DHT selector: index of the valid record with the highest seq. */
export async function selectRecord(
  key: Uint8Array,
  values: Uint8Array[],
): Promise<number> {
  const dhtKey = decoder.decode(key);
  let best = 0;
  let bestSeq = -1;
  for (let i = 0; i < values.length; i++) {
    try {
      const record = await decodeRecord(dhtKey, values[i]);
      if (record.seq > bestSeq) {
        best = i;
        bestSeq = record.seq;
      }
    } catch {
      // invalid records never win
    }
  }
  return best;
}
