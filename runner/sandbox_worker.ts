/**
 * Entrypoint of a sandbox process: the only code that executes guests. It is
 * started by runner/sandbox.ts with no permissions except read access to the
 * job's preopened directories, reports its permissions, then runs the jobs it
 * is sent, one at a time, streaming output as the guest writes it.
 * @module
 */
import { execute } from "./execute.ts";
import { encodeFrame, readFrames } from "./frames.ts";
import { ModuleError } from "./wasm_binary.ts";
import type { Preopen } from "./wasi_env.ts";

/** Permissions that a sandbox process must not hold. */
export const FORBIDDEN_PERMISSIONS = [
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
] as const;

function send(header: Record<string, unknown>, blobs: Uint8Array[] = []) {
  const bytes = encodeFrame(header, blobs);
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}

function permissionStates(): Record<string, string> {
  return Object.fromEntries(
    FORBIDDEN_PERMISSIONS.map((name) => [
      name,
      Deno.permissions.querySync({ name }).state,
    ]),
  );
}

async function serve(): Promise<void> {
  send({ type: "ready", permissions: permissionStates() });
  for await (const { header, blobs } of readFrames(Deno.stdin.readable)) {
    const id = header.id;
    try {
      const outcome = execute({
        module: blobs[0],
        stdin: blobs[1],
        moduleKey: header.module_key as string,
        fuel: header.fuel as number | undefined,
        programName: header.program_name as string,
        args: header.args as string[],
        env: header.env as Record<string, string>,
        memoryBytes: header.memory_bytes as number,
        outputLimit: header.output_limit as number,
        preopens: header.preopens as Preopen[],
        scratch: header.scratch as string | undefined,
        onOutput: (stream, chunk) =>
          send({ type: "output", id, stream }, [chunk]),
      });
      const { stdout: _o, stderr: _e, ...rest } = outcome;
      send({ type: "result", id, outcome: rest });
    } catch (error) {
      const message = error instanceof ModuleError
        ? error.message
        : `sandbox error: ${(error as Error)?.message ?? error}`;
      send({
        type: "error",
        id,
        message,
        module_error: error instanceof ModuleError,
      });
    }
  }
}

if (import.meta.main) await serve();
