/**
 * The `phase` command line: parses the command, runs it, and turns every
 * failure into one line on stderr and a non-zero exit status.
 * @module
 */
import { RUNTIME_VERSION } from "../runner/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { keygenCommand } from "./keys.ts";
import { manifestCommand } from "./manifest.ts";
import { fetchCommand, providerCommand } from "./provider.ts";
import { serveCommand } from "./serve.ts";
import { discoverCommand, submitCommand } from "./p2p.ts";
import { bootCommand } from "./boot.ts";
import { receiptCommand } from "./receipt.ts";
import { executeJobCommand, runCommand } from "./run.ts";

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

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  node: serveCommand,
  discover: discoverCommand,
  boot: bootCommand,
  submit: submitCommand,
  run: runCommand,
  "execute-job": executeJobCommand,
  receipt: receiptCommand,
  keygen: keygenCommand,
  manifest: manifestCommand,
  provider: providerCommand,
  fetch: fetchCommand,
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
