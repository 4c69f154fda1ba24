import assert from "node:assert/strict";
import type { Stream } from "@libp2p/interface";
import {
  acceptJobs,
  CAPABILITY_PROTOCOL,
  capabilityKey,
  encodeRecord,
  type FoundNode,
  FrameStream,
  JOB_PROTOCOL,
  PhaseNode,
  PROBE_TIMEOUT_MS,
  REFERRAL_PROTOCOL,
  signRecord,
  submitAuto,
} from "../discovery/mod.ts";
import { JobService } from "../node/mod.ts";
import { type Capability, generateKey } from "../schemas/mod.ts";
import { example } from "./helpers.ts";
import { Swarm } from "../bench/swarm.ts";

// libp2p keeps timers and sockets past stop().
const LIBP2P = { sanitizeOps: false, sanitizeResources: false };

async function start(
  bootstrap: PhaseNode | null,
  capability?: () => Capability,
): Promise<PhaseNode> {
  return await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: bootstrap ? [bootstrap.multiaddrs()[0]] : [],
    capability,
  });
}

/** A node running jobs; `queued` is the load it reports. */
async function jobNode(bootstrap: PhaseNode, queued = 0) {
  const key = await generateKey();
  const jobs = new JobService({ key, arch: "x86_64", sandboxSize: 1 });
  const capability = () => {
    const c = jobs.capability()!;
    return { ...c, load: { ...c.load, queued } };
  };
  const node = await PhaseNode.start({
    key,
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: [bootstrap.multiaddrs()[0]],
    capability,
  });
  await acceptJobs(node, {
    key,
    arch: "x86_64",
    dataDir: null,
    jobs,
    capability,
  });
  return { node, jobs, capability };
}

/** A fresh client that looks up until `count` capable nodes answer. */
async function client(seed: PhaseNode, count: number) {
  const node = await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: [seed.multiaddrs()[0]],
    clientMode: true,
  });
  for (let i = 0; i < 30; i++) {
    if ((await node.findCapable({ arch: "x86_64" })).length >= count) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return node;
}

/**
 * The lookups' own timeout here: a lookup that waited on a bad peer would
 * take this long, and an honest one takes far less however busy the machine.
 */
const LOOKUP_TIMEOUT_MS = 60_000;
/** What a lookup that waited on nobody stays below, even on a busy machine. */
const UNDELAYED_MS = 30_000;

/** One lookup of x86_64 nodes: what it found, its warnings, how long it took. */
async function timedLookup(user: PhaseNode) {
  const warnings: string[] = [];
  const started = performance.now();
  const found = await user.findCapable({
    arch: "x86_64",
    onWarning: (line) => warnings.push(line),
  }, LOOKUP_TIMEOUT_MS);
  return { found, warnings, elapsed: performance.now() - started };
}

/** Replaces a node's answer to capability reads. */
async function answerWith(
  node: PhaseNode,
  answer: (stream: Stream) => Promise<void>,
): Promise<void> {
  await node.libp2p.unhandle(CAPABILITY_PROTOCOL);
  await node.libp2p.handle(CAPABILITY_PROTOCOL, (stream: Stream) => {
    answer(stream).catch(() => {});
  });
}

Deno.test({
  name:
    "a capable peer killed without a goodbye stays in the DHT but is never listed, and lookups and submit --auto do not wait for it",
  ...LIBP2P,
  async fn() {
    // The vanishing peers live in a process of their own, killed with SIGKILL.
    const swarm = await Swarm.grow({
      processes: 2,
      perProcess: 3,
      capableFraction: 0.5,
    });
    let fresh: PhaseNode | undefined;
    try {
      assert.equal(swarm.capable().length, 3);
      const doomed = swarm.processes[1];
      const gone = [...doomed.peers].filter((id) =>
        swarm.alive.get(id)!.capable
      );
      assert.ok(gone.length >= 1);
      // A client of the survivors' side (the seed lives in process 0).
      const seedAddress = [...swarm.alive.values()].find((n) =>
        n.process === swarm.processes[0]
      )!.address;
      const probe = await PhaseNode.start({
        key: await generateKey(),
        listen: ["/ip4/127.0.0.1/tcp/0"],
        bootstrap: [seedAddress],
        clientMode: true,
      });
      for (let i = 0; i < 30; i++) {
        if ((await probe.findCapable({ arch: "x86_64" })).length === 3) break;
      }
      await probe.stop();
      doomed.child.kill("SIGKILL");
      await doomed.done;
      fresh = await PhaseNode.start({
        key: await generateKey(),
        listen: ["/ip4/127.0.0.1/tcp/0"],
        bootstrap: [seedAddress],
        clientMode: true,
      });
      // The DHT still names the killed peers (their entries outlive them)...
      const announced = await fresh.findProviders(
        "/phase/capability/x86_64/wasi-preview1",
      );
      for (const id of gone) {
        assert.ok(announced.some((p) => p.peerId === id), "entry vanished");
      }
      // ...but a lookup asks each node and lists only those that answer.
      const { found, warnings, elapsed } = await timedLookup(fresh);
      assert.deepEqual(
        found.filter((n) => gone.includes(n.peerId)),
        [],
        "a killed peer was listed",
      );
      assert.equal(found.length, 3 - gone.length);
      for (const id of gone) {
        assert.ok(
          warnings.some((w) => w.startsWith(`skipped ${id}: unreachable`)),
          warnings.join("\n"),
        );
      }
      assert.ok(elapsed < UNDELAYED_MS, `the lookup took ${elapsed} ms`);
      const result = await submitAuto(fresh, {
        module: example("hello"),
        args: ["abc"],
      }, { arch: "x86_64" });
      assert.equal(result.stdout, "cba\n");
      assert.ok(!gone.includes(result.peerId));
    } finally {
      await fresh?.stop();
      await swarm.close();
    }
  },
});

Deno.test({
  name:
    "a peer that answers lookups slowly or not at all is skipped after the probe timeout; one that stalls job offers is left after the offer timeout (default OFFER_TIMEOUT_MS, 2 s here)",
  ...LIBP2P,
  async fn() {
    const seed = await start(null);
    const good = await jobNode(seed, 1);
    // Both hostile peers advertise an empty queue, so clients try them first.
    const idle = () => ({
      ...good.capability(),
      load: { queued: 0, queue_limit: 64 },
    });
    const silent = await start(seed, idle);
    const stalls: Stream[] = [];
    const offerStaller = await start(seed, idle);
    await offerStaller.libp2p.handle(JOB_PROTOCOL, (stream: Stream) => {
      stalls.push(stream); // reads the offer, never answers
    });
    await answerWith(silent, (stream) => {
      stalls.push(stream); // never answers
      return Promise.resolve();
    });
    const user = await client(seed, 2);
    try {
      const { found, warnings, elapsed } = await timedLookup(user);
      assert.deepEqual(
        found.map((n) => n.peerId).sort(),
        [good.node.peerId, offerStaller.peerId].sort(),
      );
      assert.ok(
        warnings.some((w) =>
          w ===
            `skipped ${silent.peerId}: no answer within ${PROBE_TIMEOUT_MS} ms`
        ),
        warnings.join("\n"),
      );
      assert.ok(
        elapsed < UNDELAYED_MS,
        `the lookup took ${elapsed} ms`,
      );
      // The offer staller reports the lighter load and is tried first.
      assert.equal(found[0].peerId, offerStaller.peerId);
      const attempts: string[] = [];
      const submitted = performance.now();
      const result = await submitAuto(user, {
        module: example("hello"),
        args: ["abc"],
      }, {
        arch: "x86_64",
        offerTimeoutMs: 2000,
        onAttempt: ({ peerId, reason }) => attempts.push(`${peerId} ${reason}`),
      });
      const took = performance.now() - submitted;
      assert.equal(result.peerId, good.node.peerId);
      assert.equal(attempts.length, 1, attempts.join("\n"));
      assert.match(attempts[0], new RegExp(`^${offerStaller.peerId} Timeout`));
      assert.ok(
        // Waiting for the staller's answer would take the job's timeout and
        // 30 s more (60 s).
        took < UNDELAYED_MS,
        `submit --auto took ${took} ms`,
      );
    } finally {
      for (const s of stalls) s.abort(new Error("test over"));
      await user.stop();
      await Promise.all(
        [seed, good.node, silent, offerStaller].map((n) => n.stop()),
      );
      await good.jobs.close();
    }
  },
});

Deno.test({
  name:
    "a peer that answers with stale, replayed or foreign capability records is never listed, and re-putting a departed node's record keeps it unlisted",
  ...LIBP2P,
  async fn() {
    const seed = await start(null);
    const good = await jobNode(seed);
    const departedKey = await generateKey();
    const departed = await PhaseNode.start({
      key: departedKey,
      listen: ["/ip4/127.0.0.1/tcp/0"],
      bootstrap: [seed.multiaddrs()[0]],
      capability: good.capability,
    });
    const user = await client(seed, 2);
    const staleAnswerer = await start(seed, good.capability);
    const replayer = await start(seed, good.capability);
    try {
      const departedRecord = await user.getRecord(
        capabilityKey(departed.peerId),
      );
      assert.ok(departedRecord, "the departed node's record was not found");
      await departed.stop();
      // Answers its own record, signed long ago and expired since.
      const expired = await signRecord(staleAnswerer.key, {
        type: "capability",
        key: capabilityKey(staleAnswerer.peerId),
        seq: 1,
        payload: good.capability(),
        ttlMs: 1000,
        now: new Date(Date.now() - 60_000),
      });
      await answerWith(staleAnswerer, async (stream) => {
        await new FrameStream(stream, 0).send(expired);
        await stream.close();
      });
      // Answers the departed node's (still valid) record as its own.
      await answerWith(replayer, async (stream) => {
        await new FrameStream(stream, 0).send(departedRecord);
        await stream.close();
      });
      // And keeps putting the departed node's record back into the DHT.
      const bytes = encodeRecord(departedRecord);
      const key = new TextEncoder().encode(capabilityKey(departed.peerId));
      for (let i = 0; i < 3; i++) {
        for await (
          const _ of replayer.libp2p.services.dht.put(key, bytes, {
            signal: AbortSignal.timeout(3000),
          })
        ) { /* drain */ }
      }
      const { found, warnings, elapsed } = await timedLookup(user);
      assert.deepEqual(found.map((n) => n.peerId), [good.node.peerId]);
      const said = (peer: string, what: RegExp) =>
        assert.ok(
          warnings.some((w) =>
            w.startsWith(`skipped ${peer}: `) && what.test(w)
          ),
          `${peer}: ${warnings.join("\n")}`,
        );
      said(staleAnswerer.peerId, /expired/);
      said(replayer.peerId, /another key/);
      said(departed.peerId, /unreachable/);
      assert.ok(elapsed < UNDELAYED_MS, `the lookup took ${elapsed} ms`);
      // The DHT still serves the departed node's record: only the node
      // itself proves it is there.
      assert.equal(
        (await user.getRecord(capabilityKey(departed.peerId)))?.peer_id,
        departed.peerId,
      );
    } finally {
      await user.stop();
      await Promise.all(
        [seed, good.node, staleAnswerer, replayer].map((n) => n.stop()),
      );
      await good.jobs.close();
    }
  },
});

/** Replaces a node's answer to capable-peers requests. */
async function referWith(
  node: PhaseNode,
  answer: (stream: Stream) => Promise<void>,
): Promise<void> {
  await node.libp2p.unhandle(REFERRAL_PROTOCOL);
  await node.libp2p.handle(REFERRAL_PROTOCOL, (stream: Stream) => {
    answer(stream).catch(() => {});
  });
}

/** Waits until `node` knows (from identify) that each of `peers` runs jobs. */
async function knowsCapable(node: PhaseNode, peers: PhaseNode[]) {
  for (let i = 0; i < 100; i++) {
    const known = await node.libp2p.peerStore.all();
    if (
      peers.every((p) =>
        known.some((k) =>
          k.id.toString() === p.peerId &&
          k.protocols.includes(CAPABILITY_PROTOCOL)
        )
      )
    ) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the referrer never learned of the capable nodes");
}

/** A seed, two capable nodes joined through it, and how to stop them all. */
async function twoCapable() {
  const seed = await start(null);
  const a = await jobNode(seed);
  const b = await jobNode(seed);
  const stop = async (...others: PhaseNode[]) => {
    await Promise.all([seed, a.node, b.node, ...others].map((n) => n.stop()));
    await Promise.all([a.jobs.close(), b.jobs.close()]);
  };
  return { seed, a, b, stop };
}

/** A fresh client whose bootstrap peers are `peers`. */
async function freshClient(peers: PhaseNode[]): Promise<PhaseNode> {
  return await PhaseNode.start({
    key: await generateKey(),
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap: peers.map((n) => n.multiaddrs()[0]),
    clientMode: true,
  });
}

/**
 * Asserts that `user`'s lookup listed exactly `nodes` and that it connected
 * to them and its referrer only: a walk would have asked other peers.
 */
function listedWithoutWalk(
  user: PhaseNode,
  found: FoundNode[],
  referrer: PhaseNode,
  nodes: PhaseNode[],
): void {
  const ids = nodes.map((n) => n.peerId).sort();
  assert.deepEqual(found.map((n) => n.peerId).sort(), ids);
  assert.deepEqual(
    [...new Set(user.libp2p.getConnections().map((c) => String(c.remotePeer)))]
      .sort(),
    [referrer.peerId, ...ids].sort(),
  );
}

Deno.test({
  name:
    "a fresh client lists capable nodes named by its bootstrap peer, connecting only to them: no DHT walk",
  ...LIBP2P,
  async fn() {
    const { seed, a, b, stop } = await twoCapable();
    const referrer = await start(seed);
    await referrer.libp2p.dial(a.node.libp2p.peerId);
    await referrer.libp2p.dial(b.node.libp2p.peerId);
    await knowsCapable(referrer, [a.node, b.node]);
    const user = await freshClient([referrer]);
    try {
      const heard: string[] = [];
      const found = await user.findCapable({
        arch: "x86_64",
        limit: 2,
        onFound: (n) => heard.push(n.peerId),
      });
      listedWithoutWalk(user, found, referrer, [a.node, b.node]);
      assert.deepEqual(
        [...heard].sort(),
        [a.node.peerId, b.node.peerId].sort(),
      );
    } finally {
      await user.stop();
      await stop(referrer);
    }
  },
});

Deno.test({
  name:
    "a node found through a referral names the capable nodes it knows: the client reaches one its bootstrap peer never named, still without a walk",
  ...LIBP2P,
  async fn() {
    const { seed, a, b, stop } = await twoCapable();
    await a.node.libp2p.dial(b.node.libp2p.peerId);
    await knowsCapable(a.node, [b.node]);
    // A bootstrap peer that knows only a.
    const referrer = await start(seed);
    await referWith(referrer, async (stream) => {
      await new FrameStream(stream, 0).send({
        peers: [{ peer_id: a.node.peerId, addresses: a.node.multiaddrs() }],
      });
      await stream.close();
    });
    const user = await freshClient([referrer]);
    try {
      const found = await user.findCapable({ arch: "x86_64", limit: 2 });
      listedWithoutWalk(user, found, referrer, [a.node, b.node]);
    } finally {
      await user.stop();
      await stop(referrer);
    }
  },
});

Deno.test({
  name:
    "hostile referrers (a flood past 32 KiB, a malformed answer, 64 invented or misaddressed peers) cost warnings, never a listing: every named peer is re-validated and the real nodes are still found",
  ...LIBP2P,
  async fn() {
    const { seed, a, b, stop } = await twoCapable();
    const flooder = await start(seed);
    const malformed = await start(seed);
    const liar = await start(seed);
    const invented = await Promise.all(
      Array.from({ length: 61 }, async () => (await generateKey()).peerId),
    );
    await referWith(flooder, async (stream) => {
      await new FrameStream(stream, 0).send({
        peers: [{ peer_id: a.node.peerId, addresses: ["x".repeat(40_000)] }],
      });
      await stream.close();
    });
    await referWith(malformed, async (stream) => {
      await new FrameStream(stream, 0).send({
        peers: [{ peer_id: "not a peer", addresses: [] }],
        extra: true,
      });
      await stream.close();
    });
    const liarAddress = liar.multiaddrs()[0].split("/p2p/")[0];
    await referWith(liar, async (stream) => {
      await new FrameStream(stream, 0).send({
        peers: [
          // Invented peers at the liar's own address (Noise refuses them).
          ...invented.map((id) => ({ peer_id: id, addresses: [liarAddress] })),
          // Real nodes at wrong addresses: the liar's and a closed port.
          { peer_id: a.node.peerId, addresses: [liarAddress] },
          { peer_id: b.node.peerId, addresses: ["/ip4/127.0.0.1/tcp/1"] },
          // The liar itself, which runs no jobs.
          { peer_id: liar.peerId, addresses: [liarAddress] },
        ],
      });
      await stream.close();
    });
    const user = await freshClient([flooder, malformed, liar]);
    try {
      const { found, warnings, elapsed } = await timedLookup(user);
      assert.deepEqual(
        found.map((n) => n.peerId).sort(),
        [a.node.peerId, b.node.peerId].sort(),
        warnings.join("\n"),
      );
      const said = (start: string) =>
        assert.ok(
          warnings.some((w) => w.startsWith(start)),
          `${start}\n${warnings.join("\n")}`,
        );
      said(`ignored ${flooder.peerId}'s capable peers: `);
      said(`ignored ${malformed.peerId}'s capable peers: bad capable-peers`);
      // Refused by Noise (or, on a busy machine, not answered in time).
      for (const id of invented) said(`skipped ${id}: `);
      said(`skipped ${liar.peerId}: `);
      assert.ok(elapsed < UNDELAYED_MS, `the lookup took ${elapsed} ms`);
      const result = await submitAuto(user, {
        module: example("hello"),
        args: ["abc"],
      }, { arch: "x86_64" });
      assert.equal(result.stdout, "cba\n");
    } finally {
      await user.stop();
      await stop(flooder, malformed, liar);
    }
  },
});
