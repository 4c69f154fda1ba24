/**
 * `phase help`, `phase <command> --help`: the commands, and each command's
 * usage, arguments, flags with their defaults, exit statuses and examples,
 * all rendered from cli/specs.ts in one style.
 * @module
 */
import { RUNTIME_VERSION } from "../runner/version.ts";
import { UsageError } from "./errors.ts";
import { EXIT } from "./exit_status.ts";
import {
  type CommandSpec,
  type ExitSpec,
  type FlagSpec,
  parseCommandLine,
  usageLines,
} from "./spec.ts";
import { COMMANDS, TOP_LEVEL } from "./specs.ts";

const WIDTH = 80;
/** Widest left column before the description moves to its own line. */
const MAX_LABEL = 28;

/** The top-level command named `name` (or one of its aliases). */
export function topLevel(name: string): CommandSpec | undefined {
  return TOP_LEVEL.find((spec) =>
    spec.name === name || spec.aliases?.includes(name)
  );
}

/** A command and the arguments that follow its name. */
export interface ResolvedCommand {
  /** The command (a subcommand when one was named). */
  spec: CommandSpec;
  /** The arguments after its name. */
  rest: string[];
}

/**
 * Finds the command `argv` names: the top-level command, then a subcommand
 * while there is one. Unknown names are usage errors.
 */
export function resolveCommand(argv: string[]): ResolvedCommand {
  const [name, ...rest] = argv;
  let spec = topLevel(name);
  if (!spec) {
    throw new UsageError(`unknown command ${name} (see: phase help)`);
  }
  while (spec.subcommands && rest.length > 0 && !rest[0].startsWith("-")) {
    const [word] = rest;
    const sub: CommandSpec | undefined = Object.hasOwn(spec.subcommands, word)
      ? spec.subcommands[word]
      : undefined;
    if (!sub) {
      throw new UsageError(
        `unknown command ${spec.name} ${word} (see: phase ${spec.name} --help)`,
      );
    }
    spec = sub;
    rest.shift();
  }
  return { spec, rest };
}

/** True when the command's own arguments (before `--`) ask for help. */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((arg) =>
    arg === "--help" || arg === "-h"
  );
}

/** Wraps `text` to the width, indenting every line after the first. */
function wrap(text: string, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent + line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

/** Two columns: labels, then descriptions wrapped beside them. */
function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.min(
    MAX_LABEL,
    Math.max(...rows.map(([label]) => label.length)),
  ) + 2;
  return rows.map(([label, text]) => {
    const lead = `  ${label}`;
    return label.length > MAX_LABEL
      ? `${lead}\n${" ".repeat(width + 2)}${wrap(text, width + 2)}`
      : `${lead.padEnd(width + 2)}${wrap(text, width + 2)}`;
  }).join("\n");
}

/** A flag's left column: `-o, --output FILE` or `    --json`. */
function flagLabel(name: string, flag: FlagSpec): string {
  const short = flag.short ? `-${flag.short}, ` : "    ";
  return `${short}--${name}${flag.type === "string" ? ` ${flag.value}` : ""}`;
}

/** A flag's description with what happens when it is absent. */
function flagText(flag: FlagSpec): string {
  if (flag.type === "boolean") return flag.description;
  const notes: string[] = [];
  if (flag.multiple) notes.push("repeatable");
  if (flag.required) {
    notes.push("required");
  } else {
    const given = flag.default === undefined
      ? undefined
      : typeof flag.default === "string"
      ? flag.default
      : flag.default.join(" ");
    notes.push(`default: ${flag.defaultText ?? (given || "none")}`);
  }
  return `${flag.description} (${notes.join("; ")})`;
}

/** Exit statuses every command shares. */
const COMMON_EXITS: readonly ExitSpec[] = [
  [String(EXIT.usage), "usage error: a bad command line (one line on stderr)"],
  [String(EXIT.internal), "internal error (a bug; one line on stderr)"],
];

/** The statuses a command documents, with the shared ones. */
function exitRows(spec: CommandSpec): readonly ExitSpec[] {
  return [
    ...spec.exits ??
      [
        [String(EXIT.ok), "done"],
        [String(EXIT.failure), "failed (one line on stderr says why)"],
      ],
    ...COMMON_EXITS,
  ];
}

/** The help of one command or subcommand. */
export function commandHelp(spec: CommandSpec): string {
  const [first, ...others] = usageLines(spec);
  const sections = [
    `phase ${spec.name}: ${spec.summary}`,
    [`usage: ${first}`, ...others.map((line) => `       ${line}`)].join("\n"),
  ];
  if (spec.aliases?.length) {
    sections.push(`also: ${spec.aliases.map((a) => `phase ${a}`).join(", ")}`);
  }
  if (spec.subcommands) {
    sections.push(
      `commands:\n${
        table(
          Object.entries(spec.subcommands).map((
            [name, sub],
          ) => [name, sub.summary]),
        )
      }\n\nRun phase ${spec.name} <command> --help for its options.`,
    );
  }
  if (spec.arguments?.length) {
    sections.push(`arguments:\n${table(spec.arguments)}`);
  }
  if (!spec.subcommands) {
    const flags = Object.entries(spec.flags);
    const rows: [string, string][] = flags.map((
      [name, flag],
    ) => [flagLabel(name, flag), flagText(flag)]);
    rows.push(["-h, --help", "show this help"]);
    const switches = flags.some(([, flag]) => flag.type === "boolean")
      ? "\n\n  Switches (flags without a value) are off unless given."
      : "";
    sections.push(`options:\n${table(rows)}${switches}`);
  }
  sections.push(`exit status:\n${table(exitRows(spec))}`);
  if (spec.examples?.length) {
    sections.push(
      `examples:\n${spec.examples.map((line) => `  ${line}`).join("\n")}`,
    );
  }
  return sections.join("\n\n");
}

/** Every command that runs, with its summary, for the overview. */
function commandRows(): [string, string][] {
  return TOP_LEVEL.flatMap((spec): [string, string][] =>
    spec.subcommands
      ? Object.values(spec.subcommands).map((sub) => [sub.name, sub.summary])
      : [[
        [spec.name, ...spec.aliases ?? []].join(", "),
        spec.summary,
      ]]
  );
}

/** `phase help` with no command: every command in one line each. */
export function overviewHelp(): string {
  return `phase ${RUNTIME_VERSION}: run WebAssembly jobs with signed receipts, serve and netboot machines

usage: phase <command> [options]
       phase help <command>        its options, defaults and exit statuses
       phase <command> --help      the same

commands:
${table(commandRows())}

exit status:
${
    table([
      [String(EXIT.ok), "done"],
      [String(EXIT.failure), "failed (one line on stderr says why)"],
      ...COMMON_EXITS,
      [
        "other",
        "run, execute-job and submit exit with the guest's status (see: phase help run)",
      ],
    ])
  }`;
}

/** `phase help [command [subcommand]]` */
export function helpCommand(argv: string[]): Promise<number> {
  const { positionals } = parseCommandLine(COMMANDS.help, argv);
  if (positionals.length === 0) {
    console.log(overviewHelp());
    return Promise.resolve(EXIT.ok);
  }
  const { spec, rest } = resolveCommand(positionals);
  if (rest.length > 0) {
    throw new UsageError(
      `unknown command ${spec.name} ${rest[0]} (see: phase help ${spec.name})`,
    );
  }
  console.log(commandHelp(spec));
  return Promise.resolve(EXIT.ok);
}
