/**
 * Captured output kept in a resizable ArrayBuffer that grows in place, so
 * the cost is proportional to the bytes kept, not to the number of writes.
 * @module
 */
import type { HostBudget } from "./job_memory.ts";

/** Bytes the capture grows by at a time (and takes from the budget). */
export const OUTPUT_GROW_STEP = 64 * 1024;

/** One captured stream. */
export interface OutputBuffer {
  /** Kept bytes; grows up to the stream's limit. */
  buffer: ArrayBuffer;
  /** Bytes kept so far. */
  kept: number;
  /** A write went past the limit or the budget. */
  truncated: boolean;
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
export function createOutputBuffer(limit: number): OutputBuffer {
  return {
    buffer: new ArrayBuffer(initialOutputBytes(limit), {
      maxByteLength: limit,
    }),
    kept: 0,
    truncated: false,
  };
}

/**
 * Keeps what fits of `data` (within the capture's limit and the budget);
 * the rest is dropped and the capture marked truncated.
 */
export function appendOutput(
  output: OutputBuffer,
  data: Uint8Array,
  budget: HostBudget,
): void {
  const { buffer, kept } = output;
  let wanted = Math.min(data.length, buffer.maxByteLength - kept);
  if (kept + wanted > buffer.byteLength) {
    const size = Math.min(
      buffer.maxByteLength,
      Math.ceil((kept + wanted) / OUTPUT_GROW_STEP) * OUTPUT_GROW_STEP,
    );
    if (budget.take(size - buffer.byteLength)) buffer.resize(size);
    wanted = Math.min(wanted, buffer.byteLength - kept);
  }
  if (wanted > 0) {
    new Uint8Array(buffer, kept, wanted).set(data.subarray(0, wanted));
    output.kept = kept + wanted;
  }
  if (wanted < data.length) output.truncated = true;
}

/** A copy of the kept bytes and whether anything was dropped. */
export function readOutput(
  output: OutputBuffer,
): { bytes: Uint8Array; truncated: boolean } {
  return {
    bytes: new Uint8Array(output.buffer, 0, output.kept).slice(),
    truncated: output.truncated,
  };
}
