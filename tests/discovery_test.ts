import assert from "node:assert/strict";
import { lpStream } from "@libp2p/utils";
import type { Stream } from "@libp2p/interface";
import {
  acceptJobs,
  type Capability,
  capabilityKey,
  decodeRecord,
  encodeRecord,
  findBootProviders,
  JOB_PROTOCOL,
  JobRejected,
  MAX_RECORD_BYTES,
  PhaseNode,
  publishBootProvider,
  RecordError,
  selectRecord,
  signRecord,
  submitAuto,
  submitJob,
} from "../discovery/mod.ts";
import { runJob, RUNTIME_VERSION, SandboxPool } from "../runner/mod.ts";
import { JobService } from "../node/mod.ts";
import { canonicalBytes, fromBase64, generateKey } from "../schemas/mod.ts";
import { example } from "./helpers.ts";

// libp2p keeps timers and sockets past stop(); the process-level tests in
// p2p_cli_test.ts check that real processes exit.
const LIBP2P = { sanitizeOps: false, sanitizeResources: false };

function capability(overrides: Partial<Capability> = {}): () => Capability {
  return () => ({
    arch: "x86_64",
    cpu_cores: 2,
    memory_mb: 512,
    runtime: { name: "phase-deno", version: RUNTIME_VERSION, wasi: "preview1" },
    limits: { max_timeout_seconds: 60, max_module_bytes: 16 << 20 },
    load: { queued: 0, queue_limit: 64 },
    ...overrides,
  });
}

async function start(
  bootstrap: PhaseNode | null,
  options: Partial<Parameters<typeof PhaseNode.start>[0]> = {},
) {
  return await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: bootstrap ? [bootstrap.multiaddrs()[0]] : [],
    ...options,
  });
}

/**
 * Looks up capable x86_64 nodes until `count` are found or 30 lookups have
 * run: records published before later peers arrived are re-published on
 * connect, so a lookup right after start-up can see fewer. Returns the last
 * lookup and how long it took.
 */
/**
 * The lookups' own timeout here, long: a lookup that ends well before it
 * ended by itself, however busy the machine (speed is the bench's to judge).
 */
const LOOKUP_TIMEOUT_MS = 60_000;

async function findConverged(client: PhaseNode, count: number) {
  for (let attempt = 1;; attempt++) {
    const started = performance.now();
    const found = await client.findCapable(
      { arch: "x86_64" },
      LOOKUP_TIMEOUT_MS,
    );
    const elapsed = performance.now() - started;
    if (found.length >= count || attempt === 30) return { found, elapsed };
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("records: forged, expired, wrong-signer, oversized and misplaced records are refused", async () => {
  const owner = await generateKey();
  const other = await generateKey();
  const key = capabilityKey(owner.peerId);
  const good = await signRecord(owner, {
    type: "capability",
    key,
    seq: 5,
    payload: capability()(),
  });
  const bytes = (r: unknown) => canonicalBytes(r);
  assert.equal((await decodeRecord(key, encodeRecord(good))).seq, 5);
  // The same record in another JSON spelling is refused: only JCS is stored.
  for (
    const spelling of [
      JSON.stringify(good, null, 1),
      "\ufeff" + new TextDecoder().decode(encodeRecord(good)),
      new TextDecoder().decode(encodeRecord(good)).replace(
        '{"expires_at"',
        '{"type":"boot-provider","expires_at"',
      ),
    ]
  ) {
    await assert.rejects(
      decodeRecord(key, new TextEncoder().encode(spelling)),
      /canonical/,
    );
  }
  const cases: [string, Uint8Array, RegExp][] = [
    [
      "forged",
      bytes({ ...good, payload: { ...good.payload, cpu_cores: 64 } }),
      /signature is invalid/,
    ],
    ["unsigned", bytes({ ...good, signature: "" }), /signature is invalid/],
    [
      "expired",
      encodeRecord(
        await signRecord(owner, {
          type: "capability",
          key,
          seq: 6,
          payload: capability()(),
          ttlMs: -1000,
        }),
      ),
      /expired/,
    ],
    [
      "wrong signer",
      encodeRecord(
        await signRecord(other, {
          type: "capability",
          key,
          seq: 7,
          payload: capability()(),
        }),
      ),
      /signed by another peer/,
    ],
    [
      "misplaced",
      encodeRecord(
        await signRecord(owner, {
          type: "capability",
          key: capabilityKey(other.peerId),
          seq: 1,
          payload: capability()(),
        }),
      ),
      /stored under another key/,
    ],
    [
      "oversized",
      bytes({ ...good, payload: { big: "x".repeat(MAX_RECORD_BYTES) } }),
      /limit is/,
    ],
    ["not JSON", new TextEncoder().encode("{"), /not JSON/],
  ];
  for (const [name, value, reason] of cases) {
    await assert.rejects(decodeRecord(key, value), (e: Error) => {
      assert.ok(e instanceof RecordError, name);
      assert.match(e.message, reason, name);
      return true;
    });
  }
  assert.throws(
    () =>
      encodeRecord({ ...good, payload: { big: "x".repeat(MAX_RECORD_BYTES) } }),
    RecordError,
  );
  const newer = await signRecord(owner, {
    type: "capability",
    key,
    seq: 9,
    payload: capability()(),
  });
  const k = new TextEncoder().encode(key);
  assert.equal(
    await selectRecord(k, [encodeRecord(good), encodeRecord(newer)]),
    1,
  );
  assert.equal(
    await selectRecord(k, [encodeRecord(good), bytes({ ...newer, seq: 99 })]),
    0,
  );
});

Deno.test({
  name:
    "a DHT of 12 nodes in one process: capable nodes are found, forged records never stored",
  ...LIBP2P,
  fn: async () => {
    const nodes: PhaseNode[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        nodes.push(
          await start(nodes.length ? nodes[Math.floor(i / 2)] : null, {
            capability: i % 3 === 0 ? capability() : undefined,
          }),
        );
      }
      const client = await start(nodes[11], { clientMode: true });
      nodes.push(client);
      const { found, elapsed } = await findConverged(client, 4);
      assert.deepEqual(
        found.map((f) => f.peerId).sort(),
        [nodes[0], nodes[3], nodes[6], nodes[9]].map((n) => n.peerId).sort(),
      );
      assert.ok(
        elapsed < LOOKUP_TIMEOUT_MS / 2,
        `the lookup took ${elapsed} ms`,
      );
      // A forged capability record put straight into the DHT is refused.
      const victim = nodes[3];
      const forger = await generateKey();
      const forged = await signRecord(forger, {
        type: "capability",
        key: capabilityKey(victim.peerId),
        seq: Number.MAX_SAFE_INTEGER,
        payload: { arch: "evil" },
      });
      const attempt = async () => {
        for await (
          const _ of nodes[5].libp2p.services.dht.put(
            new TextEncoder().encode(capabilityKey(victim.peerId)),
            encodeRecord({ ...forged, peer_id: victim.peerId }),
            { signal: AbortSignal.timeout(3000) },
          )
        ) { /* drain */ }
      };
      await attempt().catch(() => {});
      const record = await client.getRecord(capabilityKey(victim.peerId));
      assert.equal(record?.payload.arch, "x86_64");
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  },
});

/** A libp2p node running jobs with its own job service (closed with the node). */
async function jobNode(
  bootstrap: PhaseNode | null,
  options: { arch?: "x86_64" | "aarch64"; queueLimit?: number } = {},
) {
  const key = await generateKey();
  const jobs = new JobService({
    key,
    arch: options.arch ?? "x86_64",
    sandboxSize: 1,
    queueLimit: options.queueLimit,
  });
  const services = {
    key,
    arch: options.arch ?? "x86_64",
    dataDir: null,
    jobs,
    capability: () => jobs.capability(),
  };
  const node = await PhaseNode.start({
    key,
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: bootstrap ? [bootstrap.multiaddrs()[0]] : [],
    capability: services.capability,
  });
  await acceptJobs(node, services);
  const stop = node.stop.bind(node);
  node.stop = async () => {
    await stop();
    await jobs.close();
  };
  return Object.assign(node, { jobs });
}

Deno.test({
  name:
    "remote jobs: receipts bind to the remote peer; refusing nodes make the client move on",
  ...LIBP2P,
  fn: async () => {
    const nodes: PhaseNode[] = [];
    try {
      const good = await jobNode(null);
      nodes.push(good);
      const arm = await jobNode(good, { arch: "aarch64" });
      nodes.push(arm);
      // A node whose only slot is taken and whose queue holds nothing.
      const full = await jobNode(good, { queueLimit: 0 });
      nodes.push(full);
      full.jobs.admit("holder", 0);
      const client = await start(good, { clientMode: true });
      nodes.push(client);
      const job = { module: example("hello"), args: ["Hello, World!"] };
      const direct = await submitJob(client, good.peerId, job);
      assert.equal(direct.stdout, "!dlroW ,olleH\n");
      assert.equal(direct.receipt.node_peer_id, good.peerId);
      assert.equal(direct.peerId, good.peerId);
      // The offer's fuel budget is the remote job's budget.
      const metered = await submitJob(client, good.peerId, {
        module: example("infinite_loop"),
        requirements: { fuel: 5000 },
      });
      assert.equal(metered.receipt.limits.fuel, 5000);
      assert.equal(metered.receipt.execution.status, "fuel_exhausted");
      await assert.rejects(
        submitJob(client, good.peerId, { ...job, requirements: { fuel: 0.5 } }),
        (e: Error) => {
          assert.equal((e as JobRejected).reason, "InvalidRequest");
          return true;
        },
      );
      await assert.rejects(
        submitJob(client, arm.peerId, {
          ...job,
          requirements: { arch: "x86_64" },
        }),
        (e: Error) => {
          assert.ok(e instanceof JobRejected);
          assert.equal(e.reason, "ArchMismatch");
          return true;
        },
      );
      await assert.rejects(submitJob(client, full.peerId, job), (e: Error) => {
        assert.equal((e as JobRejected).reason, "QueueFull");
        return true;
      });
      await assert.rejects(
        submitJob(client, good.peerId, {
          ...job,
          requirements: { memory_mb: 4096 },
        }),
        (e: Error) => {
          assert.equal((e as JobRejected).reason, "InsufficientResources");
          return true;
        },
      );
      await findConverged(client, 2);
      // --auto: the full node is tried first (all report queue 0), refuses, and the client moves on.
      const skipped: string[] = [];
      const auto = await submitAuto(client, {
        ...job,
        requirements: { arch: "x86_64" },
      }, {
        arch: "x86_64",
        onAttempt: ({ peerId }) => skipped.push(peerId),
      });
      assert.equal(auto.peerId, good.peerId);
      assert.ok(skipped.every((p) => p === full.peerId));
      // Boot providers coexist per channel/arch.
      await publishBootProvider(
        good,
        "stable",
        "x86_64",
        "http://127.0.0.1:1/a.json",
      );
      await publishBootProvider(
        arm,
        "stable",
        "x86_64",
        "http://127.0.0.1:2/b.json",
      );
      const providers = await findBootProviders(client, "stable", "x86_64");
      assert.deepEqual(providers.map((p) => p.manifestUrl).sort(), [
        "http://127.0.0.1:1/a.json",
        "http://127.0.0.1:2/b.json",
      ]);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  },
});

Deno.test({
  name: "a tampered JobResult or a receipt from another signer is detected",
  ...LIBP2P,
  fn: async () => {
    const pool = new SandboxPool({ size: 1 });
    const nodes: PhaseNode[] = [];
    try {
      for (const mode of ["stdout", "signer"] as const) {
        const key = await generateKey();
        const impostor = await generateKey();
        const node = await PhaseNode.start({
          key,
          listen: ["/ip4/127.0.0.1/tcp/0"],
        });
        nodes.push(node);
        // A dishonest node: runs the job, then lies about it.
        await node.libp2p.handle(JOB_PROTOCOL, async (stream: Stream) => {
          const lp = lpStream(stream, { maxDataLength: 1 << 25 });
          const read = async () =>
            JSON.parse(new TextDecoder().decode((await lp.read()).subarray()));
          const write = (m: unknown) =>
            lp.write(new TextEncoder().encode(JSON.stringify(m)));
          const offer = await read();
          await write({
            type: "accepted",
            job_id: offer.job_id,
            node_peer_id: key.peerId,
            module_cached: false,
          });
          const request = await read();
          const { receipt } = await runJob({
            module: fromBase64(request.module),
            args: request.args,
            env: request.env,
            stdin: fromBase64(request.stdin),
            nonce: offer.nonce,
            jobId: offer.job_id,
          }, { sandbox: pool, key: mode === "signer" ? impostor : key });
          await write({
            type: "result",
            job_id: offer.job_id,
            receipt: mode === "stdout"
              ? { ...receipt, stdout: "forged\n" }
              : receipt,
          });
          await stream.close();
        });
        const client = await start(node, { clientMode: true });
        nodes.push(client);
        await assert.rejects(
          submitJob(client, node.peerId, {
            module: example("hello"),
            args: ["x"],
          }),
          (e: Error) => {
            assert.ok(e instanceof JobRejected);
            assert.equal(e.reason, "Tampered");
            assert.match(
              e.message,
              mode === "stdout"
                ? /receipt rejected: invalid signature/
                : /receipt rejected: peerId is/,
            );
            return true;
          },
        );
      }
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await pool.close();
    }
  },
});
