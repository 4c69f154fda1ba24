/**
 * Running the build's helper programs (apt-get, dpkg-deb, cpio, zstd, npm):
 * output captured, stdin fed, a failure turned into a one-line error.
 * @module
 */

/** A failure while building; one line. */
export class BuildError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

/** Runs `program`; its stdout, or a {@link BuildError} with its last stderr line. */
export async function run(
  program: string,
  args: string[],
  options: { cwd?: string; stdin?: Uint8Array } = {},
): Promise<Uint8Array> {
  let child;
  try {
    child = new Deno.Command(program, {
      args,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    throw new BuildError(
      `${program} is missing (apt-get install qemu-system-x86 busybox-static cpio kexec-tools zstd kmod)`,
    );
  }
  // Feed stdin while output is read, or a full pipe deadlocks both sides.
  const feeding = options.stdin
    ? (async () => {
      const writer = child.stdin.getWriter();
      await writer.write(options.stdin!);
      await writer.close();
    })()
    : Promise.resolve();
  const [out] = await Promise.all([child.output(), feeding]);
  if (out.code !== 0) {
    throw new BuildError(
      `${program} ${args.slice(0, 3).join(" ")} failed: ${
        new TextDecoder().decode(out.stderr).trim().split("\n").pop()
      }`,
    );
  }
  return out.stdout;
}
