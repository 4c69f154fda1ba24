/**
 * The one memory budget of a job (`memory_mb`): everything a guest can make
 * its sandbox hold is charged to it. Fixed at the start: standard input and
 * the module's tables. As the guest runs: its linear memory (`memory.grow`
 * asks the instrumented page limit this budget keeps up to date) and what
 * the host holds for it — scratch file bytes, entries and names, and kept
 * output. A charge that does not fit fails the way the resource fails
 * (ENOSPC, a dropped write, `memory.grow` answering -1), so the sandbox
 * never holds more than the budget plus a fixed overhead of its own.
 * @module
 */
import { WASM_PAGE } from "./wasm_binary.ts";

/** What host-side stores take their bytes from. */
export interface HostBudget {
  /** Takes `bytes`; false (and nothing taken) when they do not fit. */
  take(bytes: number): boolean;
  /** Gives back bytes taken earlier. */
  give(bytes: number): void;
}

/** A budget that never refuses, for stores used outside a job. */
export const UNLIMITED_BUDGET: HostBudget = {
  take: () => true,
  give: () => {},
};

/** The budget of one guest run. */
export class JobMemory implements HostBudget {
  #held = 0;
  #peak: number;
  #linearBytes: () => number = () => 0;
  #setPageLimit: (pages: number) => void = () => {};

  /**
   * `capacity` is the job's budget in bytes; `fixed` what is charged for
   * the whole run (standard input, tables).
   */
  constructor(readonly capacity: number, readonly fixed: number) {
    this.#peak = fixed;
  }

  /**
   * Connects the guest once instantiated: how big its linear memory is, and
   * how to set the page limit its `memory.grow` checks.
   */
  attach(
    linearBytes: () => number,
    setPageLimit: (pages: number) => void,
  ): void {
    this.#linearBytes = linearBytes;
    this.#setPageLimit = setPageLimit;
    this.#update();
  }

  take(bytes: number): boolean {
    const total = this.fixed + this.#held + this.#linearBytes() + bytes;
    if (total > this.capacity) return false;
    this.#held += bytes;
    if (total > this.#peak) this.#peak = total;
    this.#update();
    return true;
  }

  give(bytes: number): void {
    this.#held -= bytes;
    this.#update();
  }

  /** Bytes the host holds for the guest now (beyond the fixed part). */
  get held(): number {
    return this.#held;
  }

  /** The most the job used at once: fixed, held and linear memory. */
  get peak(): number {
    return Math.max(
      this.#peak,
      this.fixed + this.#held + this.#linearBytes(),
    );
  }

  #update(): void {
    this.#setPageLimit(
      Math.max(
        0,
        Math.floor((this.capacity - this.fixed - this.#held) / WASM_PAGE),
      ),
    );
  }
}
