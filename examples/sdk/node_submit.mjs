// Runs the hello job on a Phase node from Node (20 or later) with the SDK's
// npm package, over HTTP and over libp2p, and prints each verified answer.
//
//   deno task build:sdk                      # build/sdk/phase-sdk-<version>.tgz
//   npm install ./build/sdk/phase-sdk-*.tgz  # in your project
//   node node_submit.mjs http://127.0.0.1:8080 /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW… hello.wasm
import { readFile } from "node:fs/promises";
import { httpTransport, PhaseClient, PhaseError } from "@phase/sdk";
import { p2pTransport } from "@phase/sdk/p2p";

const [url, bootstrap, modulePath = "hello.wasm"] = process.argv.slice(2);
if (!url || !bootstrap) {
  console.error(
    "usage: node node_submit.mjs HTTP_URL BOOTSTRAP_MULTIADDR [module.wasm]",
  );
  process.exit(2);
}
const module = await readFile(modulePath);
const transports = {
  http: httpTransport({ urls: url }),
  p2p: p2pTransport({ bootstrap: [bootstrap] }),
};
let failed = false;
for (const [name, transport] of Object.entries(transports)) {
  const client = new PhaseClient({ transport });
  try {
    const result = await client.run({ module, args: ["Hello from Node"] });
    console.log(
      `${name}: ${result.stdout.trim()} (exit ${result.exitCode}, receipt verified, signed by ${result.node.peerId})`,
    );
  } catch (error) {
    if (!(error instanceof PhaseError)) throw error;
    console.error(`${name}: ${error.name}: ${error.message}`);
    failed = true;
  } finally {
    await client.close();
  }
}
process.exit(failed ? 1 : 0);
