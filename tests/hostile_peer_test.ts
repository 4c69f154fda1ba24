/**
 * Strangers against a real node (startNode with the HTTP and libp2p
 * transports, as `phase serve` assembles it): each test plays one hostile
 * peer or client over real sockets.
 */
import assert from "node:assert/strict";
import type { Stream } from "@libp2p/interface";
import { createLibp2p } from "libp2p";
import { kadDHT, passthroughMapper } from "@libp2p/kad-dht";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import {
  CAPABILITY_PROTOCOL,
  capabilityKey,
  capabilityTopic,
  DHT_PROTOCOL,
  encodeLength,
  encodeRecord,
  FrameStream,
  JOB_PROTOCOL,
  MAX_MESSAGE_BYTES,
  p2pTransport,
  PhaseNode,
  signRecord,
  submitJob,
  WASM_RUNTIME,
} from "../discovery/mod.ts";
import { cidFor } from "../discovery/node.ts";
import { httpTransport } from "../provider/mod.ts";
import {
  fetchModule,
  isPublicAddress,
  ModuleFetchError,
  ReceiptStore,
  type RunningNode,
  startNode,
} from "../node/mod.ts";
import {
  generateKey,
  type NodeKey,
  type Receipt,
  type ScratchSeed,
  sha256Ref,
  toBase64,
  validateDocument,
} from "../schemas/mod.ts";
import {
  cli,
  example,
  loopbackServeArgs,
  ROOT,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";

const ROOT_EXAMPLES = `${ROOT}/examples/wasm`;

// libp2p keeps timers and sockets past stop(); process tests check exits.
const LIBP2P = { sanitizeOps: false, sanitizeResources: false };

/** A full node on loopback, assembled like `phase serve`. */
async function fullNode(
  dataDir: string,
  options: {
    bootstrap?: PhaseNode | RunningNode | null;
    receiptsMaxCount?: number;
    /** Address the HTTP transport binds (default 127.0.0.1). */
    hostname?: string;
  } = {},
): Promise<RunningNode & { addr: string; url: string }> {
  await Deno.mkdir(`${dataDir}/artifacts/stable/x86_64`, { recursive: true });
  await Deno.writeFile(
    `${dataDir}/artifacts/stable/x86_64/hello.wasm`,
    example("hello"),
  );
  const boot = options.bootstrap;
  const bootstrap = !boot
    ? []
    : boot instanceof PhaseNode
    ? [boot.multiaddrs()[0]]
    : [(boot.transports.libp2p.multiaddrs as string[])[0]];
  const node = await startNode({
    key: await generateKey(),
    arch: "x86_64",
    dataDir,
    jobs: { sandboxSize: 1, receiptsMaxCount: options.receiptsMaxCount },
    transports: [
      httpTransport({
        artifactsDir: `${dataDir}/artifacts`,
        dataDir,
        hostname: options.hostname ?? "127.0.0.1",
        port: 0,
      }),
      p2pTransport({
        listen: ["/ip4/127.0.0.1/tcp/0"],
        bootstrap,
        mode: "internet",
      }),
    ],
  });
  return Object.assign(node, {
    addr: (node.transports.libp2p.multiaddrs as string[])[0],
    url: node.transports.http.url as string,
  });
}

async function client(bootstrap: string): Promise<PhaseNode> {
  return await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: [bootstrap],
    clientMode: true,
  });
}

/**
 * A test against a full node on loopback and a libp2p client joined to it;
 * both, and the node's folder, are closed afterwards.
 */
function nodeTest(
  name: string,
  fn: (context: {
    dir: string;
    node: Awaited<ReturnType<typeof fullNode>>;
    peer: PhaseNode;
  }) => Promise<void>,
): void {
  Deno.test({
    name,
    ...LIBP2P,
    fn: async () => {
      const [dir, cleanup] = await tempDir();
      const node = await fullNode(dir);
      const peer = await client(node.addr);
      try {
        await fn({ dir, node, peer });
      } finally {
        await peer.stop();
        await node.close();
        await cleanup();
      }
    },
  });
}

/**
 * Plays a raw job exchange: sends each message in turn and collects what the
 * node answers (stopping at the first answer that is not `accepted`).
 */
async function exchange(
  from: PhaseNode,
  peerId: string,
  messages: unknown[],
): Promise<Record<string, unknown>[]> {
  const stream = await from.libp2p.dialProtocol(
    peerIdFromString(peerId),
    JOB_PROTOCOL,
  );
  const framed = new FrameStream(stream);
  const answers: Record<string, unknown>[] = [];
  try {
    for (const message of messages) {
      await framed.send(message);
      const answer = await framed.receive(
        AbortSignal.timeout(20_000),
      ) as Record<string, unknown>;
      // Every answer a node sends matches the protocol's schemas.
      validateDocument(
        `${answer.type} message` as
          | "accepted message"
          | "rejected message"
          | "result message",
        answer,
      );
      answers.push(answer);
      if (answer.type !== "accepted") break;
    }
  } finally {
    await stream.close().catch(() => stream.abort(new Error("done")));
  }
  return answers;
}

async function offer(overrides: Record<string, unknown> = {}) {
  const module = example("hello");
  return {
    type: "offer",
    job_id: "job-1",
    nonce: "ab".repeat(16),
    module_hash: await sha256Ref(module),
    module_size: module.length,
    requirements: { memory_mb: 64, timeout_seconds: 10 },
    ...overrides,
  };
}

/** Every file under a folder, relative to it. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory) {
      found.push(...await filesUnder(`${dir}/${entry.name}`, `${path}/`));
    } else found.push(path);
  }
  return found;
}

nodeTest(
  "hostile offers: paths in job_id, wrong types and ranges are refused before a module byte moves; receipts never leave their store",
  async ({ dir, node, peer }) => {
    const refusedOffers: [string, Record<string, unknown>][] = [
      ["traversal job_id", { job_id: "../../x" }],
      [
        "manifest-replacing job_id",
        { job_id: "../artifacts/stable/x86_64/manifest" },
      ],
      ["10 KB job_id", { job_id: "a".repeat(10_000) }],
      ["memory as text", { requirements: { memory_mb: "lots" } }],
      ["negative timeout", { requirements: { timeout_seconds: -1 } }],
      ["fractional fuel", { requirements: { fuel: 0.5 } }],
      ["huge module", { module_size: 400 * 1024 * 1024 }],
      ["no module size", { module_size: undefined }],
      ["unknown field", { extra: true }],
      ["not an offer", { type: "request" }],
    ];
    for (const [name, change] of refusedOffers) {
      const answers = await exchange(peer, node.services.key.peerId, [
        JSON.parse(JSON.stringify(await offer(change))),
      ]);
      assert.equal(answers.length, 1, name);
      assert.equal(answers[0].type, "rejected", name);
      assert.match(
        String(answers[0].reason),
        /InvalidRequest|InsufficientResources/,
        name,
      );
    }
    // Requests are judged as strictly, after acceptance.
    const refusedRequests: [string, Record<string, unknown>][] = [
      ["env value not a string", { env: { A: 1 } }],
      ["env name with =", { env: { "A=B": "c" } }],
      ["NUL in an argument", { args: ["a\u0000b"] }],
      ["module of another size", { module: toBase64(new Uint8Array(9)) }],
      ["non-canonical base64", { stdin: "QR==" }],
    ];
    for (const [name, change] of refusedRequests) {
      const answers = await exchange(peer, node.services.key.peerId, [
        await offer(),
        {
          type: "request",
          job_id: "job-1",
          module: toBase64(example("hello")),
          ...change,
        },
      ]);
      assert.deepEqual(
        answers.map((a) => a.type),
        ["accepted", "rejected"],
        name,
      );
      assert.equal(answers[1].reason, "InvalidRequest", name);
    }
    // The same rules over HTTP.
    const http = await fetch(`${node.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        job_id: "../../x",
        module: toBase64(example("hello")),
      }),
    });
    assert.equal(http.status, 400);
    assert.match((await http.json()).reason, /job_id/);
    // Honest jobs over both transports leave receipts named by hash only.
    const remote = await submitJob(peer, node.services.key.peerId, {
      module: example("hello"),
      args: ["x"],
    });
    assert.equal(remote.stdout, "x\n");
    const local = await fetch(`${node.url}/jobs?job_id=..&arg=y`, {
      method: "POST",
      headers: { "content-type": "application/wasm" },
      body: example("hello") as Uint8Array<ArrayBuffer>,
    });
    assert.equal(local.status, 200);
    assert.equal((await local.json()).job_id, "..");
    const files = await filesUnder(dir);
    const receipts = files.filter((f) => f.startsWith("receipts/"));
    assert.equal(receipts.length, 2);
    for (const f of receipts) {
      assert.match(f, /^receipts\/\d{13}-[0-9a-f]{16}\.json$/);
    }
    const expected = [
      "artifacts/stable/x86_64/hello.wasm",
      "hash-cache.json",
      "manifest-state.json",
    ];
    for (const f of files) {
      assert.ok(
        /^(receipts|modules)\//.test(f) || expected.includes(f),
        `unexpected file ${f}`,
      );
    }
    const manifest = await fetch(`${node.url}/manifest.json`);
    assert.equal(manifest.status, 200);
    await manifest.body?.cancel();
    // /status counts jobs of both transports, and the refusals above.
    const status = await (await fetch(`${node.url}/status`)).json();
    assert.equal(status.metrics.jobs_run_total, 2);
    assert.ok(
      status.metrics.jobs_refused_by_reason.InvalidRequest >= 15,
      JSON.stringify(status.metrics),
    );
  },
);

/** hello.wasm padded with a custom section to `size` bytes (still valid). */
function paddedModule(size: number): Uint8Array {
  const base = example("hello");
  const name = new TextEncoder().encode("pad");
  const leb = (n: number) => {
    const out: number[] = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n) byte |= 0x80;
      out.push(byte);
    } while (n);
    return out;
  };
  // section id 0, size, name length, name, payload
  const payload = size - base.length - 1 - 5 - 1 - name.length;
  const body = [...leb(name.length), ...name];
  const sectionSize = body.length + payload;
  const header = [0, ...leb(sectionSize)];
  const out = new Uint8Array(base.length + header.length + sectionSize);
  out.set(base);
  out.set(header, base.length);
  out.set(body, base.length + header.length);
  return out;
}

Deno.test({
  name:
    "phase submit: a 16 MiB module and 1 MiB on each output stream round-trip over libp2p",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const node = await fullNode(`${dir}/node`);
    try {
      const big = paddedModule(16 * 1024 * 1024 - 64);
      await Deno.writeFile(`${dir}/big.wasm`, big);
      const submit = (module: string, args: string[], stdin?: string) =>
        cli([
          "submit",
          module,
          "--peer",
          node.services.key.peerId,
          "--bootstrap",
          node.addr,
          "--job-timeout",
          "30",
          "--receipt",
          `${dir}/receipt.json`,
          "--",
          ...args,
        ], { stdin });
      const large = await submit(`${dir}/big.wasm`, ["big"]);
      assert.equal(large.code, 0, large.stderr);
      assert.equal(large.stdout, "gib\n");
      const oneMiB = "y".repeat(1024 * 1024);
      const both = await submit(`${ROOT_EXAMPLES}/echo_both.wasm`, [], oneMiB);
      assert.equal(both.code, 0, both.stderr.slice(0, 500));
      assert.equal(both.stdout.length, oneMiB.length);
      assert.ok(both.stderr.startsWith(oneMiB));
      const receipt = JSON.parse(
        await Deno.readTextFile(`${dir}/receipt.json`),
      );
      assert.equal(receipt.stdout.length, oneMiB.length);
      assert.equal(receipt.stderr.length, oneMiB.length);
      assert.equal(receipt.stdout_truncated, false);
    } finally {
      await node.close();
      await cleanup();
    }
  },
});

/**
 * A stranger's raw libp2p node on Phase's DHT protocol that stores and serves
 * whatever it is given (its own validator accepts anything).
 */
async function rogueNode(key: NodeKey, bootstrap: string) {
  const libp2p = await createLibp2p({
    privateKey: await generateKeyPairFromSeed("Ed25519", key.seed),
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ["/ip4/127.0.0.0/ipcidr/8"] },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        peerInfoMapper: passthroughMapper,
        validators: { phase: async () => {} },
        selectors: { phase: () => 0 },
        allowQueryWithZeroPeers: true,
        initialQuerySelfInterval: 0,
      }),
    },
  });
  await libp2p.dial(multiaddr(bootstrap));
  // Identify fills the routing table; a put before that reaches nobody.
  const table = (libp2p.services.dht as unknown as {
    routingTable: { size: number };
  }).routingTable;
  for (let i = 0; i < 500 && table.size === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const drain = async (events: AsyncIterable<unknown>) => {
    for await (const _ of events) { /* walk */ }
  };
  return {
    libp2p,
    peerId: key.peerId,
    put: (dhtKey: string, value: Uint8Array) =>
      drain(libp2p.services.dht.put(new TextEncoder().encode(dhtKey), value, {
        signal: AbortSignal.timeout(5000),
      })).catch(() => {}),
    provide: async (topic: string) =>
      drain(libp2p.services.dht.provide(await cidFor(topic), {
        signal: AbortSignal.timeout(5000),
      })).catch(() => {}),
  };
}

Deno.test({
  name:
    "a malformed signed capability record and a peer that resets streams do not stop phase discover or phase submit --auto",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const honest = await fullNode(`${dir}/honest`);
    const rogues: Awaited<ReturnType<typeof rogueNode>>[] = [];
    try {
      // Keep the honest node's queue non-empty so it sorts after the resetter.
      honest.services.jobs!.admit("holder", 0);
      honest.services.jobs!.admit("holder", 0);
      const good = honest.services.capability()!;
      for (const broken of [true, false]) {
        const key = await generateKey();
        const rogue = await rogueNode(key, honest.addr);
        rogues.push(rogue);
        const payload = broken
          ? { ...good, load: undefined }
          : { ...good, load: { queued: 0, queue_limit: 64 } };
        const record = await signRecord(key, {
          type: "capability",
          key: capabilityKey(key.peerId),
          seq: 1,
          payload: JSON.parse(JSON.stringify(payload)),
        });
        await rogue.put(capabilityKey(key.peerId), encodeRecord(record));
        await rogue.provide(capabilityTopic("x86_64", WASM_RUNTIME));
        // Answers lookups with that record, so clients list (or refuse) it.
        await rogue.libp2p.handle(
          CAPABILITY_PROTOCOL,
          async (stream: Stream) => {
            await new FrameStream(stream, 0).send(record);
            await stream.close();
          },
        );
        // Accepts job streams and resets them.
        await rogue.libp2p.handle(JOB_PROTOCOL, (stream: Stream) => {
          stream.abort(new Error("reset by a hostile peer"));
        });
      }
      const [broken, resetter] = rogues;
      const discover = await cli([
        "discover",
        "--bootstrap",
        honest.addr,
        "--arch",
        "x86_64",
      ]);
      assert.equal(discover.code, 0, discover.stderr);
      assert.match(discover.stdout, new RegExp(honest.services.key.peerId));
      assert.doesNotMatch(discover.stdout, new RegExp(broken.peerId));
      assert.match(discover.stderr, new RegExp(`skipped ${broken.peerId}`));
      assert.ok(
        discover.stderr.trim().split("\n").every((l) =>
          l.startsWith("phase: ")
        ),
        discover.stderr,
      );
      const auto = await cli([
        "submit",
        `${ROOT_EXAMPLES}/hello.wasm`,
        "--auto",
        "--bootstrap",
        honest.addr,
        "--",
        "auto",
      ]);
      assert.equal(auto.code, 0, auto.stderr);
      assert.equal(auto.stdout, "otua\n");
      assert.match(
        auto.stderr,
        new RegExp(`${resetter.peerId} failed \\(.*\\); trying the next node`),
      );
      assert.match(
        auto.stderr,
        new RegExp(`signed by ${honest.services.key.peerId}`),
      );
    } finally {
      await Promise.all(rogues.map((r) => r.libp2p.stop()));
      await honest.close();
      await cleanup();
    }
  },
});

Deno.test({
  name:
    "a replayed older record (lower seq, still signed) never replaces the newer one a node stores",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const store = await fullNode(`${dir}/store`);
    const publisherKey = await generateKey();
    const rogues: Awaited<ReturnType<typeof rogueNode>>[] = [];
    try {
      const key = capabilityKey(publisherKey.peerId);
      const payload = store.services.capability()!;
      const sign = (seq: number, cores: number) =>
        signRecord(publisherKey, {
          type: "capability",
          key,
          seq,
          payload: { ...payload, cpu_cores: cores },
        });
      const older = encodeRecord(await sign(10, 1));
      const newer = encodeRecord(await sign(11, 2));
      const publisher = await rogueNode(publisherKey, store.addr);
      rogues.push(publisher);
      await publisher.put(key, newer);
      const replayer = await rogueNode(await generateKey(), store.addr);
      rogues.push(replayer);
      await replayer.put(key, older);
      await publisher.libp2p.stop();
      // A fresh client that knows only the store asks for the record.
      const reader = await client(store.addr);
      try {
        const record = await reader.getRecord(key);
        assert.equal(record?.seq, 11);
        assert.equal(record?.payload.cpu_cores, 2);
      } finally {
        await reader.stop();
      }
    } finally {
      await Promise.all(rogues.map((r) => r.libp2p.stop()));
      await store.close();
      await cleanup();
    }
  },
});

Deno.test({
  name:
    "module_url: file, loopback and private targets are refused with a reason that reveals nothing behind them",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const node = await fullNode(dir);
    const peer = await client(node.addr);
    // Something listens on loopback; a stranger must not learn that.
    const listening = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(example("hello") as Uint8Array<ArrayBuffer>),
    );
    try {
      const cases: [string, RegExp][] = [
        ["file:///etc/passwd", /module_url must be http or https/],
        [
          `http://127.0.0.1:${listening.addr.port}/m.wasm`,
          /non-public address \(127\.0\.0\.1\); refused/,
        ],
        [
          `http://localhost:${listening.addr.port}/m.wasm`,
          /resolves to a non-public address; refused/,
        ],
        ["http://10.1.2.3/m.wasm", /non-public address/],
        ["http://[::1]:1/m.wasm", /non-public address/],
        ["http://[::ffff:127.0.0.1]:1/m.wasm", /non-public address/],
        ["http://169.254.169.254/latest", /non-public address/],
        ["http://user:pw@example.invalid/m.wasm", /credentials/],
      ];
      for (const [url, reason] of cases) {
        const answers = await exchange(peer, node.services.key.peerId, [
          await offer(),
          { type: "request", job_id: "job-1", module: null, module_url: url },
        ]);
        assert.deepEqual(answers.map((a) => a.type), ["accepted", "rejected"]);
        assert.equal(answers[1].reason, "ModuleUnavailable", url);
        assert.match(String(answers[1].detail), reason, url);
      }
    } finally {
      await listening.shutdown();
      await peer.stop();
      await node.close();
      await cleanup();
    }
  },
});

Deno.test("module_url: a 400 MiB body is refused at the cap without holding it, and redirects are bounded", async () => {
  const server = await spawnAnnounced<{ port: number }>(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      `${ROOT}/tests/fixtures/module_server.ts`,
    ],
  });
  const base = `http://127.0.0.1:${server.info.port}`;
  const policy = { maxBytes: 16 * 1024 * 1024, allowPrivate: true };
  try {
    // Warm up the client code paths so the RSS figure is about the body.
    await fetchModule(`${base}/module`, policy);
    const before = Deno.memoryUsage().rss;
    await assert.rejects(fetchModule(`${base}/huge`, policy), (e: Error) => {
      assert.ok(e instanceof ModuleFetchError);
      assert.match(e.message, /larger than 16777216 bytes/);
      return true;
    });
    const growth = Deno.memoryUsage().rss - before;
    assert.ok(growth < 32 * 1024 * 1024, `RSS grew by ${growth} bytes`);
    assert.deepEqual(
      await fetchModule(`${base}/hop/2`, policy),
      example("hello"),
    );
    await assert.rejects(
      fetchModule(`${base}/hop/3`, policy),
      /redirected more than 3 times/,
    );
    await assert.rejects(
      fetchModule(`${base}/to-file`, policy),
      /must be http or https/,
    );
    // Without the operator's opt-in, loopback is refused before connecting.
    await assert.rejects(
      fetchModule(`${base}/module`, { maxBytes: 1 << 20 }),
      /non-public address/,
    );
    assert.equal(await isPublicAddress("8.8.8.8"), true);
    for (
      const address of [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::7f00:1",
        "::a00:1",
        "not an address",
      ]
    ) {
      assert.equal(await isPublicAddress(address), false, address);
    }
  } finally {
    await stopAnnounced(server);
  }
});

Deno.test({
  name:
    "a client that goes away cancels its job: HTTP disconnect and stream reset free the sandbox at once",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const node = await fullNode(dir);
    const peer = await client(node.addr);
    const jobs = node.services.jobs!;
    try {
      // HTTP: a looping job, abandoned by its client after 300 ms.
      const gone = new AbortController();
      const abandoned = fetch(
        `${node.url}/jobs?timeout_seconds=30&fuel=9000000000000000`,
        {
          method: "POST",
          headers: { "content-type": "application/wasm" },
          body: example("infinite_loop") as Uint8Array<ArrayBuffer>,
          signal: gone.signal,
        },
      ).catch(() => null);
      await new Promise((r) => setTimeout(r, 300));
      gone.abort();
      await abandoned;
      // The only sandbox is free again long before the 30 s wall clock.
      const hello = await fetch(`${node.url}/jobs?arg=next`, {
        method: "POST",
        headers: { "content-type": "application/wasm" },
        body: example("hello") as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(hello.status, 200);
      assert.equal((await hello.json()).stdout, "txen\n");
      // libp2p: the same job over a stream the client resets.
      const module = example("infinite_loop");
      const stream = await peer.libp2p.dialProtocol(
        peerIdFromString(node.services.key.peerId),
        JOB_PROTOCOL,
      );
      const framed = new FrameStream(stream);
      await framed.send({
        ...await offer({
          module_hash: await sha256Ref(module),
          module_size: module.length,
          requirements: { timeout_seconds: 30, fuel: 9e15 },
        }),
      });
      await framed.receive(AbortSignal.timeout(5000));
      await framed.send({
        type: "request",
        job_id: "job-1",
        module: toBase64(module),
      });
      await new Promise((r) => setTimeout(r, 300));
      stream.abort(new Error("client gone"));
      const next = await submitJob(peer, node.services.key.peerId, {
        module: example("hello"),
        args: ["again"],
        timeoutMs: 10_000,
      });
      assert.equal(next.stdout, "niaga\n");
      for (let i = 0; i < 50 && jobs.counters.cancelled < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(jobs.counters.cancelled, 2);
    } finally {
      await peer.stop();
      await node.close();
      await cleanup();
    }
  },
});

Deno.test({
  name: "receipts of strangers' jobs are bounded: the oldest go first",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const node = await fullNode(dir, { receiptsMaxCount: 3 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await fetch(`${node.url}/jobs?arg=${i}&job_id=j${i}`, {
          method: "POST",
          headers: { "content-type": "application/wasm" },
          body: example("hello") as Uint8Array<ArrayBuffer>,
        });
        ids.push((await response.json()).job_id);
      }
      const store = node.services.jobs!.receipts!;
      assert.equal((await store.list()).length, 3);
      const kept = (await store.recent(10)).map((r) => r.job_id);
      assert.deepEqual(kept, ["j4", "j3", "j2"]);
      // A store reopened on the same folder sees the same receipts.
      const again = new ReceiptStore({ dir: store.dir, maxCount: 3 });
      assert.deepEqual(await again.list(), await store.list());
    } finally {
      await node.close();
      await cleanup();
    }
  },
});

Deno.test({
  name:
    "a flood of oversized offers is cut at 64 KiB each: the node's memory stays flat and honest jobs still run",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const node = await spawnAnnounced<
      { multiaddrs: string[]; peer_id: string }
    >(
      Deno.execPath(),
      {
        args: ["run", "-A", `${ROOT}/main.ts`, ...loopbackServeArgs(dir)],
      },
    );
    const rss = async () =>
      Number(
        /VmRSS:\s+(\d+)/.exec(
          await Deno.readTextFile(`/proc/${node.child.pid}/status`),
        )![1],
      ) * 1024;
    const peer = await client(node.info.multiaddrs[0]);
    try {
      const job = { module: example("hello"), args: ["warm"] };
      await submitJob(peer, node.info.peer_id, job);
      const before = await rss();
      // 64 streams, each announcing a 24 MiB offer and sending 4 MiB of it:
      // held, that would be 256 MiB; cut at 64 KiB, what remains is the
      // transport's own buffering and garbage.
      const streams = await Promise.all(
        Array.from({ length: 64 }, () =>
          peer.libp2p.dialProtocol(
            peerIdFromString(node.info.peer_id),
            JOB_PROTOCOL,
          )),
      );
      const chunk = new Uint8Array(256 * 1024).fill(0x20);
      for (const stream of streams) {
        stream.send(encodeLength(MAX_MESSAGE_BYTES));
        for (let i = 0; i < 16; i++) stream.send(chunk);
      }
      await new Promise((r) => setTimeout(r, 3000));
      const growth = await rss() - before;
      assert.ok(
        growth < 96 * 1024 * 1024,
        `the node's RSS grew by ${(growth / 1048576).toFixed(1)} MiB`,
      );
      const after = await submitJob(peer, node.info.peer_id, job);
      assert.equal(after.stdout, "mraw\n");
      for (const stream of streams) stream.abort(new Error("done"));
    } finally {
      await peer.stop();
      await stopAnnounced(node);
      await cleanup();
    }
  },
});

nodeTest(
  "a client that never reads its result does not keep the node's only sandbox",
  async ({ node, peer }) => {
    // A job whose 2 MiB result the client will not read.
    const module = example("echo_both");
    const stream = await peer.libp2p.dialProtocol(
      peerIdFromString(node.services.key.peerId),
      JOB_PROTOCOL,
    );
    const framed = new FrameStream(stream);
    await framed.send(
      await offer({
        module_hash: await sha256Ref(module),
        module_size: module.length,
      }),
    );
    await framed.receive(AbortSignal.timeout(5000));
    stream.pause();
    await framed.send({
      type: "request",
      job_id: "job-1",
      module: toBase64(module),
      stdin: toBase64(new Uint8Array(1024 * 1024).fill(0x61)),
    });
    // The node's only sandbox is free as soon as that job has run.
    const next = await submitJob(peer, node.services.key.peerId, {
      module: example("hello"),
      args: ["next"],
      timeoutMs: 15_000,
    });
    assert.equal(next.stdout, "txen\n");
    stream.abort(new Error("done"));
  },
);

Deno.test({
  name:
    "stalled chunked uploads hold only what they sent: honest jobs still get in",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    // Bound to every loopback address, so each staller is its own client.
    const node = await fullNode(dir, { hostname: "0.0.0.0" });
    const port = Number(new URL(node.url).port);
    const stalled: Deno.Conn[] = [];
    try {
      for (let i = 2; i <= 5; i++) {
        const conn = await Deno.connect({ hostname: `127.0.0.${i}`, port });
        stalled.push(conn);
        // Each announces a module of nearly 16 MiB and sends four bytes of it:
        // announced, the four would fill the 64 MiB budget.
        await conn.write(
          new TextEncoder().encode(
            `POST /jobs HTTP/1.1\r\nhost: 127.0.0.${i}:${port}\r\n` +
              "content-type: application/wasm\r\ncontent-length: 16777000\r\n\r\n" +
              "\0asm",
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 300));
      const honest = await fetch(`${node.url}/jobs?arg=in`, {
        method: "POST",
        headers: { "content-type": "application/wasm" },
        body: example("hello") as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(honest.status, 200, await honest.clone().text());
      assert.equal((await honest.json()).stdout, "ni\n");
    } finally {
      for (const conn of stalled) conn.close();
      await node.close();
      await cleanup();
    }
  },
});

nodeTest(
  "stalled libp2p requests hold only what they sent: honest jobs still get in",
  async ({ node, peer }) => {
    const nodeId = peerIdFromString(node.services.key.peerId);
    const stallers = await Promise.all(
      [0, 1, 2, 3].map(() => client(node.addr)),
    );
    const streams: Stream[] = [];
    const frames: FrameStream[] = [];
    try {
      for (const staller of stallers) {
        const stream = await staller.libp2p.dialProtocol(nodeId, JOB_PROTOCOL);
        streams.push(stream);
        const framed = new FrameStream(stream);
        frames.push(framed);
        // A module of nearly 16 MiB: its request may be about 23 MiB, so
        // three such reservations would be over the 64 MiB budget.
        await framed.send(
          await offer({ module_size: 16 * 1024 * 1024 - 4096 }),
        );
        const answer = await framed.receive(AbortSignal.timeout(10_000)) as {
          type: string;
        };
        assert.equal(answer.type, "accepted", JSON.stringify(answer));
        // The start of a 24 MB request, then nothing.
        stream.send(encodeLength(24_000_000));
        stream.send(new TextEncoder().encode('{"type":"request","module":"'));
      }
      const next = await submitJob(peer, node.services.key.peerId, {
        module: example("hello"),
        args: ["in"],
        timeoutMs: 15_000,
      });
      assert.equal(next.stdout, "ni\n");
      // Three stallers send 22 MiB more of their requests each, one after the
      // other: the bytes that arrive are reserved, and the third finds the
      // budget full and is refused.
      const chunk = new Uint8Array(1024 * 1024).fill(0x41);
      const answers: unknown[] = [];
      for (const [i, stream] of streams.slice(0, 3).entries()) {
        const answered = frames[i].receive(AbortSignal.timeout(20_000)).then(
          (a) => answers.push(a),
          () => {},
        );
        for (let sent = 0; sent < 22 && answers.length === 0; sent++) {
          if (!stream.send(chunk)) {
            await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
              .catch(() => {});
          }
        }
        await Promise.race([answered, new Promise((r) => setTimeout(r, 500))]);
      }
      assert.equal(answers.length, 1, JSON.stringify(answers));
      const refusal = answers[0] as { type: string; reason: string };
      assert.equal(refusal.type, "rejected");
      assert.equal(refusal.reason, "QueueFull", JSON.stringify(refusal));
    } finally {
      for (const stream of streams) stream.abort(new Error("done"));
      await Promise.all(stallers.map((s) => s.stop()));
    }
  },
);

nodeTest(
  "seeded scratch from a peer: run in memory over libp2p and HTTP, never on the node's disk; huge, malformed and host-directory requests are refused before anything runs",
  async ({ dir, node, peer }) => {
    const module = example("rust_fs");
    const seeded = {
      path: "/work",
      entries: [
        { path: "given", kind: "dir" },
        {
          path: "given/note.txt",
          kind: "file",
          data: toBase64(new TextEncoder().encode("from the peer")),
        },
        { path: "given/link", kind: "symlink", target: "note.txt" },
      ],
    };
    const jsonBytes = (value: unknown) =>
      new TextEncoder().encode(JSON.stringify(value)).length;
    const peerOffer = async (scratch?: unknown) => ({
      ...await offer({
        module_hash: await sha256Ref(module),
        module_size: module.length,
      }),
      ...(scratch ? { scratch_bytes: jsonBytes(scratch) } : {}),
    });
    // The Rust program creates, renames, links, truncates and symlinks in
    // its seeded /work: all in memory.
    const answers = await exchange(peer, node.services.key.peerId, [
      await peerOffer(seeded),
      {
        type: "request",
        job_id: "job-1",
        module: toBase64(module),
        args: ["/work"],
        scratch: seeded,
      },
    ]);
    assert.deepEqual(answers.map((a) => a.type), ["accepted", "result"]);
    const receipt = answers[1].receipt as Receipt;
    assert.equal(receipt.execution.exit_code, 0, receipt.stdout);
    assert.equal(receipt.stdout, "rust_fs: ok\n");
    assert.equal(receipt.limits.preopens?.[0].access, "scratch");
    assert.match(receipt.limits.preopens?.[0].seed_sha256 ?? "", /^sha256:/);
    // The client sends it the same way and checks the receipt names it.
    const viaClient = await submitJob(peer, node.services.key.peerId, {
      module,
      args: ["/work"],
      scratch: seeded as ScratchSeed,
    });
    assert.equal(viaClient.stdout, "rust_fs: ok\n");
    const http = await fetch(`${node.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        module: toBase64(module),
        args: ["/work"],
        scratch: seeded,
      }),
    });
    assert.equal(http.status, 200);
    assert.equal((await http.json()).stdout, "rust_fs: ok\n");
    for (const f of await filesUnder(dir)) {
      assert.ok(
        !/note\.txt|rust|given/.test(f),
        `a seeded file reached the disk: ${f}`,
      );
    }
    // Refused before running, with the protocol's reasons.
    const file = (path: string, bytes = 1) => ({
      path,
      kind: "file",
      data: toBase64(new Uint8Array(bytes)),
    });
    const refused: [string, unknown, RegExp][] = [
      ["a seed over the node's 8 MiB", {
        path: "/w",
        entries: [file("big", 9 * 1024 * 1024)],
      }, /InsufficientResources/],
      ["4097 entries", {
        path: "/w",
        entries: Array.from({ length: 4097 }, (_, i) => file(`f${i}`)),
      }, /InvalidRequest/],
      [
        "a .. path",
        { path: "/w", entries: [file("a/../../etc/passwd")] },
        /InvalidRequest/,
      ],
      [
        "an absolute path",
        { path: "/w", entries: [file("/etc/passwd")] },
        /InvalidRequest/,
      ],
      ["a path through a file", {
        path: "/w",
        entries: [file("a"), file("a/b")],
      }, /InvalidRequest/],
      [
        "a name twice",
        { path: "/w", entries: [file("a"), file("a")] },
        /InvalidRequest/,
      ],
      ["a link without a target", {
        path: "/w",
        entries: [{ path: "l", kind: "symlink" }],
      }, /InvalidRequest/],
      ["data on a directory", {
        path: "/w",
        entries: [{ path: "d", kind: "dir", data: "" }],
      }, /InvalidRequest/],
      ["a relative guest path", { path: "w", entries: [] }, /InvalidRequest/],
      [
        "a host directory",
        { path: "/w", entries: [], host: "/etc" },
        /InvalidRequest/,
      ],
    ];
    for (const [name, scratch, reason] of refused) {
      const answers = await exchange(peer, node.services.key.peerId, [
        await peerOffer(scratch),
        { type: "request", job_id: "job-1", module: toBase64(module), scratch },
      ]);
      assert.deepEqual(
        answers.map((a) => a.type),
        ["accepted", "rejected"],
        name,
      );
      assert.match(String(answers[1].reason), reason, name);
    }
    // An offer announcing more than the node takes is refused before any
    // byte of it moves; a request larger than its offer said is refused.
    const big = await exchange(peer, node.services.key.peerId, [
      { ...await peerOffer(), scratch_bytes: 100 * 1024 * 1024 },
    ]);
    assert.equal(big[0].type, "rejected");
    assert.equal(big[0].reason, "InsufficientResources");
    const understated = await exchange(peer, node.services.key.peerId, [
      { ...await peerOffer(), scratch_bytes: 10 },
      {
        type: "request",
        job_id: "job-1",
        module: toBase64(module),
        scratch: seeded,
      },
    ]);
    assert.deepEqual(understated.map((a) => a.type), ["accepted", "rejected"]);
    assert.match(String(understated[1].detail), /the offer said at most 10/);
    // A remote job cannot name a host directory at all, read-only or not.
    for (
      const field of [
        { preopens: [{ host: "/", guest: "/", writable: true }] },
        { dir: "/:/:rw" },
      ]
    ) {
      const refusedHttp = await fetch(`${node.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ module: toBase64(module), ...field }),
      });
      assert.equal(refusedHttp.status, 400);
      assert.match(
        (await refusedHttp.json()).reason,
        /must NOT have additional properties/,
      );
    }
    // A seed that fits the node's limit but not the job's memory budget.
    const tight = await fetch(`${node.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        module: toBase64(module),
        memory_mb: 1,
        scratch: { path: "/w", entries: [file("big", 2 * 1024 * 1024)] },
      }),
    });
    assert.equal(tight.status, 400);
    assert.match(
      (await tight.json()).reason,
      /^memory limit: the scratch seed/,
    );
  },
);
