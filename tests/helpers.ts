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

/** True while process `pid` runs (not gone, not a zombie). */
/** Child process ids of `pid` (all its threads' children). */
export function children(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const list = Deno.readTextFileSync(
        `/proc/${pid}/task/${task.name}/children`,
      );
      found.push(...list.trim().split(/\s+/).filter(Boolean).map(Number));
    }
  } catch {
    // gone
  }
  return found;
}

/** Waits until `condition` holds (polled every `step` ms), at most `ms`. */
export async function until(
  condition: () => boolean,
  ms: number,
  step = 20,
): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, step));
  }
  return condition();
}

export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
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

/** True when `command` is on PATH (or is an executable path). */
export async function hasCommand(command: string): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `command -v ${command}`],
    stdout: "null",
  }).output();
  return out.code === 0;
}

/**
 * Installs Debian `packages` with apt-get when run as root (updating the
 * package lists when an install fails); otherwise fails saying what `who`
 * needs.
 */
export async function aptInstall(
  packages: string[],
  who: string,
): Promise<void> {
  const wanted = [...new Set(packages)];
  if (wanted.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new Error(`${who} need root and these packages: ${wanted.join(" ")}`);
  }
  const install = () =>
    new Deno.Command("apt-get", {
      args: ["install", "-y", "-qq", "--no-install-recommends", ...wanted],
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
  console.error(`installing ${wanted.join(" ")} with apt-get…`);
  let result = await install();
  if (result.code !== 0) {
    // The package lists may be missing or stale on a fresh machine.
    await new Deno.Command("apt-get", {
      args: ["update", "-qq"],
      stdout: "null",
    }).output();
    result = await install();
  }
  if (result.code !== 0) {
    throw new Error(
      `cannot install ${wanted.join(" ")}: ${text(result.stderr)}`,
    );
  }
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

/** A long-running child process that announced itself with a JSON line. */
export interface Announced<T> {
  /** The process. */
  child: Deno.ChildProcess;
  /** Its first stdout line, parsed. */
  info: T;
  /** Reader of the rest of its stdout. */
  reader: ReadableStreamDefaultReader<string>;
}

/** Spawns a command and waits for the JSON line it prints when ready. */
export async function spawnAnnounced<T>(
  program: string,
  options: { args: string[]; env?: Record<string, string>; cwd?: string },
): Promise<Announced<T>> {
  const child = new Deno.Command(program, {
    ...options,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  while (!buffered.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) {
      throw new Error(
        `${program} exited early: ${await new Response(child.stderr).text()}`,
      );
    }
    buffered += value;
  }
  return { child, info: JSON.parse(buffered.split("\n")[0]), reader };
}

/** Ends an announced process with SIGTERM; returns its exit and the time it took. */
export async function stopAnnounced(
  process: Announced<unknown>,
): Promise<{ ms: number; status: Deno.CommandStatus }> {
  const started = performance.now();
  try {
    process.child.kill("SIGTERM");
  } catch {
    // already gone
  }
  const status = await process.child.status;
  await process.reader.cancel().catch(() => {});
  await process.child.stderr.cancel().catch(() => {});
  return { ms: performance.now() - started, status };
}

/** A network namespace with a veth pair, removed by the returned function. */
export async function netns(): Promise<[string, () => Promise<void>]> {
  if (Deno.uid() !== 0) {
    throw new Error(
      "this test needs root to create a network namespace (ip netns)",
    );
  }
  const name = `phase-test-${crypto.randomUUID().slice(0, 8)}`;
  const ip = async (...args: string[]) => {
    const out = await new Deno.Command("ip", { args, stderr: "piped" }).output()
      .catch(() => {
        throw new Error("the ip command is missing (apt-get install iproute2)");
      });
    if (out.code !== 0) {
      throw new Error(`ip ${args.join(" ")}: ${text(out.stderr)}`);
    }
  };
  await ip("netns", "add", name);
  const remove = () => ip("netns", "del", name);
  try {
    await ip("-n", name, "link", "set", "lo", "up");
    await ip(
      "-n",
      name,
      "link",
      "add",
      "v0",
      "type",
      "veth",
      "peer",
      "name",
      "v1",
    );
    await ip("-n", name, "addr", "add", "10.231.0.1/24", "dev", "v0");
    await ip("-n", name, "addr", "add", "10.231.0.2/24", "dev", "v1");
    await ip("-n", name, "link", "set", "v0", "up");
    await ip("-n", name, "link", "set", "v1", "up");
    await ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "v0");
  } catch (error) {
    await remove();
    throw error;
  }
  return [name, remove];
}

/** Runs a command to completion; its stdout, or an error with its stderr. */
export async function runOk(
  program: string,
  args: string[],
  cwd?: string,
): Promise<string> {
  const out = await new Deno.Command(program, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`${program} ${args.join(" ")}: ${text(out.stderr)}`);
  }
  return text(out.stdout);
}

/** Starts `deno task serve` (the README's main job, least privilege) in HOME. */
export async function serveTask(
  home: string,
  extra: string[] = [],
): Promise<Announced<{ url: string; port: number; peer_id: string }>> {
  return await spawnAnnounced<{ url: string; port: number; peer_id: string }>(
    Deno.execPath(),
    {
      args: serveTaskArgs(extra),
      cwd: ROOT,
      env: await freshHomeEnv(home),
    },
  );
}

/**
 * Arguments of `phase serve` for a node on loopback only (ports picked by
 * the system) that prints its JSON line, with its data in `dataDir`.
 */
export function loopbackServeArgs(dataDir: string): string[] {
  return [
    "serve",
    "--data-dir",
    dataDir,
    "--bind",
    "127.0.0.1",
    "--port",
    "0",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--json",
  ];
}

/**
 * The environment of a user with a fresh HOME: no PHASE_HOME or
 * XDG_DATA_HOME, Deno's module cache shared so nothing is downloaded again.
 */
export async function freshHomeEnv(
  home: string,
): Promise<Record<string, string>> {
  return {
    HOME: home,
    DENO_DIR: await denoDir(),
    PHASE_HOME: "",
    XDG_DATA_HOME: "",
    NO_COLOR: "1",
  };
}

/**
 * `deno task serve` on loopback, ports picked by the system, printing its
 * JSON line, with `extra` arguments.
 */
export function serveTaskArgs(extra: string[] = []): string[] {
  return [
    "task",
    "--quiet",
    "serve",
    "--port",
    "0",
    "--bind",
    "127.0.0.1",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--json",
    ...extra,
  ];
}

/** What a command printed and how it ended. */
export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno task <name> <args>` from the repository, as a user with a fresh HOME. */
export async function runTask(
  home: string,
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CommandOutput> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", name, ...args],
    cwd: ROOT,
    env: { ...await freshHomeEnv(home), ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Runs the `./phase` launcher (its real permission flags) with a fresh HOME. */
export async function runLauncher(
  home: string,
  args: string[],
): Promise<CommandOutput> {
  const out = await new Deno.Command(`${ROOT}/phase`, {
    args,
    env: await freshHomeEnv(home),
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/**
 * Arguments for Debian's headless Chromium on this closed network: no
 * sandbox (root), no GPU, no background traffic, a profile in `profile`.
 */
export function headlessChromiumArgs(profile: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    `--user-data-dir=${profile}`,
  ];
}
