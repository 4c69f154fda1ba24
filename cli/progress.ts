/**
 * Progress lines for long operations: redrawn in place on a terminal,
 * silent otherwise (scripts use --json for a summary).
 * @module
 */

const MIB = 1024 * 1024;

/** Formats a byte count. */
export function formatBytes(bytes: number): string {
  if (bytes >= MIB) return `${(bytes / MIB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** A progress line on stderr, shown only when stderr is a terminal. */
export class ProgressLine {
  #enabled: boolean;
  #last = 0;
  #started = performance.now();
  #encoder = new TextEncoder();

  /** `enabled` defaults to stderr being a terminal. */
  constructor(readonly label: string, enabled = Deno.stderr.isTerminal()) {
    this.#enabled = enabled;
  }

  /** Redraws (at most 10 times a second). */
  update(received: number, total: number | null): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#last < 100 && received !== total) return;
    this.#last = now;
    const rate = received / Math.max((now - this.#started) / 1000, 0.001);
    const share = total ? ` ${Math.floor((received / total) * 100)}%` : "";
    const of = total ? ` / ${formatBytes(total)}` : "";
    Deno.stderr.writeSync(this.#encoder.encode(
      `\r\x1b[K${this.label}${share} ${formatBytes(received)}${of} ${
        formatBytes(rate)
      }/s`,
    ));
  }

  /** Prints a message on its own line. */
  note(message: string): void {
    if (this.#enabled) {
      Deno.stderr.writeSync(this.#encoder.encode(`\r\x1b[K${message}\n`));
    }
  }

  /** Ends the line. */
  done(): void {
    if (this.#enabled) Deno.stderr.writeSync(this.#encoder.encode("\n"));
  }
}
