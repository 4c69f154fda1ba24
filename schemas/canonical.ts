import canonicalize from "canonicalize";

/**
 * RFC 8785 (JCS) bytes of a JSON value. Refuses values JCS cannot represent
 * (non-finite numbers, undefined at the top level).
 */
export function canonicalBytes(value: unknown): Uint8Array {
  const text = canonicalize(value);
  if (text === undefined) throw new Error("value has no JSON form");
  return new TextEncoder().encode(text);
}

/** JCS bytes of a document without one member (its signature or signatures). */
export function signingBytesWithout<T extends object>(
  document: T,
  member: keyof T,
): Uint8Array {
  const copy: Partial<T> = { ...document };
  delete copy[member];
  return canonicalBytes(copy);
}

/** JCS bytes of a signed document without its `signature` member. */
export function signingBytes(document: { signature?: unknown }): Uint8Array {
  return signingBytesWithout(document, "signature");
}
