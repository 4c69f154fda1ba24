/** Shared helpers for Phase tests. */
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url)).replace(
  /\/$/,
  "",
);

/** Reads a committed example module. */
export function example(name: string): Uint8Array {
  return Deno.readFileSync(`${ROOT}/examples/wasm/${name}.wasm`);
}

/** Path of a committed example module. */
export function examplePath(name: string): string {
  return `${ROOT}/examples/wasm/${name}.wasm`;
}

/** Decodes UTF-8. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Result of running the CLI. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run <flags> main.ts <args>` with optional stdin. */
export async function cli(
  args: string[],
  options: { stdin?: string; flags?: string[]; env?: Record<string, string> } =
    {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.flags ?? ["-A"]), `${ROOT}/main.ts`, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const writer = child.stdin.getWriter();
  if (options.stdin !== undefined) {
    await writer.write(new TextEncoder().encode(options.stdin));
  }
  await writer.close();
  const out = await child.output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(): Promise<[string, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix: "phase-test-" });
  return [dir, () => Deno.remove(dir, { recursive: true })];
}

let cachedDenoDir: string | undefined;

/** Deno's cache directory, so child processes with another HOME reuse it. */
export async function denoDir(): Promise<string> {
  if (!cachedDenoDir) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
    }).output();
    cachedDenoDir = JSON.parse(text(out.stdout)).denoDir as string;
  }
  return cachedDenoDir;
}
