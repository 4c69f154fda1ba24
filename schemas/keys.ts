import { base58btc } from "multiformats/bases/base58";
import * as Digest from "multiformats/hashes/digest";
import { fromBase64, fromHex, toBase64 } from "./encoding.ts";

// Native WebCrypto Ed25519 (RFC 8032: the same deterministic keys and
// signatures as any other implementation) and a peer id spelled out here,
// so that loading this module costs no JavaScript curve code and no libp2p
// (tests/schemas_test.ts checks both against @noble/ed25519 and libp2p).

/** An Ed25519 signing key with the libp2p peer id derived from it. */
export interface NodeKey {
  /** The 32-byte private seed (RFC 8032 secret key). */
  readonly seed: Uint8Array;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** The libp2p peer id (`12D3KooW…`) of the public key. */
  readonly peerId: string;
}

/** PKCS #8 wrapping of an Ed25519 seed (RFC 8410): this prefix, then the seed. */
const PKCS8_PREFIX = fromHex("302e020100300506032b657004220420");

/**
 * A libp2p peer id of an Ed25519 key is the identity multihash (code 0, 36
 * bytes) of the key's protobuf `PublicKey { Type: Ed25519 (1), Data }`: these
 * six bytes, then the 32-byte key, in base58btc.
 */
const PEER_ID_PREFIX = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/** Signing keys by seed, so each key is imported into WebCrypto once. */
const signingKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();

function importSeed(
  seed: Uint8Array,
  extractable: boolean,
): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "pkcs8",
    Uint8Array.from([...PKCS8_PREFIX, ...seed]),
    { name: "Ed25519" },
    extractable,
    ["sign"],
  );
}

function signingKey(seed: Uint8Array): Promise<CryptoKey> {
  let key = signingKeys.get(seed);
  if (!key) {
    key = importSeed(seed, false);
    signingKeys.set(seed, key);
  }
  return key;
}

function fromBase64Url(text: string): Uint8Array {
  const padded = text.replaceAll("-", "+").replaceAll("_", "/");
  return fromBase64(padded + "=".repeat((4 - padded.length % 4) % 4));
}

/** Builds a key from a 32-byte seed. */
export async function keyFromSeed(seed: Uint8Array): Promise<NodeKey> {
  if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
  const cryptoKey = importSeed(seed, true);
  signingKeys.set(seed, cryptoKey);
  const jwk = await crypto.subtle.exportKey("jwk", await cryptoKey);
  const publicKey = fromBase64Url(jwk.x!);
  return { seed, publicKey, peerId: peerIdOfPublicKey(publicKey) };
}

/** Creates a fresh random key. */
export function generateKey(): Promise<NodeKey> {
  return keyFromSeed(crypto.getRandomValues(new Uint8Array(32)));
}

/** The libp2p peer id string of a raw Ed25519 public key. */
export function peerIdOfPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) {
    throw new Error("an Ed25519 public key is 32 bytes");
  }
  return base58btc.baseEncode(
    Uint8Array.from([...PEER_ID_PREFIX, ...publicKey]),
  );
}

/**
 * The raw Ed25519 public key inside a peer id. Throws for malformed ids and
 * for ids that do not embed an Ed25519 key (or not in its one canonical
 * spelling, the one {@link peerIdOfPublicKey} writes).
 */
export function publicKeyOfPeerId(peerId: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    if (!/^[1Q]/.test(peerId)) throw new Error("not base58btc");
    bytes = base58btc.decode(`z${peerId}`);
    Digest.decode(bytes);
  } catch {
    throw new Error(`not a libp2p peer id: ${JSON.stringify(peerId)}`);
  }
  if (
    bytes.length !== PEER_ID_PREFIX.length + 32 ||
    PEER_ID_PREFIX.some((byte, i) => bytes[i] !== byte)
  ) {
    throw new Error(`peer id ${peerId} does not carry an Ed25519 key`);
  }
  return bytes.slice(PEER_ID_PREFIX.length);
}

/** Signs bytes; returns the base64 signature. */
export async function signBytes(
  key: NodeKey,
  message: Uint8Array,
): Promise<string> {
  const signature = await crypto.subtle.sign(
    "Ed25519",
    await signingKey(key.seed),
    message as Uint8Array<ArrayBuffer>,
  );
  return toBase64(new Uint8Array(signature));
}

/** Checks a base64 signature over bytes against a raw public key. */
export async function verifyBytes(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: string,
): Promise<boolean> {
  let sig: Uint8Array;
  try {
    sig = fromBase64(signature);
  } catch {
    return false;
  }
  if (sig.length !== 64 || publicKey.length !== 32) return false;
  // WebCrypto's Ed25519 is native and ~9x faster than the JS verifier;
  // noble (same curve, same answers for honest signatures) is the fallback.
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      publicKey as Uint8Array<ArrayBuffer>,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      "Ed25519",
      key,
      sig as Uint8Array<ArrayBuffer>,
      message as Uint8Array<ArrayBuffer>,
    );
  } catch {
    const ed = await import("@noble/ed25519");
    return await ed.verifyAsync(sig, message, publicKey);
  }
}

/** Parses a public key given as a peer id, base64 or hex (32 bytes). */
export function parsePublicKey(text: string): Uint8Array {
  const trimmed = text.trim();
  if (trimmed.startsWith("12D3KooW")) return publicKeyOfPeerId(trimmed);
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    return fromHex(trimmed);
  }
  try {
    const bytes = fromBase64(trimmed);
    if (bytes.length === 32) return bytes;
  } catch {
    // fall through to the error below
  }
  throw new Error(
    "a public key is a peer id (12D3KooW…), 64 hex digits or 32 bytes of base64",
  );
}
