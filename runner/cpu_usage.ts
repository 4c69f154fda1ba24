/**
 * The process's CPU time, for receipts and the guest's CPU-time clock.
 *
 * Deno's runtime answers this itself (`Deno.cpuUsage`, the call behind its
 * `node:process`), but does not declare it in its types; importing
 * `node:process` instead starts Node compatibility in the guest thread,
 * about 10 ms of every cold `phase run`. A runtime without the call gets
 * the `node:process` answer, which is the same figure.
 * @module
 */

/** CPU time used by this process so far, in microseconds. */
export interface CpuUsage {
  /** Time in user mode. */
  user: number;
  /** Time in the kernel on the process's behalf. */
  system: number;
}

const runtime = Deno as unknown as { cpuUsage?: () => CpuUsage };

/** Reads the process's CPU time now. */
export const cpuUsage: () => CpuUsage = typeof runtime.cpuUsage === "function"
  ? runtime.cpuUsage.bind(Deno)
  : (await import("node:process")).default.cpuUsage;
