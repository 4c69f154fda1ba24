/**
 * Phase document formats: JSON Schemas, types, validation, canonical bytes
 * and Ed25519 signatures. Everything else in Phase depends on this folder and
 * this folder depends on nothing else in Phase.
 * @module
 */
export * from "./types.ts";
export * from "./documents.ts";
export * from "./validate.ts";
export * from "./canonical.ts";
export * from "./encoding.ts";
export * from "./keys.ts";
export * from "./receipt.ts";
export * from "./boot_manifest.ts";
export * from "./seed_digest.ts";
export * from "./release_signature.ts";
