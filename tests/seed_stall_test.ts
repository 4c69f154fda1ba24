/**
 * A stranger's seeded scratch of deep unlisted paths, played against
 * `phase serve` run the way the README says (the ./phase launcher, a fresh
 * HOME, loopback): other clients keep being answered while it is judged.
 * Found by an outside attack: 0.8 MiB held the node's event loop for 11 s
 * before seeds were judged in time linear in their size.
 */
import assert from "node:assert/strict";
import { peerIdFromString } from "@libp2p/peer-id";
import { FrameStream, JOB_PROTOCOL, PhaseNode } from "../discovery/mod.ts";
import { generateKey, sha256Ref, toBase64 } from "../schemas/mod.ts";
import {
  example,
  freshHomeEnv,
  loopbackServeArgs,
  ROOT,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";

/** `./phase serve` on loopback in a fresh HOME; stopped by `fn`'s end. */
async function withServe(
  fn: (
    url: string,
    info: { peer_id: string; multiaddrs: string[] },
  ) => Promise<void>,
): Promise<void> {
  const [home, cleanup] = await tempDir();
  const served = await spawnAnnounced<
    { url: string; peer_id: string; multiaddrs: string[] }
  >(`${ROOT}/phase`, {
    args: loopbackServeArgs(`${home}/data`),
    cwd: ROOT,
    env: await freshHomeEnv(home),
  });
  try {
    await fn(served.info.url, served.info);
  } finally {
    await stopAnnounced(served);
    await cleanup();
  }
}

Deno.test("hostile client: a 1 MiB seed of deep unlisted paths does not stall the node for everyone else", async () => {
  // 800 files, each under its own chain of 500 directories the seed does
  // not list: a 0.8 MiB request, refused for its cost in the end. Judging
  // it builds every prefix of every path (quadratic in the depth) and
  // compares each implied directory against every entry, on the node's
  // one event loop: /health went unanswered for ~11 s here, and the
  // node's RSS grew by hundreds of MiB (2000 such entries: 41 s, 800 MiB).
  await withServe(async (url) => {
    const job = fetch(`${url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        module: toBase64(example("hello")),
        scratch: deepSeed(),
      }),
    }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const { worst, answer } = await worstHealth(url, job);
    assert.equal(answer.status, 400, answer.body);
    assert.ok(
      worst < 2000,
      `another client waited ${
        Math.round(worst)
      } ms for /health while one seed was judged`,
    );
  });
});

/** 800 files, each under its own chain of 500 directories the seed omits. */
function deepSeed() {
  const depth = "d/".repeat(500);
  return {
    path: "/w",
    entries: Array.from({ length: 800 }, (_, i) => ({
      path: `a${i}/${depth}x`,
      kind: "file",
    })),
  };
}

/** The longest /health takes while `busy` is pending. */
async function worstHealth<T>(
  url: string,
  busy: Promise<T>,
): Promise<{ worst: number; answer: T }> {
  let done = false;
  const finished = busy.finally(() => done = true);
  let worst = 0;
  await new Promise((resolve) => setTimeout(resolve, 300));
  while (!done) {
    const started = performance.now();
    await (await fetch(`${url}/health`)).body?.cancel();
    worst = Math.max(worst, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { worst, answer: await finished };
}

Deno.test({
  name:
    "hostile peer: the same deep seed over /phase/job/1.0.0 does not stall the node for everyone else",
  // libp2p keeps timers and sockets past stop().
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withServe(async (url, info) => {
      const peer = await PhaseNode.start({
        key: await generateKey(),
        listen: ["/ip4/127.0.0.1/tcp/0"],
        bootstrap: [info.multiaddrs[0]],
        clientMode: true,
      });
      try {
        const module = example("hello");
        const scratch = deepSeed();
        const exchange = async () => {
          const stream = await peer.libp2p.dialProtocol(
            peerIdFromString(info.peer_id),
            JOB_PROTOCOL,
          );
          const framed = new FrameStream(stream);
          try {
            await framed.send({
              type: "offer",
              job_id: "deep",
              nonce: "ab".repeat(16),
              module_hash: await sha256Ref(module),
              module_size: module.length,
              requirements: { memory_mb: 64, timeout_seconds: 10 },
              scratch_bytes:
                new TextEncoder().encode(JSON.stringify(scratch)).length,
            });
            const accepted = await framed.receive(AbortSignal.timeout(20_000));
            // An offer refused would end here; the test then fails below.
            if ((accepted as { type: string }).type !== "accepted") {
              return accepted as { type: string };
            }
            await framed.send({
              type: "request",
              job_id: "deep",
              module: toBase64(module),
              scratch,
            });
            return await framed.receive(AbortSignal.timeout(120_000)) as {
              type: string;
            };
          } finally {
            await stream.close().catch(() => stream.abort(new Error("done")));
          }
        };
        const { worst, answer } = await worstHealth(url, exchange());
        // Refused for its cost, after the judging that held the loop.
        assert.match(JSON.stringify(answer), /"InsufficientResources"/);
        assert.ok(
          worst < 2000,
          `another client waited ${
            Math.round(worst)
          } ms for /health while one seed was judged`,
        );
      } finally {
        await peer.stop();
      }
    });
  },
});
