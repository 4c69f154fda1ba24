import * as ed from "@noble/ed25519";
import { publicKeyFromRaw } from "@libp2p/crypto/keys";
import { peerIdFromPublicKey, peerIdFromString } from "@libp2p/peer-id";
import { fromBase64, toBase64 } from "./encoding.ts";

/** An Ed25519 signing key with the libp2p peer id derived from it. */
export interface NodeKey {
  /** The 32-byte private seed (RFC 8032 secret key). */
  readonly seed: Uint8Array;
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** The libp2p peer id (`12D3KooW…`) of the public key. */
  readonly peerId: string;
}

/** Builds a key from a 32-byte seed. */
export async function keyFromSeed(seed: Uint8Array): Promise<NodeKey> {
  if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
  const publicKey = await ed.getPublicKeyAsync(seed);
  return { seed, publicKey, peerId: peerIdOfPublicKey(publicKey) };
}

/** Creates a fresh random key. */
export function generateKey(): Promise<NodeKey> {
  return keyFromSeed(crypto.getRandomValues(new Uint8Array(32)));
}

/** The libp2p peer id string of a raw Ed25519 public key. */
export function peerIdOfPublicKey(publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString();
}

/**
 * The raw Ed25519 public key inside a peer id. Throws for malformed ids and
 * for ids that do not embed an Ed25519 key.
 */
export function publicKeyOfPeerId(peerId: string): Uint8Array {
  let parsed;
  try {
    parsed = peerIdFromString(peerId);
  } catch {
    throw new Error(`not a libp2p peer id: ${JSON.stringify(peerId)}`);
  }
  if (parsed.type !== "Ed25519" || !parsed.publicKey) {
    throw new Error(`peer id ${peerId} does not carry an Ed25519 key`);
  }
  return parsed.publicKey.raw;
}

/** Signs bytes; returns the base64 signature. */
export async function signBytes(
  key: NodeKey,
  message: Uint8Array,
): Promise<string> {
  return toBase64(await ed.signAsync(message, key.seed));
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
    return await ed.verifyAsync(sig, message, publicKey);
  }
}

/** Parses a public key given as a peer id, base64 or hex (32 bytes). */
export function parsePublicKey(text: string): Uint8Array {
  const trimmed = text.trim();
  if (trimmed.startsWith("12D3KooW")) return publicKeyOfPeerId(trimmed);
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    return Uint8Array.from(
      trimmed.match(/../g)!,
      (byte) => parseInt(byte, 16),
    );
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
