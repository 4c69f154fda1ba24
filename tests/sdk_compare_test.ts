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
  type NodeInfo,
  outputHash,
  prepareJob,
  spreadNodes,
} from "../sdk/mod.ts";
import {
  generateKey,
  inputHash,
  type NodeKey,
  type Receipt,
  sha256Ref,
  signReceipt,
  type UnsignedReceipt,
} from "../schemas/mod.ts";

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
