/**
 * `phase manifest generate|sign|verify`: boot manifests signed offline by a
 * release key, verified against keys the user pins.
 * @module
 */
import {
  ArtifactStore,
  buildManifest,
  CHANNELS,
  fetchJson,
} from "../provider/mod.ts";
import { loadIdentity } from "../runner/mod.ts";
import {
  type BootManifest,
  type Channel,
  parsePublicKey,
  signManifest,
  validateBootManifest,
  verifyManifest,
} from "../schemas/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { readInput } from "./run.ts";
import { parseCommandLine, usageError } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

const { generate, sign, verify } = COMMANDS.manifest.subcommands;

async function readManifestFrom(source: string): Promise<unknown> {
  if (/^https?:\/\//.test(source)) {
    const { status, body } = await fetchJson(source);
    if (status !== 200) throw new CliError(`${source} answered HTTP ${status}`);
    return body;
  }
  const text = new TextDecoder().decode(await readInput(source, "manifest"));
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`manifest ${source} is not JSON`);
  }
}

async function write(path: string | undefined, manifest: BootManifest) {
  const text = JSON.stringify(manifest, null, 2) + "\n";
  if (!path || path === "-") {
    await Deno.stdout.write(new TextEncoder().encode(text));
    return;
  }
  const temporary = `${path}.tmp`;
  await Deno.writeTextFile(temporary, text);
  await Deno.rename(temporary, path);
}

/** `phase manifest generate --artifacts DIR [options]` */
export async function generateCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(generate, argv);
  if (!values.artifacts) throw usageError(generate);
  if (!CHANNELS.includes(values.channel as Channel)) {
    throw new UsageError(`--channel must be one of ${CHANNELS.join(", ")}`);
  }
  const manifestVersion = values["manifest-version"]
    ? Number(values["manifest-version"])
    : Math.floor(Date.now() / 1000);
  if (!Number.isInteger(manifestVersion) || manifestVersion < 1) {
    throw new UsageError("--manifest-version wants a positive integer");
  }
  const store = new ArtifactStore({ root: values.artifacts });
  if ((await store.list(values.channel, values.arch)).length === 0) {
    throw new CliError(
      `no artifacts in ${values.artifacts}/${values.channel}/${values.arch}`,
    );
  }
  const manifest = await buildManifest({
    store,
    channel: values.channel as Channel,
    arch: values.arch,
    manifestVersion,
    version: values.version,
    cmdline: values.cmdline,
    validityDays: Number(values["validity-days"]),
  });
  await write(values.output, manifest);
  if (values.output && values.output !== "-") {
    const count = Object.keys(manifest.artifacts).length;
    console.error(
      `wrote ${values.output}: ${manifest.channel}/${manifest.arch} version ${manifest.version}, manifest_version ${manifest.manifest_version}, ${count} artifact${
        count === 1 ? "" : "s"
      }, expires ${manifest.expires_at} (unsigned: sign it with phase manifest sign)`,
    );
  }
  return 0;
}

/** `phase manifest sign FILE --key KEYFILE [--output FILE]` */
export async function signCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(sign, argv);
  const [path] = positionals;
  if (!path || !values.key) throw usageError(sign);
  const manifest = validateBootManifest(await readManifestFrom(path));
  let key;
  try {
    await Deno.stat(values.key);
    key = await loadIdentity({ path: values.key });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CliError(
        `key file ${values.key} does not exist (create one with: phase keygen --output ${values.key})`,
      );
    }
    throw error;
  }
  const signed = await signManifest(manifest, key);
  await write(values.output ?? path, signed);
  if (values.output !== "-") console.error(`signed by ${key.peerId}`);
  return 0;
}

/** `phase manifest verify FILE|URL --pubkey KEY [--pubkey KEY…]` */
export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(verify, argv);
  const [source] = positionals;
  if (!source || !values.pubkey?.length) throw usageError(verify);
  let trustedKeys: Uint8Array[];
  try {
    trustedKeys = values.pubkey.flatMap((k) => k.split(",")).map(
      parsePublicKey,
    );
  } catch (error) {
    throw new UsageError(`--pubkey: ${(error as Error).message}`);
  }
  const verdict = await verifyManifest(await readManifestFrom(source), {
    trustedKeys,
    minVersion: values["min-version"]
      ? Number(values["min-version"])
      : undefined,
    channel: values.channel,
    arch: values.arch,
  });
  if (values.json) {
    console.log(
      JSON.stringify(
        verdict.valid
          ? {
            valid: true,
            signer: verdict.signer,
            manifest_version: verdict.manifest.manifest_version,
          }
          : { valid: false, reason: verdict.reason },
      ),
    );
  } else if (verdict.valid) {
    console.log(
      `valid: ${source} signed by ${verdict.signer} (manifest_version ${verdict.manifest.manifest_version})`,
    );
  } else {
    console.error(`phase: manifest ${source} is invalid: ${verdict.reason}`);
  }
  return verdict.valid ? 0 : 1;
}
