/**
 * `phase release deb` and `phase release build` (verify: release_verify.ts).
 * @module
 */
import { fileURLToPath } from "node:url";
import { BuildError } from "../boot/mod.ts";
import { buildDeb, buildRelease } from "../release/mod.ts";
import { loadIdentity } from "../runner/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { envVar } from "./paths.ts";
import { parseCommandLine } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

const SPECS = COMMANDS.release.subcommands;

/**
 * The repository the builds read: the sources next to this file. An
 * installed phase (a bundle) has none, so it cannot build releases.
 */
async function sourceRoot(): Promise<string> {
  const root = fileURLToPath(new URL("../", import.meta.url)).replace(
    /\/$/,
    "",
  );
  try {
    await Deno.stat(`${root}/main.ts`);
  } catch {
    throw new BuildError(
      "building a release needs the Phase sources (run it from a clone of the repository)",
    );
  }
  return root;
}

/** `deno task release -- …` passes its `--` along; it separates nothing here. */
function withoutLeadingSeparator(argv: string[]): string[] {
  return argv[0] === "--" ? argv.slice(1) : argv;
}

/** Step lines on stderr, unless --json or --quiet. */
function progress(
  command: string,
  values: { json?: boolean; quiet?: boolean },
): (line: string) => void {
  return (line) =>
    values.json || values.quiet || console.error(`phase ${command}: ${line}`);
}

/** `phase release deb [--output DIR]`: the Debian package. */
export async function debCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    SPECS.deb,
    withoutLeadingSeparator(argv),
  );
  const built = await buildDeb({
    root: await sourceRoot(),
    output: values.output,
    log: progress("release deb", values),
  });
  if (values.json) {
    console.log(JSON.stringify({
      path: built.path,
      size: built.size,
      sha256: built.sha256,
      source_date_epoch: built.sourceDateEpoch,
      seconds: Number(built.seconds.toFixed(1)),
    }));
  } else if (!values.quiet) {
    console.log(`${built.path} (sha256 ${built.sha256})`);
  }
  return 0;
}

/** `phase release build --key FILE [options]`: the signed release folder. */
export async function buildCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    SPECS.build,
    withoutLeadingSeparator(argv),
  );
  if (!values.key) throw new UsageError("phase release build needs --key FILE");
  try {
    await Deno.stat(values.key);
  } catch {
    throw new CliError(
      `key file ${values.key} does not exist (create one with: phase keygen --output ${values.key})`,
    );
  }
  const key = await loadIdentity({ path: values.key });
  const built = await buildRelease({
    root: await sourceRoot(),
    output: values.output,
    key,
    cmdline: values.cmdline,
    mode: values.mode,
    provider: values.provider,
    cache: values.cache ?? `${envVar("HOME") ?? "/tmp"}/.cache/phase-boot`,
    kernelPackage: values["kernel-package"],
    log: progress("release build", values),
  });
  if (values.json) {
    console.log(JSON.stringify({
      ...built,
      seconds: Number(built.seconds.toFixed(1)),
    }));
  } else if (!values.quiet) {
    console.log(
      `release ${built.version} in ${built.dir}: ${built.files} files, signed by ${built.signer}`,
    );
  }
  return 0;
}
