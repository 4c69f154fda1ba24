/**
 * A job's limits: their defaults and the ranges runJob accepts, on their own
 * so that the command line's help can show them without loading the runner.
 * @module
 */
import { MIB } from "./wasm_binary.ts";

/** Defaults applied when neither the caller nor a manifest sets a limit. */
export const DEFAULT_LIMITS = {
  memoryMb: 128,
  timeoutSeconds: 30,
  outputBytes: 1024 * 1024,
  /**
   * Fuel per second of `timeout_seconds` when no budget is given, so that
   * the default budget does not stop a job before its wall clock would:
   * about 5x the fastest burn measured (examples/src/fuel_dense.wat, a loop
   * of instructions the compiler removes: 2.2e12 fuel/s on the 2-core
   * reference box; compiled C burns about 1e10/s). `deno task bench`
   * prints both rates. A hand-made loop with a longer straight-line run
   * can burn faster still; it then stops with fuel exhausted, as every run
   * with that budget would.
   */
  fuelPerSecond: 10_000_000_000_000,
} as const;

/** The largest fuel budget (fuel is counted exactly in a JSON number). */
export const MAX_FUEL: number = Number.MAX_SAFE_INTEGER;

/** A limit's allowed range; `integer` when it must be a whole number. */
export interface LimitRange {
  /** Smallest value (exclusive when `aboveMin`). */
  min: number;
  /** Largest value. */
  max: number;
  /** Whole numbers only. */
  integer: boolean;
  /** True when `min` itself is not allowed. */
  aboveMin?: boolean;
  /** Unit shown in messages. */
  unit: string;
}

/** The ranges runJob accepts (the job manifest schema's, where it has one). */
export const LIMIT_RANGES: Readonly<
  Record<keyof AppliedLimitsInput, LimitRange>
> = {
  memoryMb: { min: 1, max: 4096, integer: true, unit: "MiB" },
  timeoutSeconds: {
    min: 0,
    max: 86400,
    integer: false,
    aboveMin: true,
    unit: "seconds",
  },
  outputBytes: { min: 0, max: 64 * MIB, integer: true, unit: "bytes" },
  fuel: { min: 1, max: MAX_FUEL, integer: true, unit: "fuel" },
};

/** The limits a job may set. */
export interface AppliedLimitsInput {
  /** Memory budget in MiB. */
  memoryMb: number;
  /** Wall-clock limit in seconds. */
  timeoutSeconds: number;
  /** Kept bytes per output stream. */
  outputBytes: number;
  /** Fuel budget. */
  fuel: number;
}

/** What limit `name` accepts, in words: `a whole number from 1 to 4096 MiB`. */
export function limitRangeText(name: keyof AppliedLimitsInput): string {
  const range = LIMIT_RANGES[name];
  const low = range.aboveMin ? `above ${range.min}` : `from ${range.min}`;
  return `${
    range.integer ? "a whole number" : "a number"
  } ${low} to ${range.max} ${range.unit}`;
}

/**
 * Why `value` is outside the range of limit `name`, as one line, or null
 * when it is inside.
 */
export function limitProblem(
  name: keyof AppliedLimitsInput,
  value: unknown,
): string | null {
  const range = LIMIT_RANGES[name];
  const wanted = limitRangeText(name);
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return `wants ${wanted}, got ${value}`;
  }
  if (
    (range.integer && !Number.isInteger(value)) ||
    value < range.min || (range.aboveMin && value === range.min) ||
    value > range.max
  ) {
    return `wants ${wanted}, got ${value}`;
  }
  return null;
}

/** True for a usable fuel budget: a whole number from 1 to {@link MAX_FUEL}. */
export function isFuelBudget(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}
