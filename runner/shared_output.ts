/**
 * Captured output kept in a growable SharedArrayBuffer: the guest thread
 * appends, and the sandbox's control thread can read what was kept at any
 * moment (a timed-out guest never returns). Growing happens in place, so
 * the cost is proportional to the bytes kept, not to the number of writes.
 * @module
 */
import type { HostBudget } from "./job_memory.ts";

/** Bytes the capture grows by at a time (and takes from the budget). */
export const OUTPUT_GROW_STEP = 64 * 1024;

const KEPT = 0;
const TRUNCATED = 1;

/** One captured stream, shareable between threads. */
export interface SharedOutput {
  /** Kept bytes; grows up to the stream's limit. */
  buffer: SharedArrayBuffer;
  /** [kept bytes, truncated flag], written with Atomics. */
  state: Int32Array;
}

/**
 * Bytes a capture of `limit` holds from the start (its first step), which
 * the job's budget charges up front: a guest that spends its budget on
 * other things can still report what happened.
 */
export function initialOutputBytes(limit: number): number {
  return Math.min(limit, OUTPUT_GROW_STEP);
}

/** An empty capture that keeps at most `limit` bytes. */
export function createSharedOutput(limit: number): SharedOutput {
  return {
    buffer: new SharedArrayBuffer(initialOutputBytes(limit), {
      maxByteLength: limit,
    }),
    state: new Int32Array(new SharedArrayBuffer(8)),
  };
}

/**
 * Keeps what fits of `data` (within the capture's limit and the budget);
 * the rest is dropped and the capture marked truncated.
 */
export function appendOutput(
  output: SharedOutput,
  data: Uint8Array,
  budget: HostBudget,
): void {
  const { buffer, state } = output;
  const kept = state[KEPT];
  let wanted = Math.min(data.length, buffer.maxByteLength - kept);
  if (kept + wanted > buffer.byteLength) {
    const size = Math.min(
      buffer.maxByteLength,
      Math.ceil((kept + wanted) / OUTPUT_GROW_STEP) * OUTPUT_GROW_STEP,
    );
    if (budget.take(size - buffer.byteLength)) buffer.grow(size);
    wanted = Math.min(wanted, buffer.byteLength - kept);
  }
  if (wanted > 0) {
    new Uint8Array(buffer, kept, wanted).set(data.subarray(0, wanted));
    Atomics.store(state, KEPT, kept + wanted);
  }
  if (wanted < data.length) Atomics.store(state, TRUNCATED, 1);
}

/** A copy of the kept bytes and whether anything was dropped. */
export function readOutput(
  output: SharedOutput,
): { bytes: Uint8Array; truncated: boolean } {
  const kept = Atomics.load(output.state, KEPT);
  return {
    bytes: new Uint8Array(output.buffer, 0, kept).slice(),
    truncated: Atomics.load(output.state, TRUNCATED) === 1,
  };
}
