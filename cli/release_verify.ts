/**
 * `phase release verify`. Apart from the builds so that it loads only the
 * verifier (release/sums.ts, not release/mod.ts with the builders and what
 * they import) and runs with read access alone.
 * @module
 */
import { verifyRelease } from "../release/sums.ts";
import { parsePublicKey } from "../schemas/mod.ts";
import { UsageError } from "./errors.ts";
import { parseCommandLine } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

/** `phase release verify DIR --pubkey KEY`: 0 when all of it checks out. */
export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    COMMANDS.release.subcommands.verify,
    argv,
  );
  if (positionals.length !== 1) {
    throw new UsageError(
      "phase release verify needs one folder (see: phase release verify --help)",
    );
  }
  let trustedKeys: Uint8Array[];
  try {
    trustedKeys = (values.pubkey ?? []).flatMap((k) => k.split(",")).map(
      parsePublicKey,
    );
  } catch (error) {
    throw new UsageError(`--pubkey: ${(error as Error).message}`);
  }
  const [dir] = positionals;
  const verdict = await verifyRelease(dir, trustedKeys);
  if (values.json) console.log(JSON.stringify(verdict));
  else if (verdict.valid) {
    console.log(
      `valid: release ${verdict.version} in ${dir}, ${verdict.files} files, signed by ${verdict.signer}`,
    );
  } else console.error(`phase: release ${dir} is invalid: ${verdict.reason}`);
  return verdict.valid ? 0 : 1;
}
