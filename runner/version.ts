/**
 * The runtime's version, on its own so that the command line can print it
 * (and its help) without loading the runner.
 * @module
 */

/**
 * Version of this runtime, written into receipts. 0.3.0: one memory budget
 * per job (`memory_peak_mb` counts all of it), start functions pay fuel,
 * a run that ends over its fuel budget is `fuel_exhausted`, and declared
 * locals and bulk table instructions pay for their work.
 */
export const RUNTIME_VERSION = "0.3.0";
