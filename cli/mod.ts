/**
 * The `phase` command line: parses the command, runs it, and turns every
 * failure into one line on stderr and a non-zero exit status.
 * @module
 */
import { RUNTIME_VERSION } from "../runner/version.ts";
import { CliError, UsageError } from "./errors.ts";
import { EXIT } from "./exit_status.ts";
import {
  commandHelp,
  helpCommand,
  overviewHelp,
  resolveCommand,
  wantsHelp,
} from "./help.ts";
import { parseCommandLine } from "./spec.ts";
import { COMMANDS, type RunnableName } from "./specs.ts";

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command loads its module only when it runs, so a command loads only
 * what it uses (libp2p only for the commands on the network) and needs only
 * the permissions of what it loads. Help and completions load none of them.
 */
const RUNNERS: Record<RunnableName, Command> = {
  serve: async (argv) => (await import("./serve.ts")).serveCommand(argv),
  discover: async (argv) => (await import("./p2p.ts")).discoverCommand(argv),
  submit: async (argv) => (await import("./p2p.ts")).submitCommand(argv),
  "boot build": async (argv) => (await import("./boot.ts")).buildCommand(argv),
  "boot run": async (argv) => (await import("./boot.ts")).bootRunCommand(argv),
  "boot image": async (argv) => (await import("./boot.ts")).imageCommand(argv),
  "release deb": async (argv) =>
    (await import("./release.ts")).debCommand(argv),
  "release build": async (argv) =>
    (await import("./release.ts")).buildCommand(argv),
  "release verify": async (argv) =>
    (await import("./release_verify.ts")).verifyCommand(argv),
  run: async (argv) => (await import("./run.ts")).runCommand(argv),
  "execute-job": async (argv) =>
    (await import("./run.ts")).executeJobCommand(argv),
  "receipt verify": async (argv) =>
    (await import("./receipt.ts")).receiptVerifyCommand(argv),
  "receipt compare": async (argv) =>
    (await import("./receipt.ts")).receiptCompareCommand(argv),
  keygen: async (argv) => (await import("./keys.ts")).keygenCommand(argv),
  "manifest generate": async (argv) =>
    (await import("./manifest.ts")).generateCommand(argv),
  "manifest sign": async (argv) =>
    (await import("./manifest.ts")).signCommand(argv),
  "manifest verify": async (argv) =>
    (await import("./manifest.ts")).verifyCommand(argv),
  "provider status": async (argv) =>
    (await import("./provider.ts")).statusCommand(argv),
  "provider list": async (argv) =>
    (await import("./provider.ts")).listCommand(argv),
  fetch: async (argv) => (await import("./provider.ts")).fetchCommand(argv),
  version: (argv) => {
    const { values } = parseCommandLine(COMMANDS.version, argv);
    const info = {
      name: "phase",
      version: RUNTIME_VERSION,
      deno: Deno.version.deno,
      wasi: "preview1",
    };
    console.log(
      values.json
        ? JSON.stringify(info)
        : `phase ${info.version} (deno ${info.deno}, wasi ${info.wasi})`,
    );
    return Promise.resolve(EXIT.ok);
  },
  help: helpCommand,
  completions: async (argv) =>
    (await import("./completions.ts")).completionsCommand(argv),
};

/**
 * Runs what `argv` names: its help when its own arguments ask for it, a
 * usage error when it names a command with subcommands but none of them.
 */
function dispatch(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === "--help" || first === "-h") {
    console.log(overviewHelp());
    return Promise.resolve(EXIT.ok);
  }
  const { spec, rest } = resolveCommand(argv);
  if (wantsHelp(rest)) {
    console.log(commandHelp(spec));
    return Promise.resolve(EXIT.ok);
  }
  if (spec.subcommands) {
    throw new UsageError(
      `phase ${spec.name} needs a command: ${
        Object.keys(spec.subcommands).join(", ")
      } (see: phase ${spec.name} --help)`,
    );
  }
  return RUNNERS[spec.name as RunnableName](rest);
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
  "ReleaseError",
]);

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (error) {
    const err = error as Error;
    // Every failure is one line, whatever the message holds.
    const line = String(err?.message ?? error).split("\n")[0];
    if (error instanceof UsageError) {
      console.error(`phase: ${line}`);
      return EXIT.usage;
    }
    if (error instanceof CliError) {
      console.error(`phase: ${line}`);
      return error.exitCode;
    }
    if (PLAIN_ERRORS.has(err?.name)) {
      console.error(`phase: ${line}`);
      return EXIT.failure;
    }
    if (error instanceof Deno.errors.NotCapable) {
      console.error(`phase: not permitted: ${line}`);
      return EXIT.failure;
    }
    // What the system refused (a full disk, a missing folder, a busy port):
    // the operator's to fix, not a bug.
    if (isSystemError(error)) {
      console.error(`phase: ${line}`);
      return EXIT.failure;
    }
    console.error(`phase: internal error: ${line}`);
    return EXIT.internal;
  }
}

/** An error the operating system reported (Deno's classes, or an errno code). */
function isSystemError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (Object.values(Deno.errors).some((kind) => error instanceof kind)) {
    return true;
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code);
}
