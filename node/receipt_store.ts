/**
 * The receipts a node keeps of the jobs it ran for others: a folder of
 * JSON files bounded by count and bytes, oldest removed first.
 *
 * File names never come from a job's input: each is the time the receipt was
 * stored and a hash of its signature (`<ms>-<16 hex>.json`), so no `job_id`
 * can name, replace or escape a file. Writes are atomic (runner's
 * atomic_file.ts) and temporaries of interrupted runs are removed when the
 * store opens.
 * @module
 */
import type { Receipt } from "../schemas/mod.ts";
import { sha256Hex } from "../schemas/encoding.ts";
import {
  atomicWriteFile,
  removeStaleTemporaries,
} from "../runner/atomic_file.ts";

/** Bounds of a receipt store. */
export interface ReceiptStoreOptions {
  /** The folder (created on first write). */
  dir: string;
  /** Most receipts kept (default {@link DEFAULT_RECEIPT_LIMITS}.maxCount). */
  maxCount?: number;
  /** Most bytes kept (default {@link DEFAULT_RECEIPT_LIMITS}.maxBytes). */
  maxBytes?: number;
}

/** Default bounds: 10,000 receipts or 256 MiB, whichever is reached first. */
export const DEFAULT_RECEIPT_LIMITS = {
  maxCount: 10_000,
  maxBytes: 256 * 1024 * 1024,
} as const;

/** How many receipt summaries a store keeps in memory. */
export const RECENT_SUMMARIES = 16;

/** What a status page shows of one receipt. */
export interface ReceiptSummary {
  /** The job's id. */
  job_id: string;
  /** When the receipt was signed. */
  timestamp: string;
  /** How the run ended. */
  status: string;
  /** The guest's exit code, if it exited. */
  exit_code: number | null;
  /** The module that ran. */
  module_hash: string;
}

function summary(receipt: Receipt): ReceiptSummary {
  return {
    job_id: receipt.job_id,
    timestamp: receipt.timestamp,
    status: receipt.execution.status,
    exit_code: receipt.execution.exit_code,
    module_hash: receipt.module_hash,
  };
}

/** One stored receipt file. */
export interface StoredReceipt {
  /** File name inside the store's folder. */
  name: string;
  /** Its size in bytes. */
  size: number;
}

const NAME = /^\d{13}-[0-9a-f]{16}\.json$/;

/** A bounded folder of receipts. */
export class ReceiptStore {
  readonly #dir: string;
  readonly #maxCount: number;
  readonly #maxBytes: number;
  /** Oldest first; read from the folder once, on first use. */
  #index: Promise<StoredReceipt[]> | null = null;
  #bytes = 0;
  /** Summaries of the newest receipts, oldest first, once first asked for. */
  #recent: ReceiptSummary[] | null = null;
  /** Serialises writes so the index and the folder agree. */
  #queue: Promise<unknown> = Promise.resolve();

  /** Creates the store; nothing is read or written until first use. */
  constructor(options: ReceiptStoreOptions) {
    this.#dir = options.dir;
    this.#maxCount = options.maxCount ?? DEFAULT_RECEIPT_LIMITS.maxCount;
    this.#maxBytes = options.maxBytes ?? DEFAULT_RECEIPT_LIMITS.maxBytes;
    if (!(this.#maxCount >= 1) || !(this.#maxBytes >= 1)) {
      throw new RangeError("a receipt store keeps at least one receipt");
    }
  }

  /** The folder. */
  get dir(): string {
    return this.#dir;
  }

  /** Stores a receipt; returns the path written. Removes the oldest beyond the bounds. */
  add(receipt: Receipt): Promise<string> {
    const next = this.#queue.then(() => this.#add(receipt));
    this.#queue = next.catch(() => {});
    return next;
  }

  /** The stored receipts, oldest first. */
  async list(): Promise<StoredReceipt[]> {
    await this.#queue;
    return [...await this.#load()];
  }

  /**
   * Summaries of the newest receipts (at most {@link RECENT_SUMMARIES}),
   * newest first. Kept in memory: the newest files are read once, on the
   * first call (receipts over 2 MiB are skipped), and every receipt added
   * since is summarised as it is stored, so a status page costs no disk
   * reads however often it is asked.
   */
  async recent(count: number): Promise<ReceiptSummary[]> {
    await this.#queue;
    if (!this.#recent) {
      const stored = (await this.#load()).slice(-RECENT_SUMMARIES);
      const read: ReceiptSummary[] = [];
      for (const { name, size } of stored) {
        if (size > 2 * 1024 * 1024) continue;
        try {
          read.push(
            summary(
              JSON.parse(await Deno.readTextFile(`${this.#dir}/${name}`)),
            ),
          );
        } catch {
          // removed or damaged meanwhile
        }
      }
      this.#recent ??= read;
    }
    return this.#recent.slice(-count).reverse();
  }

  #load(): Promise<StoredReceipt[]> {
    // Callers share one reading; a failed one is tried again next time.
    this.#index ??= this.#read().catch((error) => {
      this.#index = null;
      throw error;
    });
    return this.#index;
  }

  async #read(): Promise<StoredReceipt[]> {
    const index: StoredReceipt[] = [];
    await removeStaleTemporaries(this.#dir);
    // Once per store: synchronous calls, about ten times faster than
    // awaiting a stat per file (a folder of 10,000 receipts in ~40 ms, not
    // ~400 ms, paid by every `phase run`).
    try {
      for (const entry of Deno.readDirSync(this.#dir)) {
        if (!entry.isFile || !NAME.test(entry.name)) continue;
        let size: number;
        try {
          size = Deno.statSync(`${this.#dir}/${entry.name}`).size;
        } catch {
          continue; // removed meanwhile
        }
        index.push({ name: entry.name, size });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    index.sort((a, b) => a.name < b.name ? -1 : 1);
    this.#bytes = index.reduce((n, r) => n + r.size, 0);
    return index;
  }

  async #add(receipt: Receipt): Promise<string> {
    const index = await this.#load();
    const bytes = new TextEncoder().encode(
      JSON.stringify(receipt, null, 2) + "\n",
    );
    const digest = await sha256Hex(new TextEncoder().encode(receipt.signature));
    const name = `${String(Date.now()).padStart(13, "0")}-${
      digest.slice(0, 16)
    }.json`;
    await Deno.mkdir(this.#dir, { recursive: true });
    const path = `${this.#dir}/${name}`;
    await atomicWriteFile(path, bytes);
    const existing = index.findIndex((r) => r.name === name);
    if (existing >= 0) this.#bytes -= index.splice(existing, 1)[0].size;
    index.push({ name, size: bytes.length });
    if (this.#recent) {
      this.#recent.push(summary(receipt));
      if (this.#recent.length > RECENT_SUMMARIES) this.#recent.shift();
    }
    this.#bytes += bytes.length;
    while (
      index.length > this.#maxCount ||
      (this.#bytes > this.#maxBytes && index.length > 1)
    ) {
      const oldest = index.shift()!;
      this.#bytes -= oldest.size;
      await Deno.remove(`${this.#dir}/${oldest.name}`).catch(() => {});
    }
    return path;
  }
}
