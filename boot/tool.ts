/**
 * Runs the external tools that builds need (cpio, zstd, dpkg-deb, sgdisk,
 * mtools, …): output captured, a failure turned into one-line BuildError.
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

/** How {@link runTool} runs a program. */
export interface ToolOptions {
  /** Working directory. */
  cwd?: string;
  /** Bytes fed to its standard input. */
  stdin?: Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** What to install when the program is missing (shown in the error). */
  packages?: string;
}

/** Runs `program` to completion; its stdout, or a BuildError with the last line of its stderr. */
export async function runTool(
  program: string,
  args: string[],
  options: ToolOptions = {},
): Promise<Uint8Array> {
  let child;
  try {
    child = new Deno.Command(program, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    throw new BuildError(
      `${program} is missing (apt-get install ${
        options.packages ??
          "qemu-system-x86 busybox-static cpio kexec-tools zstd kmod"
      })`,
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
