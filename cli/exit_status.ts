/**
 * The command line's exit statuses, in one place for the commands that
 * return them and the help that documents them.
 * @module
 */
import type { Receipt } from "../schemas/types.ts";

/** Exit statuses every command may return. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** A failure the user can act on (one line on stderr says which). */
  failure: 1,
  /** A bad command line. */
  usage: 2,
  /** A bug: an error the program did not expect. */
  internal: 70,
} as const;

/**
 * Exit statuses for runs that did not end by the guest's own exit. A guest
 * that exits gives its own code when it is 0-255; a shell keeps only 8 bits,
 * so any larger code exits 255 (never 0 for a non-zero code; the receipt
 * keeps the full value).
 */
export const EXIT_STATUS = {
  timeout: 124,
  memory_limit: 125,
  fuel_exhausted: 124,
  trap: 134,
} as const;

/** The exit status for guest exit codes above 255. */
export const LARGE_EXIT_STATUS = 255;

/**
 * The process exit status for a receipt: the guest's (255 for codes above
 * 255), or EXIT_STATUS.
 */
export function exitStatusOf(receipt: Receipt): number {
  const { status, exit_code } = receipt.execution;
  if (status !== "exited") return EXIT_STATUS[status];
  const code = exit_code ?? 0;
  return code >= 0 && code <= 255 ? code : LARGE_EXIT_STATUS;
}
