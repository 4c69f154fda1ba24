/**
 * The `phase.*` options of a kernel command line.
 * @module
 */

/** Boot options read from the kernel command line. */
export interface BootOptions {
  /** internet (DHT), local (mDNS) or private (nothing written, throwaway key). */
  mode: "internet" | "local" | "private";
  /** Provider base URL (skips discovery). */
  provider: string | null;
  /** Release channel. */
  channel: string;
  /** Architecture (default: the machine's own, x86_64 or aarch64). */
  arch: string;
  /** Pinned manifest keys (peer ids, hex or base64). */
  pubkeys: string[];
  /** DHT bootstrap multiaddrs. */
  bootstrap: string[];
  /** Never write to disks (tmpfs only). */
  nowrite: boolean;
  /**
   * The boot cache: a device path or LABEL=NAME (none in Private mode or
   * with phase.nowrite).
   */
  cache: string | null;
  /** Static address `ADDR/NN[,GW]`, or null for DHCP. */
  ip: string | null;
  /** 1 before kexec, 2 in the booted system. */
  stage: 1 | 2;
  /** Lowest manifest_version accepted (rollback protection). */
  minVersion: number;
  /** Power off when done or failed, instead of a rescue shell (tests). */
  poweroff: boolean;
}

/** Splits a command line into words, honouring double quotes. */
export function cmdlineWords(cmdline: string): string[] {
  return cmdline.match(/(?:[^\s"]+|"[^"]*")+/g)?.map((w) =>
    w.replace(/"/g, "")
  ) ?? [];
}

/** Reads the phase.* options; other words are ignored. */
export function parseBootOptions(cmdline: string): BootOptions {
  const values = new Map<string, string>();
  for (const word of cmdlineWords(cmdline)) {
    if (!word.startsWith("phase.")) continue;
    const eq = word.indexOf("=");
    values.set(
      eq === -1 ? word.slice(6) : word.slice(6, eq),
      eq === -1 ? "1" : word.slice(eq + 1),
    );
  }
  const list = (name: string) =>
    (values.get(name) ?? "").split(",").filter(Boolean);
  const mode = values.get("mode") ?? "internet";
  if (mode !== "internet" && mode !== "local" && mode !== "private") {
    throw new Error(
      `phase.mode must be internet, local or private, not ${mode}`,
    );
  }
  const stage = values.get("stage") === "2" ? 2 : 1;
  const minVersion = Number(values.get("min_version") ?? "0");
  if (!Number.isInteger(minVersion) || minVersion < 0) {
    throw new Error(`phase.min_version must be a non-negative integer`);
  }
  return {
    mode,
    provider: values.get("provider")?.replace(/\/+$/, "") ?? null,
    channel: values.get("channel") ?? "stable",
    // The machine's own: an aarch64 machine boots aarch64 artifacts.
    arch: values.get("arch") ?? Deno.build.arch,
    pubkeys: list("pubkey"),
    bootstrap: list("bootstrap"),
    nowrite: mode === "private" || values.has("nowrite"),
    cache: mode === "private" || values.has("nowrite")
      ? null
      : values.get("cache") ?? null,
    ip: values.get("ip") ?? null,
    stage,
    minVersion,
    poweroff: values.get("poweroff") === "1",
  };
}

/** The phase.* words to carry into the kexec'd kernel (stage and rollback floor updated). */
export function carriedOptions(
  options: BootOptions,
  provider: string,
  manifestVersion: number,
): string {
  const words = [
    `phase.mode=${options.mode}`,
    `phase.provider=${provider}`,
    `phase.channel=${options.channel}`,
    `phase.arch=${options.arch}`,
    `phase.stage=2`,
    `phase.min_version=${manifestVersion}`,
  ];
  if (options.pubkeys.length) {
    words.push(`phase.pubkey=${options.pubkeys.join(",")}`);
  }
  if (options.bootstrap.length) {
    words.push(`phase.bootstrap=${options.bootstrap.join(",")}`);
  }
  if (options.ip) words.push(`phase.ip=${options.ip}`);
  if (options.nowrite && options.mode !== "private") {
    words.push("phase.nowrite");
  }
  if (options.cache) words.push(`phase.cache=${options.cache}`);
  if (options.poweroff) words.push("phase.poweroff=1");
  return words.join(" ");
}
