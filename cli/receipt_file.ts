/**
 * Where `--receipt FILE` may write: a new file, or an older receipt. Any
 * other existing file (the node key, the module being run, a document) is
 * refused before the job runs, so a slip of the operator's never destroys it.
 * @module
 */
import { atomicWriteFile } from "../runner/atomic_file.ts";
import type { Receipt } from "../schemas/mod.ts";
import { CliError } from "./errors.ts";

/** Largest file read to tell whether it is a receipt. */
const MAX_RECEIPT_FILE = 32 * 1024 * 1024;

/** True when `text` parses as something shaped like a Phase receipt. */
function looksLikeReceipt(text: string): boolean {
  try {
    const doc = JSON.parse(text);
    return typeof doc === "object" && doc !== null && doc.version === 1 &&
      typeof doc.signature === "string" &&
      typeof doc.node_peer_id === "string";
  } catch {
    return false;
  }
}

/**
 * Refuses a `--receipt` target that exists and is not a receipt; call it
 * before the job runs.
 */
export async function checkReceiptTarget(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new CliError(
      `cannot use --receipt ${path}: ${
        (error as Error).message.split("\n")[0]
      }`,
    );
  }
  const receipt = info.isFile && info.size <= MAX_RECEIPT_FILE &&
    looksLikeReceipt(await Deno.readTextFile(path).catch(() => ""));
  if (!receipt) {
    throw new CliError(
      `--receipt ${path} exists and is not a receipt; refusing to overwrite it`,
    );
  }
}

/** Writes a receipt to `path` atomically. */
export async function writeReceiptFile(
  path: string,
  receipt: Receipt,
): Promise<void> {
  await atomicWriteFile(path, JSON.stringify(receipt, null, 2) + "\n");
}
