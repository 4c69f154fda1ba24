/**
 * Does this process hold any write permission? Deno answers that for all
 * files, or for one path at a time; a grant scoped to some folder shows up
 * only when that folder is asked about. So Private mode asks about every
 * path Phase could write to, plus the usual places, and reads Deno's own
 * flags from the command line when it may.
 * @module
 */
import { envVar } from "./paths.ts";

function granted(path?: string): boolean {
  try {
    const descriptor: Deno.PermissionDescriptor = path === undefined
      ? { name: "write" }
      : { name: "write", path };
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/** A write-granting flag among Deno's own flags (before the script), if any. */
function writeFlagOnCommandLine(): string | null {
  let args: string[];
  try {
    args = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  } catch {
    return null;
  }
  // deno <subcommand> <flags…> <script> <script args…>
  for (const arg of args.slice(2)) {
    if (!arg.startsWith("-")) break;
    if (
      /^(--allow-write|-W)(=|$)/.test(arg) || /^(--allow-all|-A)$/.test(arg)
    ) {
      return arg;
    }
  }
  return null;
}

/**
 * The first write permission found, described for a message ("all files",
 * a path, or a command-line flag), or null when none is granted. `paths`
 * are the places this command could write to.
 */
export function findWritePermission(
  paths: (string | undefined)[],
): string | null {
  if (granted()) return "all files";
  let cwd: string | undefined;
  try {
    cwd = Deno.cwd();
  } catch {
    cwd = undefined;
  }
  const candidates = [
    ...paths,
    cwd,
    envVar("HOME"),
    envVar("TMPDIR") ?? "/tmp",
    "/",
  ];
  for (const path of candidates) {
    if (path && granted(path)) return path;
  }
  return writeFlagOnCommandLine();
}
