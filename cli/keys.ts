/**
 * `phase keygen`: creates an Ed25519 key file (a node key, or a release key
 * for signing boot manifests) and prints its peer id.
 * @module
 */
import { writeKeyFile } from "../runner/mod.ts";
import { generateKey, toBase64 } from "../schemas/mod.ts";
import { dataDir, dataPaths } from "./paths.ts";
import { parseCommandLine } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

/** `phase keygen [--output FILE] [--json]` */
export async function keygenCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.keygen, argv);
  const path = values.output ?? dataPaths(dataDir(values["data-dir"])).key;
  const key = await generateKey();
  // The data directory is created on first use; an --output folder must
  // exist (a typo is an error, not a new folder).
  await writeKeyFile(path, key, { createFolder: values.output === undefined });
  if (values.json) {
    console.log(JSON.stringify({
      path,
      peer_id: key.peerId,
      public_key: toBase64(key.publicKey),
    }));
  } else {
    console.log(`wrote ${path}`);
    console.log(`peer id:    ${key.peerId}`);
    console.log(`public key: ${toBase64(key.publicKey)}`);
  }
  return 0;
}
