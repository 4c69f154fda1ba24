/**
 * What a command is, as data: its flags, arguments, exit statuses and
 * examples. The parser's options, the help and the shell completions are all
 * derived from it, so they cannot drift apart.
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";

/** What every flag has. */
export interface FlagBase {
  /** One-letter form (`-o`). */
  readonly short?: string;
  /** What the flag does, for the help. */
  readonly description: string;
}

/** A flag that takes a value (`--memory 64`, `--memory=64`). */
export interface StringFlag extends FlagBase {
  /** The parser's type. */
  readonly type: "string";
  /** The value's name in the help (`FILE`, `MB`). */
  readonly value: string;
  /** May be given more than once; the values are collected in order. */
  readonly multiple?: boolean;
  /** The parser's value when the flag is absent. */
  readonly default?: string | readonly string[];
  /** The default as the help states it, when the command applies it later. */
  readonly defaultText?: string;
  /** The command refuses to run without it. */
  readonly required?: boolean;
}

/** A switch: off unless given. */
export interface BooleanFlag extends FlagBase {
  /** The parser's type. */
  readonly type: "boolean";
}

/** One flag of a command. */
export type FlagSpec = StringFlag | BooleanFlag;

/** A command's flags by long name (without the dashes). */
export type Flags = Readonly<Record<string, FlagSpec>>;

/** An exit status (or range, `0-255`) and what it means. */
export type ExitSpec = readonly [status: string, meaning: string];

/** A command or subcommand. */
export interface CommandSpec {
  /** The words after `phase` that name it (`manifest sign`). */
  readonly name: string;
  /** Other names for a top-level command. */
  readonly aliases?: readonly string[];
  /** One line, lower case, no full stop. */
  readonly summary: string;
  /** Usage lines after `phase` (derived from the subcommands' when absent). */
  readonly usage?: readonly string[];
  /** Positional arguments and what they are; none means none are allowed. */
  readonly arguments?: readonly (readonly [name: string, meaning: string])[];
  /** The flags it accepts. */
  readonly flags: Flags;
  /** Its exit statuses besides usage (2) and internal errors (70). */
  readonly exits?: readonly ExitSpec[];
  /** Command lines to copy. */
  readonly examples?: readonly string[];
  /** Its subcommands by name; a command with subcommands runs none itself. */
  readonly subcommands?: Readonly<Record<string, CommandSpec>>;
}

/** The parseArgs option a flag stands for, with types that type its value. */
export type ParserOption<F> = F extends StringFlag ? {
    type: "string";
    short?: string;
    multiple: F extends { multiple: true } ? true : false;
    default: F extends { default: string } ? string
      : F extends { default: readonly string[] } ? string[]
      : undefined;
  }
  : { type: "boolean"; short?: string };

/** The `node:util` parseArgs options a set of flags stands for. */
export type ParserOptions<F extends Flags> = {
  -readonly [K in keyof F]: ParserOption<F[K]>;
};

/** The parser's options for `flags`: the same names, types and defaults. */
export function parserOptions<F extends Flags>(flags: F): ParserOptions<F> {
  const options: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(flags)) {
    const option: Record<string, unknown> = { type: flag.type };
    if (flag.short !== undefined) option.short = flag.short;
    if (flag.type === "string") {
      if (flag.multiple) option.multiple = true;
      if (flag.default !== undefined) {
        option.default = typeof flag.default === "string"
          ? flag.default
          : [...flag.default];
      }
    }
    options[name] = option;
  }
  return options as ParserOptions<F>;
}

/** What {@link parseCommandLine} returns: typed values and the arguments. */
export interface ParsedCommandLine<F extends Flags> {
  /** Flag values by long name. */
  values: ReturnType<
    typeof parseArgs<{
      args: string[];
      options: ParserOptions<F>;
      allowPositionals: true;
    }>
  >["values"];
  /** Positional arguments, in order. */
  positionals: string[];
}

/** A negative number, which may follow a flag as its value (`--timeout -1`). */
const NEGATIVE_NUMBER = /^-\.?\d/;

/**
 * Parses `argv` by `spec`. Every problem is a {@link UsageError} of one line
 * that names the flag and where to read about it; values are checked by the
 * command itself.
 */
export function parseCommandLine<F extends Flags>(
  spec: CommandSpec & { readonly flags: F },
  argv: string[],
): ParsedCommandLine<F> {
  const options = parserOptions(spec.flags);
  const allowPositionals = (spec.arguments?.length ?? 0) > 0;
  const problem = (text: string) =>
    new UsageError(`${text} (see: phase ${spec.name} --help)`);
  const { tokens = [] } = parseArgs({
    args: argv,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  // `--flag -1` becomes `--flag=-1`: the strict parser refuses any value
  // that starts with a dash unless it is written inline.
  const inline = new Map<number, string>();
  for (const token of tokens) {
    if (token.kind === "positional" && !allowPositionals) {
      throw problem(`unexpected argument ${token.value}`);
    }
    if (token.kind !== "option") continue;
    const flag = Object.hasOwn(spec.flags, token.name)
      ? spec.flags[token.name]
      : undefined;
    if (!flag) throw problem(`unknown option ${token.rawName}`);
    if (flag.type === "boolean") {
      if (token.value !== undefined) {
        throw problem(`${token.rawName} takes no value`);
      }
      continue;
    }
    if (token.value === undefined) {
      throw problem(`${token.rawName} needs a value (${flag.value})`);
    }
    if (!token.inlineValue && token.value.startsWith("-")) {
      const alone = argv[token.index] === token.rawName;
      if (!alone || !NEGATIVE_NUMBER.test(token.value)) {
        throw problem(
          `${token.rawName} needs a value (${flag.value}), got ${token.value}; write --${token.name}=${token.value} if that is the value`,
        );
      }
      inline.set(token.index, `--${token.name}=${token.value}`);
    }
  }
  const args = argv.flatMap((arg, index) => {
    if (inline.has(index)) return [inline.get(index)!];
    return inline.has(index - 1) ? [] : [arg];
  });
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals };
  } catch (error) {
    // Not expected after the checks above; still one line.
    throw problem(String((error as Error).message).split("\n")[0]);
  }
}

/** The usage lines of a command, derived from its subcommands' if it has them. */
export function usageLines(spec: CommandSpec): string[] {
  if (spec.usage) return spec.usage.map((line) => `phase ${line}`);
  return Object.values(spec.subcommands ?? {}).flatMap(usageLines);
}

/** A usage error for a command run without what it needs. */
export function usageError(spec: CommandSpec): UsageError {
  return new UsageError(
    `usage: ${usageLines(spec).join(" | ")} (see: phase ${spec.name} --help)`,
  );
}
