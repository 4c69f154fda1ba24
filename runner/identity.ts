/**
 * The node's identity: an Ed25519 key kept in a file (created on first use,
 * mode 0600) or an ephemeral key that is never written.
 * @module
 */
import { atomicWriteFile } from "./atomic_file.ts";
import { fromBase64, toBase64 } from "../schemas/encoding.ts";
import { generateKey, keyFromSeed, type NodeKey } from "../schemas/keys.ts";

/** A key file that cannot be used; the message is one line. */
export class IdentityError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "IdentityError";
  }
}

/** Where the identity comes from. */
export interface IdentityOptions {
  /**
   * Key file path; created when missing (unless `ephemeral`). Its folder
   * must exist unless `createFolder` is set: a mistyped `--key` is an
   * error, not a new identity in a new folder.
   */
  path: string;
  /** Use a fresh in-memory key and write nothing. */
  ephemeral?: boolean;
  /** Create the key file's folder when missing (the data directory's key). */
  createFolder?: boolean;
}

/** How {@link writeKeyFile} writes. */
export interface WriteKeyOptions {
  /** Create the folder when missing (default: it must exist). */
  createFolder?: boolean;
}

/** The key file's JSON form. */
interface KeyFile {
  type: "phase-node-key";
  version: 1;
  algorithm: "ed25519";
  seed: string;
  peer_id: string;
}

/** Serialises a key for a key file. */
export function encodeKeyFile(key: NodeKey): string {
  const file: KeyFile = {
    type: "phase-node-key",
    version: 1,
    algorithm: "ed25519",
    seed: toBase64(key.seed),
    peer_id: key.peerId,
  };
  return JSON.stringify(file, null, 2) + "\n";
}

/** Parses a key file's text; `path` is for messages only. */
export async function decodeKeyFile(
  text: string,
  path: string,
): Promise<NodeKey> {
  const corrupt = (why: string) =>
    new IdentityError(`key file ${path} is corrupt: ${why}`);
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt("not JSON");
  }
  if (
    parsed?.type !== "phase-node-key" || parsed.version !== 1 ||
    parsed.algorithm !== "ed25519" || typeof parsed.seed !== "string"
  ) {
    throw corrupt("not a version 1 Phase Ed25519 key");
  }
  let seed: Uint8Array;
  try {
    seed = fromBase64(parsed.seed);
  } catch {
    throw corrupt("seed is not base64");
  }
  if (seed.length !== 32) throw corrupt("seed is not 32 bytes");
  const key = await keyFromSeed(seed);
  if (parsed.peer_id !== undefined && parsed.peer_id !== key.peerId) {
    throw corrupt("peer_id does not match the seed");
  }
  return key;
}

/**
 * Writes a new key file with mode 0600, whole or not at all; refuses to
 * overwrite one, and to create its folder unless asked to.
 */
export async function writeKeyFile(
  path: string,
  key: NodeKey,
  options: WriteKeyOptions = {},
): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  try {
    if (options.createFolder && dir) {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    } else if (!(await Deno.stat(dir || "/").catch(() => null))?.isDirectory) {
      throw new IdentityError(
        `cannot write key file ${path}: the folder ${
          dir || "/"
        } does not exist`,
      );
    }
    await atomicWriteFile(path, encodeKeyFile(key), {
      createNew: true,
      mode: 0o600,
    });
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new IdentityError(`key file ${path} already exists`);
    }
    throw new IdentityError(
      `cannot write key file ${path}: ${(error as Error).message}`,
    );
  }
}

/** Loads the node key, creating the key file on first use. */
export async function loadIdentity(options: IdentityOptions): Promise<NodeKey> {
  if (options.ephemeral) return await generateKey();
  let text: string;
  try {
    const info = await Deno.stat(options.path);
    if (!info.isFile) {
      throw new IdentityError(`key file ${options.path} is not a file`);
    }
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      throw new IdentityError(
        `key file ${options.path} is readable by others (mode ${
          (info.mode & 0o777).toString(8)
        }); run: chmod 600 ${options.path}`,
      );
    }
    text = await Deno.readTextFile(options.path);
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      const key = await generateKey();
      await writeKeyFile(options.path, key, {
        createFolder: options.createFolder,
      });
      return key;
    }
    throw new IdentityError(
      `cannot read key file ${options.path}: ${(error as Error).message}`,
    );
  }
  return await decodeKeyFile(text, options.path);
}
