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
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import {
  capabilityKey,
  capabilityTopic,
  cidFor,
  DHT_PROTOCOL,
  encodeRecord,
  JOB_PROTOCOL,
  messageStream,
  p2pTransport,
  PhaseNode,
  receiveMessage,
  sendMessage,
  signRecord,
  submitJob,
  WASM_RUNTIME,
} from "../discovery/mod.ts";
import { httpTransport } from "../provider/mod.ts";
import { type RunningNode, startNode } from "../node/mod.ts";
import {
  generateKey,
  type NodeKey,
  sha256Ref,
  toBase64,
  validateDocument,
} from "../schemas/mod.ts";
import { cli, example, tempDir } from "./helpers.ts";

// libp2p keeps timers and sockets past stop(); process tests check exits.
const LIBP2P = { sanitizeOps: false, sanitizeResources: false };

/** A full node on loopback, assembled like `phase serve`. */
async function fullNode(
  dataDir: string,
  options: {
    bootstrap?: PhaseNode | RunningNode | null;
    receiptsMaxCount?: number;
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
        hostname: "127.0.0.1",
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
  const framed = messageStream(stream);
  const answers: Record<string, unknown>[] = [];
  try {
    for (const message of messages) {
      await sendMessage(framed, message);
      const answer = await receiveMessage(
        framed,
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

Deno.test({
  name:
    "hostile offers: paths in job_id, wrong types and ranges are refused before a module byte moves; receipts never leave their store",
  ...LIBP2P,
  fn: async () => {
    const [dir, cleanup] = await tempDir();
    const node = await fullNode(dir);
    const peer = await client(node.addr);
    try {
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
    } finally {
      await peer.stop();
      await node.close();
      await cleanup();
    }
  },
});
