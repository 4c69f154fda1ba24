/**
 * The `phase` command line: parses the command, runs it, and turns every
 * failure into one line on stderr and a non-zero exit status.
 * @module
 */
import { RUNTIME_VERSION } from "../runner/version.ts";
import { CliError, UsageError } from "./errors.ts";

const HELP =
  `phase ${RUNTIME_VERSION}: run WebAssembly jobs and verify their receipts

usage: phase <command> [options]

commands:
  run <module.wasm> [--dir HOST:GUEST] [--env K=V] [--memory MB]
      [--timeout SECONDS] [--fuel N] [--scratch GUEST] [--manifest FILE]
      [--receipt FILE] [--json] [--quiet] [-- args…]
                        run a module in the sandbox, stdin to the guest
                        (fuel: instructions the guest may execute; default
                        1e13 per second of timeout; exit 124 when spent.
                        Exit status: the guest's code, 255 for codes over
                        255, 124 timeout/fuel, 125 memory, 134 trap)
  execute-job --wasm FILE [--args ARG]… [--memory MB] [--timeout S] [--fuel N]
                        run a module and print its verified receipt
  receipt verify FILE [--peer PEER_ID]
                        check a receipt (exit 0 valid, 1 invalid)
  keygen [--output FILE]
                        create an Ed25519 key file
  version [--json]      print the version

common options: --data-dir DIR, --key FILE, --receipts DIR, --ephemeral,
  --private (throwaway key, nothing written; needs write permission denied)
`;

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command loads its module only when it runs, so a command loads only
 * what it uses (libp2p only for the commands on the network) and needs only
 * the permissions of what it loads.
 */
const COMMANDS: Record<string, Command> = {
  serve: async (argv) => (await import("./serve.ts")).serveCommand(argv),
  node: async (argv) => (await import("./serve.ts")).serveCommand(argv),
  discover: async (argv) => (await import("./p2p.ts")).discoverCommand(argv),
  boot: async (argv) => (await import("./boot.ts")).bootCommand(argv),
  submit: async (argv) => (await import("./p2p.ts")).submitCommand(argv),
  run: async (argv) => {
    await prestartSandbox(argv);
    return (await import("./run.ts")).runCommand(argv);
  },
  "execute-job": async (argv) => {
    await prestartSandbox(argv);
    return (await import("./run.ts")).executeJobCommand(argv);
  },
  receipt: async (argv) => (await import("./receipt.ts")).receiptCommand(argv),
  keygen: async (argv) => (await import("./keys.ts")).keygenCommand(argv),
  manifest: async (argv) =>
    (await import("./manifest.ts")).manifestCommand(argv),
  provider: async (argv) =>
    (await import("./provider.ts")).providerCommand(argv),
  fetch: async (argv) => (await import("./provider.ts")).fetchCommand(argv),
  version: (argv) => {
    const info = {
      name: "phase",
      version: RUNTIME_VERSION,
      deno: Deno.version.deno,
      wasi: "preview1",
    };
    console.log(
      argv.includes("--json")
        ? JSON.stringify(info)
        : `phase ${info.version} (deno ${info.deno}, wasi ${info.wasi})`,
    );
    return Promise.resolve(0);
  },
  help: () => {
    console.log(HELP);
    return Promise.resolve(0);
  },
};

/**
 * Starts the sandbox process of a job-running command before the command
 * loads the rest of its code, so the two start-ups overlap. Jobs with
 * `--dir` get a process of their own (allowed to read that directory), and
 * asking for help runs nothing: neither prestarts. Loads the sandbox module
 * alone (not runner/mod.ts) to spawn as early as possible.
 */
async function prestartSandbox(argv: string[]): Promise<void> {
  const end = argv.indexOf("--");
  const own = end === -1 ? argv : argv.slice(0, end);
  const skip = own.some((arg) =>
    arg === "--help" || arg === "-h" || arg === "--dir" ||
    arg.startsWith("--dir=")
  );
  if (!skip) (await import("../runner/sandbox.ts")).prestartSandbox();
}

/** Known error classes whose message is already a good one-line answer. */
const PLAIN_ERRORS = new Set([
  "CliError",
  "ModuleError",
  "JobRefused",
  "IdentityError",
  "SchemaError",
  "SandboxError",
  "QueueFullError",
  "DownloadError",
  "ProviderError",
  "RecordError",
  "BuildError",
  "BootError",
]);

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined || name === "--help" || name === "-h"
    ? COMMANDS.help
    : COMMANDS[name];
  if (!command) {
    console.error(`phase: unknown command ${name} (try: phase help)`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    const err = error as Error & { code?: string };
    if (
      error instanceof UsageError || err?.code?.startsWith("ERR_PARSE_ARGS")
    ) {
      console.error(`phase: ${err.message}`);
      return 2;
    }
    if (error instanceof CliError) {
      console.error(`phase: ${err.message}`);
      return error.exitCode;
    }
    if (PLAIN_ERRORS.has(err?.name)) {
      console.error(`phase: ${err.message}`);
      return 1;
    }
    if (error instanceof Deno.errors.NotCapable) {
      console.error(`phase: not permitted: ${err.message.split("\n")[0]}`);
      return 1;
    }
    console.error(
      `phase: internal error: ${String(err?.message ?? error).split("\n")[0]}`,
    );
    return 70;
  }
}
