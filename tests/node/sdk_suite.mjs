// Not named *.test.mjs: deno test must not run it (node --test does).
// The SDK's npm package under Node's own test runner, installed from the
// packed tarball, against real Phase nodes started by tests/sdk_npm_test.ts
// (which passes their addresses in the environment).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import {
  httpTransport,
  InvalidReceiptError,
  PHASE_VERSION,
  PhaseClient,
  RefusedError,
  TransportError,
  verifyBootManifest,
  verifyReceipt,
} from "@phase/sdk";
import { p2pTransport } from "@phase/sdk/p2p";

const {
  PHASE_URL,
  PHASE_PEER,
  PHASE_OTHER_PEER,
  PHASE_BOOTSTRAP,
  PHASE_HELLO,
  PHASE_EXAMPLE,
} = process.env;
const hello = await readFile(PHASE_HELLO);

test("the package is Phase's version", async () => {
  const pkg = JSON.parse(
    await readFile(new URL(import.meta.resolve("@phase/sdk/package.json"))),
  );
  assert.equal(pkg.version, PHASE_VERSION);
});

test("http: a verified run signed by the node asked", async () => {
  const client = new PhaseClient({
    transport: httpTransport({ urls: PHASE_URL }),
  });
  const result = await client.run({ module: hello, args: ["Node"] });
  assert.equal(result.stdout, "edoN\n");
  assert.equal(result.exitCode, 0);
  assert.equal(result.node.peerId, PHASE_PEER);
  assert.equal(
    (await verifyReceipt(result.receipt, { peerId: PHASE_PEER })).valid,
    true,
  );
  const tampered = {
    ...result.receipt,
    execution: { ...result.receipt.execution, exit_code: 1 },
  };
  const verdict = await verifyReceipt(tampered);
  assert.equal(verdict.valid, false);
  assert.match(verdict.reason, /signature/);
});

test("http: refusals are RefusedError with the protocol's reason", async () => {
  const client = new PhaseClient({
    transport: httpTransport({ urls: PHASE_URL }),
  });
  await assert.rejects(
    client.run({ module: hello, memoryMb: 60000 }),
    (e) => e instanceof RefusedError && e.reason === "InsufficientResources",
  );
});

test("http: a receipt changed on the way is InvalidReceiptError", async () => {
  const lying = async (input, init) => {
    const response = await fetch(input, init);
    if (!String(input).endsWith("/jobs")) return response;
    const receipt = await response.json();
    return Response.json({ ...receipt, stdout: "forged\n" });
  };
  const client = new PhaseClient({
    transport: httpTransport({ urls: PHASE_URL, fetch: lying }),
  });
  await assert.rejects(client.run({ module: hello }), InvalidReceiptError);
});

test("p2p: a verified run through a bootstrap peer; errors across entry points", async () => {
  const client = new PhaseClient({
    transport: p2pTransport({ bootstrap: [PHASE_BOOTSTRAP] }),
  });
  try {
    const result = await client.run({ module: hello, args: ["libp2p"] });
    assert.equal(result.stdout, "p2pbil\n");
    assert.equal(result.receipt.node_peer_id, result.node.peerId);
    assert.equal(
      (await verifyReceipt(result.receipt, { peerId: result.node.peerId }))
        .valid,
      true,
    );
    // Every capable node refuses 60 GB: the p2p entry's error is the main one's class.
    await assert.rejects(
      client.run({ module: hello, memoryMb: 60000 }),
      TransportError,
    );
  } finally {
    await client.close();
  }
});

test("boot manifests verify against a pinned key only", async () => {
  const manifest = await (await fetch(`${PHASE_URL}/manifest.json`)).json();
  const good = await verifyBootManifest(manifest, {
    trustedKeys: [PHASE_PEER],
  });
  assert.equal(good.valid, true, good.reason);
  const bad = await verifyBootManifest(manifest, {
    trustedKeys: [PHASE_OTHER_PEER],
  });
  assert.equal(bad.valid, false);
});

test("examples/sdk/node_submit.mjs runs over HTTP and p2p", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [
    PHASE_EXAMPLE,
    PHASE_URL,
    PHASE_BOOTSTRAP,
    PHASE_HELLO,
  ]);
  assert.match(
    stdout,
    /^http: edoN morf olleH \(exit 0, receipt verified, signed by 12D3KooW\w+\)$/m,
  );
  assert.match(
    stdout,
    /^p2p: edoN morf olleH \(exit 0, receipt verified, signed by 12D3KooW\w+\)$/m,
  );
});
