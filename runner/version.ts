/**
 * The runtime's version, alone in its module so that `phase version` and
 * `phase help` load nothing else of the runner.
 * @module
 */

/**
 * Version of this runtime, written into receipts. 0.3.0: one memory budget
 * per job (`memory_peak_mb` counts all of it), start functions pay fuel,
 * and a run that ends over its fuel budget is `fuel_exhausted`.
 */
export const RUNTIME_VERSION = "0.3.0";
