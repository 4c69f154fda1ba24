/**
 * The SDK's offline parts, in process: comparing receipts (each compared
 * field, when changed and signed by a node, is reported with its signers;
 * bad signatures are never grouped), spreading replicas over networks
 * (property-based), and preparing jobs.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compareReceipts,
  DisagreementError,
  type NodeInfo,
  outputHash,
  prepareJob,
  runReplicated,
  spreadNodes,
  type Transport,
  TransportError,
} from "../sdk/mod.ts";
import {
  type DisagreementReport,
  generateKey,
  inputHash,
  type NodeKey,
  type Receipt,
  SchemaError,
  sha256Ref,
  signReceipt,
  type UnsignedReceipt,
  validateDocument,
} from "../schemas/mod.ts";

import { cli, tempDir } from "./helpers.ts";

const RUNS = { numRuns: 200, seed: 20261207 };

const vector = JSON.parse(
  await Deno.readTextFile(
    new URL("./vectors/receipt_v1.json", import.meta.url),
  ),
).receipt as Receipt;

async function signedBy(
  key: NodeKey,
  change: (r: UnsignedReceipt) => UnsignedReceipt = (r) => r,
): Promise<Receipt> {
  const { signature: _, ...unsigned } = vector;
  return await signReceipt(
    change({ ...unsigned, node_peer_id: key.peerId }),
    key,
  );
}

Deno.test("compareReceipts: honest replicas agree whatever their times and nonces", async () => {
  const keys = await Promise.all([generateKey(), generateKey(), generateKey()]);
  const receipts = await Promise.all(
    keys.map((key, i) =>
      signedBy(key, (r) => ({
        ...r,
        nonce: `${i}`.repeat(16),
        job_id: `job-${i}`,
        execution: { ...r.execution, wall_time_ms: i * 7.5 },
      }))
    ),
  );
  const comparison = await compareReceipts(receipts);
  assert.equal(comparison.agree, true);
  assert.equal(comparison.groups.length, 1);
  assert.deepEqual(comparison.groups[0].peer_ids, keys.map((k) => k.peerId));
  assert.deepEqual(comparison.differences, []);
  assert.equal(
    comparison.groups[0].outcome.output_hash,
    await outputHash(receipts[0]),
  );
});

Deno.test("compareReceipts: every compared field, changed by one signer, is named with its signers", async () => {
  const [honest1, honest2, liar] = await Promise.all([
    generateKey(),
    generateKey(),
    generateKey(),
  ]);
  const changes: [string, (r: UnsignedReceipt) => UnsignedReceipt][] = [
    ["stdout", (r) => ({ ...r, stdout: r.stdout + "!" })],
    ["stderr", (r) => ({ ...r, stderr: "lie" })],
    ["stdout_truncated", (r) => ({ ...r, stdout_truncated: true })],
    ["execution.exit_code", (r) => ({
      ...r,
      execution: { ...r.execution, exit_code: 7 },
    })],
    ["execution.fuel_consumed", (r) => ({
      ...r,
      execution: { ...r.execution, fuel_consumed: 1 },
    })],
    ["execution.status", (r) => ({
      ...r,
      execution: { ...r.execution, status: "trap" },
    })],
    ["input_hash", (r) => ({ ...r, input_hash: `sha256:${"1".repeat(64)}` })],
  ];
  for (const [field, change] of changes) {
    const receipts = [
      await signedBy(honest1),
      await signedBy(liar, change),
      await signedBy(honest2),
    ];
    const comparison = await compareReceipts(receipts);
    assert.equal(comparison.agree, false, field);
    const difference = comparison.differences.find((d) => d.field === field);
    assert.ok(difference, `${field} is not reported`);
    assert.deepEqual(
      difference.values.map((v) => v.peer_ids),
      [[honest1.peerId, honest2.peerId], [liar.peerId]],
      field,
    );
    assert.equal(comparison.same_job, field !== "input_hash", field);
  }
});

Deno.test("compareReceipts: a bad signature is reported and never grouped", async () => {
  const [a, b] = await Promise.all([generateKey(), generateKey()]);
  const good = await signedBy(a);
  const forged = { ...(await signedBy(b)), stdout: "forged" };
  const comparison = await compareReceipts([good, forged, "not a receipt"]);
  assert.equal(comparison.agree, false);
  assert.deepEqual(comparison.checks.map((c) => c.valid), [true, false, false]);
  assert.match(comparison.checks[1].reason!, /signature/);
  assert.deepEqual(comparison.groups.map((g) => g.peer_ids), [[a.peerId]]);
});

Deno.test("spreadNodes: distinct peer ids, one per network before a second from any", () => {
  const node = fc.record({
    peerId: fc.constantFrom("p1", "p2", "p3", "p4", "p5", "p6"),
    net: fc.integer({ min: 1, max: 4 }),
    host: fc.integer({ min: 1, max: 254 }),
  });
  fc.assert(
    fc.property(fc.array(node, { maxLength: 12 }), (raw) => {
      const nodes: NodeInfo[] = raw.map((n) => ({
        peerId: n.peerId,
        address: `/ip4/10.0.${n.net}.${n.host}/tcp/4001`,
      }));
      const out = spreadNodes(nodes);
      const ids = out.map((n) => n.peerId);
      assert.equal(new Set(ids).size, ids.length);
      assert.deepEqual(new Set(ids), new Set(nodes.map((n) => n.peerId)));
      const network = (n: NodeInfo) => n.address!.split(".")[2];
      const networks = new Set(out.map(network)).size;
      assert.equal(new Set(out.slice(0, networks).map(network)).size, networks);
    }),
    RUNS,
  );
});

Deno.test("prepareJob: the hashes a receipt must carry, a fresh nonce each time", async () => {
  const module = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  const a = await prepareJob({ module, args: ["x"], stdin: "in" });
  const b = await prepareJob({
    module: module.buffer,
    args: ["x"],
    stdin: "in",
  });
  assert.equal(a.moduleHash, await sha256Ref(module));
  assert.equal(
    a.inputHash,
    await inputHash({
      args: ["x"],
      env: {},
      stdin: new TextEncoder().encode("in"),
    }),
  );
  assert.equal(a.inputHash, b.inputHash);
  assert.notEqual(a.nonce, b.nonce);
  assert.notEqual(a.jobId, b.jobId);
  assert.match(a.nonce, /^[0-9a-f]{32}$/);
});

/**
 * A transport whose nodes are keys in this process: each signs a receipt
 * for exactly the job it was sent (a liar with another output), or fails.
 */
function keyTransport(
  nodes: { key: NodeKey; lie?: boolean; fail?: boolean }[],
): Transport & { asked: string[] } {
  const asked: string[] = [];
  return {
    kind: "test",
    bindsJobId: true,
    asked,
    nodes: () =>
      Promise.resolve(nodes.map((n, i) => ({
        peerId: n.key.peerId,
        address: `/ip4/10.0.${i}.1/tcp/4001`,
      }))),
    async execute(job, { node }) {
      const chosen = nodes.find((n) => n.key.peerId === node?.peerId)!;
      asked.push(chosen.key.peerId);
      if (chosen.fail) throw new TransportError("unreachable");
      const receipt = await signedBy(chosen.key, (r) => ({
        ...r,
        job_id: job.jobId,
        nonce: job.nonce,
        module_hash: job.moduleHash as `sha256:${string}`,
        input_hash: job.inputHash as `sha256:${string}`,
        stdout: chosen.lie ? "42\n" : r.stdout,
      }));
      return { receipt, node: node! };
    },
    close: () => Promise.resolve(),
  };
}

Deno.test("runReplicated: majority outvotes a liar, a failed node is replaced, all refuses with a valid report", async () => {
  const keys = await Promise.all(
    Array.from({ length: 5 }, () => generateKey()),
  );
  const job = await prepareJob({ module: new Uint8Array(8), args: ["x"] });
  const signal = new AbortController().signal;
  const transport = keyTransport([
    { key: keys[0] },
    { key: keys[1], fail: true },
    { key: keys[2], lie: true },
    { key: keys[3] },
  ]);
  const majority = await runReplicated(transport, job, {
    replicas: 3,
    agree: "majority",
    signal,
  });
  assert.deepEqual(majority.replication.dissenters, [keys[2].peerId]);
  assert.deepEqual(
    new Set(majority.replication.agreeing),
    new Set([keys[0].peerId, keys[3].peerId]),
  );
  assert.ok(
    transport.asked.includes(keys[3].peerId),
    "the failed node was replaced",
  );
  assert.equal(
    majority.replication.report!.failures[0].peer_id,
    keys[1].peerId,
  );

  const error = await runReplicated(transport, job, {
    replicas: 3,
    agree: "all",
    signal,
  }).then(() => null, (e) => e);
  assert.ok(error instanceof DisagreementError);
  const report = validateDocument<DisagreementReport>(
    "disagreement report",
    JSON.parse(JSON.stringify(error.report)),
  );
  assert.deepEqual(report.dissenters, [keys[2].peerId]);
  assert.equal((await compareReceipts(report.receipts)).agree, false);

  // A tie names everyone; too few nodes is a transport failure.
  const tie = keyTransport([
    { key: keys[0] },
    { key: keys[2], lie: true },
  ]);
  const tied = await runReplicated(tie, job, {
    replicas: 2,
    agree: "majority",
    signal,
  }).then(() => null, (e) => e);
  assert.ok(tied instanceof DisagreementError);
  assert.equal(tied.report.dissenters.length, 2);
  await assert.rejects(
    runReplicated(tie, job, { replicas: 3, agree: "all", signal }),
    TransportError,
  );
  await assert.rejects(
    runReplicated(tie, job, { replicas: 65, agree: "all", signal }),
    /from 1 to 64/,
  );
});

Deno.test("disagreement report schema: strangers' reports are bounded and typed", () => {
  fc.assert(
    fc.property(fc.anything(), (value) => {
      try {
        validateDocument("disagreement report", value);
        return false; // nothing random is a report
      } catch (error) {
        return error instanceof SchemaError &&
          !error.message.includes("\n");
      }
    }),
    RUNS,
  );
});

Deno.test("phase receipt compare: hostile or unusable files are one line and exit 1 or 2", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const key = await generateKey();
    const receipt = await signedBy(key);
    await Deno.writeTextFile(`${dir}/r.json`, JSON.stringify(receipt));
    await Deno.writeTextFile(
      `${dir}/report.json`,
      JSON.stringify({
        type: "phase-disagreement-report",
        receipts: Array(100).fill(receipt),
      }),
    );
    await Deno.writeTextFile(`${dir}/junk.json`, "{not json");
    for (
      const [args, code] of [
        [[`${dir}/report.json`], 1],
        [[`${dir}/r.json`, `${dir}/junk.json`], 1],
        [[`${dir}/r.json`], 2],
        [[`${dir}/r.json`, `${dir}/missing.json`], 1],
      ] as const
    ) {
      const out = await cli(["receipt", "compare", ...args]);
      assert.equal(out.code, code, out.stderr);
      assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
      assert.match(out.stderr, /^phase: /);
    }
    const same = await cli([
      "receipt",
      "compare",
      `${dir}/r.json`,
      `${dir}/r.json`,
      "--json",
    ]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(JSON.parse(same.stdout).agree, true);
  } finally {
    await cleanup();
  }
});

Deno.test("the SDK's core loads only schemas/, runner/version.ts and web-standard APIs", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "sdk/mod.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; kind?: string }[];
    npmPackages?: Record<string, unknown>;
  };
  const root = new URL("../", import.meta.url).href;
  const local = graph.modules.map((m) => m.specifier)
    .filter((s) => s.startsWith(root));
  for (const url of local) {
    const file = url.slice(root.length);
    assert.match(
      file,
      /^(sdk|schemas)\/|^runner\/version\.ts$/,
      `sdk/mod.ts reaches ${file}`,
    );
    if (/\.(ts|js)$/.test(file)) {
      // Code only: documentation may show Deno and Node examples.
      const code = (await Deno.readTextFile(new URL(url)))
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/^\s*\/\/.*$/gm, "");
      assert.doesNotMatch(
        code,
        /\bDeno\.|from "node:/,
        `${file} uses a platform API`,
      );
    }
  }
  assert.ok(local.some((url) => url.endsWith("sdk/client.ts")));
  const packages = graph.modules.map((m) => m.specifier)
    .filter((s) => s.startsWith("npm:") || s.startsWith("node:"));
  for (const name of packages) {
    // ajv appears for its types and the helpers compiled_validators.js
    // names; no libp2p and no node: module.
    assert.match(
      name,
      /^npm:\/?(@noble\/ed25519|canonicalize|multiformats|ajv|ajv-formats)@/,
      name,
    );
  }
});
