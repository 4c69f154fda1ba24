/**
 * Where Phase keeps its files: `$PHASE_HOME`, else `$XDG_DATA_HOME/phase`,
 * else `~/.local/share/phase`, unless `--data-dir` says otherwise.
 * @module
 */
import { CliError } from "./errors.ts";

/** Reads an environment variable; undefined when unset or not permitted. */
export function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The data directory. */
export function dataDir(explicit?: string): string {
  if (explicit) return explicit;
  const home = envVar("PHASE_HOME");
  if (home) return home;
  const xdg = envVar("XDG_DATA_HOME");
  if (xdg) return `${xdg}/phase`;
  const user = envVar("HOME");
  if (user) return `${user}/.local/share/phase`;
  throw new CliError(
    "no data directory: set PHASE_HOME or HOME, or pass --data-dir",
  );
}

/** Paths inside a data directory. */
export function dataPaths(
  dir: string,
): { key: string; receipts: string; modules: string } {
  return {
    key: `${dir}/node.key`,
    receipts: `${dir}/receipts`,
    modules: `${dir}/modules`,
  };
}
