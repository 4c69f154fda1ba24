/**
 * Every file Phase writes is written whole or not at all: the bytes go to a
 * temporary file in the same folder, which is then renamed over the target
 * (or linked, when the target must not exist yet). A killed process leaves
 * at most a temporary file, never a truncated target; temporaries older than
 * a minute are removed the next time Phase uses the folder.
 * @module
 */
import { randomHex } from "../schemas/encoding.ts";

/** Marks temporary files in their names (`<target>.tmp-<random>`). */
export const TEMPORARY_MARK = ".tmp-";

/** Age after which a temporary file is an interrupted write's leftover. */
export const STALE_TEMPORARY_MS = 60_000;

/** How to write a file with {@link atomicWriteFile}. */
export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644 less the umask). */
  mode?: number;
  /** Fail with AlreadyExists instead of replacing an existing file. */
  createNew?: boolean;
}

/** Writes `data` to `path` atomically (temporary file, then rename). */
export async function atomicWriteFile(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temporary = `${path}${TEMPORARY_MARK}${randomHex(6)}`;
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  try {
    await Deno.writeFile(temporary, bytes, {
      createNew: true,
      mode: options.mode,
    });
    if (options.createNew) {
      // link(2) refuses an existing target, which rename(2) would replace.
      await Deno.link(temporary, path);
      await Deno.remove(temporary);
    } else {
      await Deno.rename(temporary, path);
    }
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/**
 * Removes temporary files older than {@link STALE_TEMPORARY_MS} from `dir`
 * (left by interrupted writes); a missing or unreadable folder is skipped.
 */
export async function removeStaleTemporaries(dir: string): Promise<number> {
  let removed = 0;
  try {
    const now = Date.now();
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.includes(TEMPORARY_MARK)) continue;
      const path = `${dir}/${entry.name}`;
      const info = await Deno.stat(path).catch(() => null);
      const age = now - (info?.mtime?.getTime() ?? now);
      if (age < STALE_TEMPORARY_MS) continue;
      await Deno.remove(path).then(() => removed++, () => {});
    }
  } catch {
    // Housekeeping only: a folder we cannot list has nothing of ours.
  }
  return removed;
}
