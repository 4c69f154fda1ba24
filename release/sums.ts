/**
 * A release folder's SHA256SUMS (the `sha256sum` format, so `sha256sum -c`
 * checks it too) and its signature SHA256SUMS.sig, and the verification of
 * both: every file listed matches, nothing unlisted is present, the boot
 * manifests inside are signed by the same pinned keys.
 * @module
 */
import {
  type ReleaseSignature,
  releaseSignatureBytes,
  signReleaseSums,
  verifyManifest,
  verifyReleaseSums,
} from "../schemas/mod.ts";
import type { NodeKey } from "../schemas/mod.ts";
// The file alone, not provider/mod.ts: verifying loads nothing of libp2p
// (whose logger reads the environment), so it runs with read access only.
import { sha256File } from "../provider/artifacts.ts";

/** The checksum file's name. */
export const SUMS_FILE = "SHA256SUMS";
/** Its signature's name. */
export const SIGNATURE_FILE = "SHA256SUMS.sig";
/** Most bytes of SHA256SUMS or its signature a verifier reads. */
const MAX_LIST_BYTES = 1024 * 1024;
/** Most files a release may list. */
const MAX_FILES = 4096;
/** A listed name: relative, plain segments, no `..`. */
const NAME =
  /^(?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\/){0,8}[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const LINE = /^([0-9a-f]{64}) {2}(.+)$/;

/** Every regular file under `dir` (relative, sorted); anything else is an error. */
async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (relative: string) => {
    for await (
      const entry of Deno.readDir(relative ? `${dir}/${relative}` : dir)
    ) {
      const name = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(name);
      else if (entry.isFile) files.push(name);
      else throw new ReleaseError(`${name} is not a regular file`);
      if (files.length > MAX_FILES) {
        throw new ReleaseError(`more than ${MAX_FILES} files`);
      }
    }
  };
  await walk("");
  return files.sort();
}

/** A release that does not verify, or cannot be signed; one line. */
export class ReleaseError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ReleaseError";
  }
}

/**
 * Writes `dir/SHA256SUMS` for every file in `dir` and signs it with `key`
 * into `dir/SHA256SUMS.sig`.
 */
export async function signRelease(
  dir: string,
  key: NodeKey,
  options: { version: string; now?: Date },
): Promise<{ files: number; signature: ReleaseSignature }> {
  const files = (await listFiles(dir)).filter((name) =>
    name !== SUMS_FILE && name !== SIGNATURE_FILE
  );
  const lines: string[] = [];
  for (const name of files) {
    if (!NAME.test(name)) throw new ReleaseError(`cannot list ${name}`);
    lines.push(`${await sha256File(`${dir}/${name}`)}  ${name}\n`);
  }
  const sums = new TextEncoder().encode(lines.join(""));
  const signature = await signReleaseSums(sums, key, options);
  await Deno.writeFile(`${dir}/${SUMS_FILE}`, sums);
  await Deno.writeFile(
    `${dir}/${SIGNATURE_FILE}`,
    releaseSignatureBytes(signature),
  );
  return { files: files.length, signature };
}

/** What {@link verifyRelease} found. */
export type ReleaseCheck =
  | { valid: true; signer: string; version: string; files: number }
  | { valid: false; reason: string };

async function readBounded(path: string): Promise<Uint8Array | null> {
  let file;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return null;
  }
  try {
    const info = await file.stat();
    if (!info.isFile || info.size > MAX_LIST_BYTES) return null;
    const bytes = new Uint8Array(info.size);
    let read = 0;
    while (read < bytes.length) {
      const n = await file.read(bytes.subarray(read));
      if (n === null) return null;
      read += n;
    }
    return bytes;
  } finally {
    file.close();
  }
}

/**
 * Checks a release folder: the signature of SHA256SUMS by a pinned key,
 * every listed file's sha256, no file that is not listed, and the signature
 * of every boot manifest (`…/manifest.json`) by a pinned key.
 */
export async function verifyRelease(
  dir: string,
  trustedKeys: Uint8Array[],
  options: { now?: Date } = {},
): Promise<ReleaseCheck> {
  const fail = (reason: string): ReleaseCheck => ({ valid: false, reason });
  const sums = await readBounded(`${dir}/${SUMS_FILE}`);
  const signatureFile = await readBounded(`${dir}/${SIGNATURE_FILE}`);
  if (!sums) return fail(`${SUMS_FILE} is missing or too large`);
  if (!signatureFile) return fail(`${SIGNATURE_FILE} is missing or too large`);
  const verdict = await verifyReleaseSums(sums, signatureFile, trustedKeys);
  if (!verdict.valid) return fail(verdict.reason);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(sums);
  } catch {
    return fail(`${SUMS_FILE} is not UTF-8`);
  }
  if (text.length > 0 && !text.endsWith("\n")) {
    return fail(`${SUMS_FILE} does not end with a line break`);
  }
  const listed = new Map<string, string>();
  for (const line of text.split("\n").slice(0, -1)) {
    const match = line.match(LINE);
    if (!match || !NAME.test(match[2])) {
      return fail(
        `${SUMS_FILE}: bad line ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    const [, hash, name] = match;
    if (name === SUMS_FILE || name === SIGNATURE_FILE || listed.has(name)) {
      return fail(`${SUMS_FILE} lists ${name} twice or lists itself`);
    }
    listed.set(name, hash);
  }
  let present: string[];
  try {
    present = await listFiles(dir);
  } catch (error) {
    return fail(
      error instanceof ReleaseError ? error.message : `${dir} is unreadable`,
    );
  }
  for (const name of present) {
    if (name === SUMS_FILE || name === SIGNATURE_FILE) continue;
    if (!listed.has(name)) return fail(`${name} is not in ${SUMS_FILE}`);
  }
  for (const [name, hash] of listed) {
    let actual: string;
    try {
      actual = await sha256File(`${dir}/${name}`);
    } catch {
      return fail(`${name} is missing`);
    }
    if (actual !== hash) {
      return fail(`${name}: sha256 mismatch (changed bytes)`);
    }
  }
  for (const name of listed.keys()) {
    if (name !== "manifest.json" && !name.endsWith("/manifest.json")) continue;
    let manifest: unknown;
    try {
      manifest = JSON.parse(await Deno.readTextFile(`${dir}/${name}`));
    } catch {
      return fail(`${name} is not JSON`);
    }
    const checked = await verifyManifest(manifest, {
      trustedKeys,
      now: options.now,
    });
    if (!checked.valid) return fail(`${name}: ${checked.reason}`);
  }
  return {
    valid: true,
    signer: verdict.signer,
    version: verdict.signature.version,
    files: listed.size,
  };
}
