/**
 * Signed, expiring, versioned records for the DHT under `/phase/…`.
 *
 * A record is JSON: `{type, key, seq, peer_id, issued_at, expires_at,
 * payload, signature}`, signed with Ed25519 over the JCS bytes of everything
 * but `signature`, by the key inside `peer_id`. The DHT validator refuses
 * unsigned, wrongly signed, expired, oversized or misplaced records (a record
 * must name the DHT key it is stored under, and per-node keys must be owned by the
 * signer), records whose payload does not match the schema of their type,
 * and records that claim to live longer than {@link MAX_RECORD_LIFETIME_MS};
 * the selector keeps the valid record with the highest `seq`, and a node
 * never replaces a stored record with one of lower `seq` (see node.ts).
 * Every key names its owner: nobody can publish under another peer's key.
 * @module
 */
import {
  canonicalBytes,
  type DocumentKind,
  type NodeKey,
  publicKeyOfPeerId,
  type SchemaError,
  signBytes,
  signingBytes,
  validateDocument,
  verifyBytes,
} from "../schemas/mod.ts";

/** Largest record accepted, in bytes. */
export const MAX_RECORD_BYTES = 8 * 1024;
/** Records live this long unless said otherwise (and are re-published at half). */
export const DEFAULT_RECORD_TTL_MS = 30 * 60 * 1000;
/** Longest a record may claim to live, from now: 24 hours. */
export const MAX_RECORD_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Clock difference tolerated between peers for `issued_at`: 5 minutes. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

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

/**
 * DHT key of a named job manifest. Names are owned: the key carries the
 * publisher's peer id, so a name means "this publisher's manifest of that
 * name" and nobody else can publish under it.
 */
export function jobManifestKey(publisher: string, name: string): string {
  return `/phase/wasm/${publisher}/${name}/manifest`;
}

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

/**
 * Serialises a record for the DHT as its JCS bytes (one byte string per
 * record, so every implementation reads the same fields); refuses oversized
 * records.
 */
export function encodeRecord(record: SignedRecord<unknown>): Uint8Array {
  const bytes = canonicalBytes(record);
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new RecordError(
      `record is ${bytes.length} bytes, the limit is ${MAX_RECORD_BYTES}`,
    );
  }
  return bytes;
}

const SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** What lives under a DHT key: its record type and its owner's peer id. */
function placeOf(dhtKey: string): { type: RecordType; owner: string } | null {
  const parts = dhtKey.split("/");
  if (parts[0] !== "" || parts[1] !== "phase") return null;
  if (parts[2] === "capability" && parts.length === 4) {
    return { type: "capability", owner: parts[3] };
  }
  if (
    parts[2] === "boot" && parts.length === 6 && SEGMENT.test(parts[3]) &&
    SEGMENT.test(parts[4])
  ) {
    return { type: "boot-provider", owner: parts[5] };
  }
  if (
    parts[2] === "wasm" && parts.length === 6 && SEGMENT.test(parts[4]) &&
    parts[5] === "manifest"
  ) {
    return { type: "job-manifest", owner: parts[3] };
  }
  return null;
}

const PAYLOAD_SCHEMA: Record<RecordType, DocumentKind> = {
  capability: "capability record",
  "boot-provider": "boot-provider record",
  "job-manifest": "job manifest",
};

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
  // Duplicate keys, a byte-order mark or other spellings of the same JSON
  // would let implementations read different fields: only JCS is stored.
  if (!sameBytes(canonicalBytes(record), bytes)) {
    throw new RecordError("record is not in canonical (JCS) form");
  }
  const place = placeOf(dhtKey);
  if (!place) {
    throw new RecordError(`no record type lives under ${dhtKey.slice(0, 200)}`);
  }
  try {
    validateDocument("record", record);
    validateDocument(PAYLOAD_SCHEMA[place.type], record.payload);
  } catch (error) {
    throw new RecordError((error as SchemaError).message);
  }
  if (record.type !== place.type || record.key !== dhtKey) {
    throw new RecordError("record is stored under another key");
  }
  if (place.owner !== record.peer_id) {
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
  const expires = Date.parse(record.expires_at);
  if (expires <= now.getTime()) {
    throw new RecordError(`record expired at ${record.expires_at}`);
  }
  if (expires > now.getTime() + MAX_RECORD_LIFETIME_MS) {
    throw new RecordError(
      `record claims to live more than ${
        MAX_RECORD_LIFETIME_MS / 3_600_000
      } hours from now`,
    );
  }
  if (Date.parse(record.issued_at) > now.getTime() + MAX_CLOCK_SKEW_MS) {
    throw new RecordError("record was issued in the future");
  }
  return record;
}

/**
 * A DHT validator that also refuses a record older than the one this node
 * stores under the same key, so a replayed record (lower `seq`, still signed
 * and unexpired) never replaces a newer one. `stored` reads the node's
 * current value for a key, or null.
 */
export function validatorKeepingNewest(
  stored: (key: Uint8Array) => Promise<Uint8Array | null>,
): (key: Uint8Array, value: Uint8Array) => Promise<void> {
  return async (key, value) => {
    const dhtKey = decoder.decode(key);
    const incoming = await decodeRecord(dhtKey, value);
    const current = await stored(key);
    if (!current) return;
    let kept: SignedRecord;
    try {
      kept = await decodeRecord(dhtKey, current);
    } catch {
      return; // the stored record expired or is damaged: any valid one wins
    }
    if (kept.seq > incoming.seq) {
      throw new RecordError(
        `record seq ${incoming.seq} is older than the stored seq ${kept.seq}`,
      );
    }
    if (kept.seq === incoming.seq && kept.signature !== incoming.signature) {
      throw new RecordError(
        `a different record with seq ${incoming.seq} is already stored`,
      );
    }
  };
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
