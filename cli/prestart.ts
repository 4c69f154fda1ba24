/**
 * The first thing `phase` does for a job-running command: start its sandbox
 * process, so that the sandbox's start-up (a Deno process and its guest
 * thread) overlaps everything the command loads and does before it needs
 * the sandbox, instead of following it. Loads nothing but the sandbox
 * module, and only for those commands.
 * @module
 */

const JOB_COMMANDS = new Set(["run", "execute-job"]);

/**
 * Starts a sandbox process when `argv` runs a job in one that the pool may
 * share: not for help, and not for jobs with `--dir` (they get a process of
 * their own, allowed to read that directory). Never throws: a sandbox that
 * cannot start is reported by the command when it runs its job.
 */
export async function prestartSandboxFor(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!JOB_COMMANDS.has(command)) return;
  const end = rest.indexOf("--");
  const own = end === -1 ? rest : rest.slice(0, end);
  const skip = own.some((arg) =>
    arg === "--help" || arg === "-h" || arg === "--dir" ||
    arg.startsWith("--dir=")
  );
  if (skip) return;
  try {
    (await import("../runner/sandbox_command.ts")).prestartSandbox();
  } catch {
    // The command's own start of the pool says what is wrong.
  }
}
