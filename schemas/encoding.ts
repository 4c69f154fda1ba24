/** Encodes bytes as standard base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Decodes canonical standard base64 (RFC 4648 section 4, padded); throws on
 * anything else, including encodings whose unused padding bits are not zero:
 * one byte string has exactly one accepted text, so a signature cannot be
 * altered without changing the bytes it decodes to.
 */
export function fromBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new Error("not base64");
  }
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (!hasZeroPaddingBits(text)) {
    throw new Error("not canonical base64: unused bits are not zero");
  }
  return bytes;
}

const BASE64_ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** True when the bits after the last whole byte of padded base64 are zero. */
function hasZeroPaddingBits(text: string): boolean {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (padding === 0) return true;
  const last = BASE64_ALPHABET.indexOf(text[text.length - padding - 1]);
  // One "=" leaves 2 unused bits in the last symbol, "==" leaves 4.
  return (last & (padding === 1 ? 0b11 : 0b1111)) === 0;
}

/** Encodes bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Decodes hex (either case); throws unless it is whole bytes of hex digits. */
export function fromHex(text: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new Error("not hex");
  return Uint8Array.from(text.match(/../g) ?? [], (byte) => parseInt(byte, 16));
}

/** Returns `sha256:<hex>` of the bytes. */
export async function sha256Ref(
  bytes: Uint8Array,
): Promise<`sha256:${string}`> {
  return `sha256:${await sha256Hex(bytes)}`;
}

/** Returns the sha256 of the bytes as lowercase hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return toHex(new Uint8Array(digest));
}

/** Returns `count` random bytes as lowercase hex. */
export function randomHex(count: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(count)));
}

/** Joins byte chunks into one array. */
export function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Reads a whole byte stream; calls `tooLarge` (which must throw) as soon as
 * more than `limit` bytes arrive.
 */
export async function readAllCapped(
  stream: AsyncIterable<Uint8Array>,
  limit: number,
  tooLarge: () => never,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > limit) tooLarge();
    chunks.push(chunk);
  }
  return concatBytes(chunks);
}
