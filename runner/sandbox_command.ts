/**
 * How a sandbox process is started: its command line (the permissions it
 * gets) and the spawn itself. Kept apart from the pool (runner/sandbox.ts)
 * and importing nothing, so that a one-shot command can start its sandbox
 * the moment it starts (cli/prestart.ts), before it loads anything else.
 * @module
 */

/** Permissions that a sandbox process must not hold. */
export const FORBIDDEN_PERMISSIONS = [
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
] as const;

/** Thrown when a sandbox process cannot be started or misbehaves. */
export class SandboxError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SandboxError";
  }
}

/**
 * Characters Deno's permission flag grammar gives a meaning to (`,` splits
 * a list; NUL and line breaks have no place in a path either): a path that
 * holds one is refused, never passed into a flag.
 */
const FLAG_SPECIAL = /[,\0\n\r]/;

/** Refuses paths that could change the meaning of a permission flag. */
export function assertFlagSafePath(path: string): void {
  if (path === "" || FLAG_SPECIAL.test(path)) {
    throw new SandboxError(
      `the path ${
        JSON.stringify(path)
      } cannot be given to a sandbox: it is empty or holds a comma or line break`,
    );
  }
}

/**
 * This Deno binary, as a path the run permission allows: the real path when
 * granted, else `deno` from PATH (what `--allow-run=deno` grants).
 */
function denoProgram(): string {
  const exec = Deno.execPath();
  const state = Deno.permissions.querySync({ name: "run", command: exec });
  return state.state === "granted" ? exec : "deno";
}

/** The default command: this Deno binary running sandbox_worker.ts. */
export function defaultSandboxCommand(
  readDirs: string[],
  writeDirs: string[] = [],
): { program: string; args: string[] } {
  // From source, the worker is this folder's sandbox_worker.ts and needs the
  // project's import map; bundled (boot/), it is sandbox_worker.js beside
  // the bundle and self-contained. It loads the code that runs guests after
  // it starts, so the process may read that code (and nothing else of ours).
  const fromSource = import.meta.url.endsWith(".ts");
  const worker = new URL(
    fromSource ? "./sandbox_worker.ts" : "./sandbox_worker.js",
    import.meta.url,
  );
  const code = fromSource
    ? new URL(".", import.meta.url).pathname.replace(/\/$/, "")
    : worker.pathname;
  const readable = [code, ...readDirs];
  for (const path of [...readable, ...writeDirs]) assertFlagSafePath(path);
  // Every function compiled before the guest starts (runner/execute.ts
  // compileAhead), on V8's threads, not when first called; and a collection
  // the sandbox can ask for after a big job (runner/sandbox_worker.ts).
  const args = [
    "run",
    "--no-prompt",
    "--quiet",
    "--v8-flags=--no-wasm-lazy-compilation,--expose-gc",
  ];
  if (fromSource) {
    args.push(`--config=${new URL("../deno.json", import.meta.url).pathname}`);
  }
  args.push(`--allow-read=${readable.join(",")}`);
  // A writable preopen's directory, and only it (never write in general:
  // the handshake refuses a process that holds it).
  if (writeDirs.length > 0) args.push(`--allow-write=${writeDirs.join(",")}`);
  args.push(worker.href);
  return { program: denoProgram(), args };
}

/**
 * Starts a sandbox process from its command, with its standard streams
 * piped; throws {@link SandboxError} when it cannot be started.
 */
export function spawnSandbox(
  command: { program: string; args: string[] },
): Deno.ChildProcess {
  try {
    return new Deno.Command(command.program, {
      args: command.args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
  } catch (error) {
    throw new SandboxError(
      `cannot start a sandbox process: ${(error as Error).message}`,
    );
  }
}

/** A process started by {@link prestartSandbox}, not yet taken by a pool. */
let prestarted: Deno.ChildProcess | undefined;

/**
 * Starts a sandbox process for jobs without preopened directories now, for
 * the next pool created with the default command to take as its first
 * process (runner/sandbox.ts). A one-shot command calls this before it
 * loads the rest of its code, so the sandbox's start-up overlaps the
 * command's own instead of following it. The pool checks it like any
 * other when it takes it; if nothing does, it ends when this process does
 * (its standard input closes). A process that cannot be started is left
 * for the pool to report.
 */
export function prestartSandbox(): void {
  if (prestarted) return;
  try {
    prestarted = spawnSandbox(defaultSandboxCommand([]));
  } catch {
    prestarted = undefined;
  }
}

/** The process {@link prestartSandbox} started, once, if any. */
export function takePrestartedSandbox(): Deno.ChildProcess | undefined {
  const child = prestarted;
  prestarted = undefined;
  return child;
}
