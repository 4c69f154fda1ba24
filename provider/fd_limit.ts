/**
 * The open-file limit (RLIMIT_NOFILE) of this process. Deno has no API for
 * it, so util-linux `prlimit` reads it and raises the soft limit to the hard
 * one (any process may do that to itself). Where prlimit is missing or not
 * allowed, the limit is left alone; a service manager can raise it instead
 * (systemd: `LimitNOFILE=`).
 * @module
 */

/** Soft and hard open-file limits. */
export interface FileLimit {
  /** The limit in force. */
  soft: number;
  /** The most the soft limit may be raised to. */
  hard: number;
  /** True when this call raised the soft limit. */
  raised: boolean;
}

/** Soft limit set when the hard limit is unlimited. */
const UNLIMITED_TARGET = 1 << 20;

async function prlimit(args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("prlimit", {
      args: ["--pid", String(Deno.pid), ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : null;
  } catch {
    return null; // not installed, or --allow-run does not name it
  }
}

const parse = (value: string) =>
  value === "unlimited" ? Infinity : Number(value);

let raising: Promise<FileLimit | null> | undefined;

/**
 * Raises the soft open-file limit to the hard limit, once per process.
 * Returns the limits in force, or null when they cannot be read.
 */
export function raiseFileLimit(): Promise<FileLimit | null> {
  raising ??= (async () => {
    const current = await prlimit([
      "--nofile",
      "--raw",
      "--noheadings",
      "--output",
      "SOFT,HARD",
    ]);
    const [soft, hard] = (current ?? "").trim().split(/\s+/).map(parse);
    if (!Number.isFinite(soft) || Number.isNaN(hard)) return null;
    if (soft >= hard) return { soft, hard, raised: false };
    const target = Math.min(hard, UNLIMITED_TARGET);
    const set = await prlimit([
      `--nofile=${target}:${hard === Infinity ? "unlimited" : hard}`,
    ]);
    return set === null
      ? { soft, hard, raised: false }
      : { soft: target, hard, raised: true };
  })();
  return raising;
}

/**
 * Connections that fit in `soft` descriptors: each may hold a socket and an
 * open artifact, and `reserve` stay free for the rest of the process
 * (sandbox pipes, peer-to-peer sockets, the data directory).
 */
export function connectionsFor(soft: number, reserve = 128): number {
  return Math.max(16, Math.floor((soft - reserve) / 2));
}
