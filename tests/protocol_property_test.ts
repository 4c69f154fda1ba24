/**
 * Property tests of what strangers send: the frame codec, job judgement,
 * DHT records and canonical base64. Random and mutated inputs never crash
 * the code that reads them (only its own one-line errors) and are never
 * accepted when invalid.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { streamPair } from "@libp2p/utils";
import { Key } from "interface-datastore";
import {
  capabilityKey,
  decodeLength,
  decodeRecord,
  encodeLength,
  encodeRecord,
  FrameError,
  FrameStream,
  MAX_MESSAGE_BYTES,
  MAX_OFFER_BYTES,
  RecordError,
  signRecord,
  validatorKeepingNewest,
} from "../discovery/mod.ts";
import { BoundedDatastore } from "../discovery/node.ts";
import {
  AdmissionRefused,
  DEFAULT_JOB_LIMITS,
  JobAdmission,
  JobError,
  JobService,
  judgeHttpJob,
  judgeOffer,
  judgeRequest,
  queryToJobBody,
} from "../node/mod.ts";
import {
  type Capability,
  fromBase64,
  generateKey,
  type JobOffer,
  toBase64,
} from "../schemas/mod.ts";

const RUNS = { numRuns: 200, seed: 20261125 };

Deno.test("frames: any JSON message round-trips over a real stream pair", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 4 }),
      async (messages) => {
        const [a, b] = await streamPair();
        const writer = new FrameStream(a);
        const reader = new FrameStream(b);
        for (const message of messages) {
          await writer.send(message);
          const got = await reader.receive(AbortSignal.timeout(5000));
          // JSON normalises -0 to 0; compare what JSON itself would keep.
          assert.deepEqual(got, JSON.parse(JSON.stringify(message)));
        }
        await a.close();
        await b.close();
      },
    ),
    { ...RUNS, numRuns: 50 },
  );
});

Deno.test("frames: length prefixes are minimal LEB128 of at most 4 bytes, and every length round-trips", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 28 - 1 }), (n) => {
      const encoded = encodeLength(n);
      assert.ok(encoded.length <= 4);
      assert.deepEqual(decodeLength(encoded), {
        length: n,
        size: encoded.length,
      });
      // Any proper prefix of an encoding is incomplete, never misread.
      for (let k = 1; k < encoded.length; k++) {
        assert.equal(decodeLength(encoded.subarray(0, k)), null);
      }
    }),
    RUNS,
  );
  // Random bytes: a length, incomplete, or a FrameError; nothing else.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 8 }), (bytes) => {
      try {
        const decoded = decodeLength(bytes);
        if (decoded) {
          assert.deepEqual(
            encodeLength(decoded.length),
            bytes.subarray(0, decoded.size),
          );
        }
      } catch (error) {
        assert.ok(error instanceof FrameError, String(error));
      }
    }),
    { ...RUNS, numRuns: 2000 },
  );
  assert.throws(() => decodeLength(Uint8Array.of(0x80, 0x00)), /not minimal/);
  assert.throws(
    () => decodeLength(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f)),
    /longer than 4 bytes/,
  );
});

Deno.test("frames: over-long lengths end the stream, a small limit bounds unread bytes, garbage is a one-line refusal", async () => {
  // A frame that announces MAX + 1 bytes.
  const [a, b] = await streamPair();
  const reader = new FrameStream(b);
  a.send(encodeLength(MAX_MESSAGE_BYTES + 1));
  await assert.rejects(
    reader.read(AbortSignal.timeout(5000)),
    /over the limit of 25165824/,
  );
  // Before admission a node reads under MAX_OFFER_BYTES: a peer that pushes
  // more, even without finishing a frame, has its stream ended.
  const [c, d] = await streamPair();
  const offers = new FrameStream(d, MAX_OFFER_BYTES);
  for (let sent = 0; sent <= MAX_OFFER_BYTES + 16; sent += 16 * 1024) {
    c.send(new Uint8Array(16 * 1024).fill(0x80));
  }
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(
    offers.read(AbortSignal.timeout(5000)),
    /more than 65536 bytes unasked/,
  );
  // Frames of random bytes: either a JSON value or a FrameError, never a crash.
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
      const [e, f] = await streamPair();
      const framed = new FrameStream(f);
      const frame = new Uint8Array([...encodeLength(bytes.length), ...bytes]);
      e.send(frame);
      try {
        const value = await framed.receive(AbortSignal.timeout(5000));
        assert.deepEqual(
          value,
          JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)),
        );
      } catch (error) {
        assert.ok(error instanceof FrameError, String(error));
        assert.match(error.message, /not UTF-8 JSON/);
      }
      e.abort(new Error("done"));
    }),
    { ...RUNS, numRuns: 100 },
  );
  // Sending a message the peer would refuse is refused locally.
  const [g, h] = await streamPair();
  await assert.rejects(
    new FrameStream(g).send("x".repeat(MAX_MESSAGE_BYTES)),
    /limit is/,
  );
  for (const s of [a, b, c, d, g, h]) s.abort(new Error("done"));
});

const capability: Capability = {
  arch: "x86_64",
  cpu_cores: 2,
  memory_mb: 512,
  runtime: { name: "phase-deno", version: "0.2.0", wasi: "preview1" },
  limits: { max_timeout_seconds: 60, max_module_bytes: 16 << 20 },
  load: { queued: 0, queue_limit: 64 },
};

const validOffer: JobOffer = {
  type: "offer",
  job_id: "job-1",
  nonce: "ab".repeat(16),
  module_hash: `sha256:${"0".repeat(64)}`,
  module_size: 1000,
  requirements: { memory_mb: 64, timeout_seconds: 10, fuel: null },
};

/** A valid offer with one field replaced by anything (or removed). */
const mutatedOffer = fc.record({
  field: fc.constantFrom(
    "type",
    "job_id",
    "nonce",
    "module_hash",
    "module_size",
    "requirements",
    "memory_mb",
    "timeout_seconds",
    "fuel",
    "arch",
    "cpu_cores",
    "wasm_runtime",
    "extra",
  ),
  value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
}).map(({ field, value }) => {
  const offer = structuredClone(validOffer) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  if (field in offer || field === "extra") {
    (offer as Record<string, unknown>)[field] = value;
  } else offer.requirements[field] = value;
  return JSON.parse(JSON.stringify(offer));
});

/** What a judged offer must satisfy, written independently of the schema. */
function offerIsSound(offer: JobOffer): boolean {
  const r = offer.requirements;
  const positiveInt = (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) >= 1;
  return offer.type === "offer" &&
    /^[A-Za-z0-9._-]{1,128}$/.test(offer.job_id) &&
    /^[0-9a-f]{16,128}$/.test(offer.nonce) &&
    /^sha256:[0-9a-f]{64}$/.test(offer.module_hash) &&
    positiveInt(offer.module_size) &&
    offer.module_size <= DEFAULT_JOB_LIMITS.maxModuleBytes &&
    (r.memory_mb === undefined ||
      (positiveInt(r.memory_mb) &&
        r.memory_mb <= DEFAULT_JOB_LIMITS.maxMemoryMb)) &&
    (r.timeout_seconds === undefined ||
      (typeof r.timeout_seconds === "number" && r.timeout_seconds > 0 &&
        r.timeout_seconds <= DEFAULT_JOB_LIMITS.maxTimeoutSeconds)) &&
    (r.fuel === undefined || r.fuel === null || positiveInt(r.fuel)) &&
    (r.arch === undefined || ["any", "x86_64"].includes(r.arch)) &&
    (r.cpu_cores === undefined ||
      (positiveInt(r.cpu_cores) && r.cpu_cores <= 2)) &&
    Object.keys(offer).every((k) =>
      ["type", "job_id", "nonce", "module_hash", "module_size", "requirements"]
        .includes(k)
    );
}

Deno.test("job offers: any value or mutation is judged without a crash, and nothing unsound is accepted", () => {
  fc.assert(
    fc.property(fc.oneof(fc.anything(), mutatedOffer), (message) => {
      try {
        const offer = judgeOffer(message, capability, DEFAULT_JOB_LIMITS);
        assert.ok(offerIsSound(offer), JSON.stringify(offer));
      } catch (error) {
        assert.ok(error instanceof JobError, String(error));
        assert.equal(error.message.includes("\n"), false);
      }
    }),
    { ...RUNS, numRuns: 2000 },
  );
});

Deno.test("job requests and HTTP job bodies: any value is judged without a crash; env, args and stdin are always well-formed when accepted", () => {
  const input = fc.record({
    type: fc.constantFrom("request", "offer", 1),
    job_id: fc.constantFrom("job-1", "other", "../x"),
    module: fc.oneof(fc.constant(null), fc.base64String(), fc.string()),
    module_url: fc.oneof(fc.constant(undefined), fc.string()),
    args: fc.oneof(fc.array(fc.string()), fc.anything()),
    env: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.anything()),
    stdin: fc.oneof(fc.base64String(), fc.string(), fc.anything()),
  }, { requiredKeys: ["type", "job_id"] });
  fc.assert(
    fc.property(fc.oneof(input, fc.anything()), (message) => {
      const json = JSON.parse(JSON.stringify(message ?? null) ?? "null");
      for (
        const judge of [
          () => judgeRequest(json, validOffer, DEFAULT_JOB_LIMITS).order,
          () => judgeHttpJob(json, DEFAULT_JOB_LIMITS).order,
        ]
      ) {
        try {
          const order = judge();
          for (const arg of order.args ?? []) {
            assert.equal(typeof arg, "string");
            assert.equal(arg.includes("\u0000"), false);
          }
          for (const [name, value] of Object.entries(order.env ?? {})) {
            assert.match(name, /^[A-Za-z_][A-Za-z0-9_]*$/);
            assert.equal(typeof value, "string");
          }
          if (order.stdin) {
            assert.ok(order.stdin.length <= DEFAULT_JOB_LIMITS.maxStdinBytes);
          }
        } catch (error) {
          assert.ok(error instanceof JobError, String(error));
        }
      }
    }),
    { ...RUNS, numRuns: 1000 },
  );
});

Deno.test("base64: exactly one accepted text per byte string", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
    }),
    RUNS,
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 16 }), (text) => {
      let bytes: Uint8Array;
      try {
        bytes = fromBase64(text);
      } catch {
        return;
      }
      assert.equal(toBase64(bytes), text);
    }),
    { ...RUNS, numRuns: 5000 },
  );
  // The classic malleability: "QR==" and "QQ==" both decode to "A".
  assert.throws(() => fromBase64("QR=="), /not canonical/);
  assert.deepEqual(fromBase64("QQ=="), new Uint8Array([65]));
});

Deno.test("records: any mutation of a signed record is refused with a RecordError", async () => {
  const owner = await generateKey();
  const key = capabilityKey(owner.peerId);
  const record = await signRecord(owner, {
    type: "capability",
    key,
    seq: 3,
    payload: capability,
  });
  const original = JSON.stringify(record);
  await decodeRecord(key, encodeRecord(record));
  const paths = [
    ["type"],
    ["key"],
    ["seq"],
    ["peer_id"],
    ["issued_at"],
    ["expires_at"],
    ["signature"],
    ["payload"],
    ["payload", "arch"],
    ["payload", "load"],
    ["payload", "load", "queued"],
    ["payload", "runtime", "version"],
    ["payload", "http_url"],
  ];
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...paths),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
      async (path, value) => {
        const mutated = JSON.parse(original);
        let at = mutated;
        for (const step of path.slice(0, -1)) at = at[step];
        at[path[path.length - 1]] = value;
        const bytes = new TextEncoder().encode(JSON.stringify(mutated));
        if (JSON.stringify(mutated) === original) return;
        await assert.rejects(decodeRecord(key, bytes), RecordError);
      },
    ),
    { ...RUNS, numRuns: 500 },
  );
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
      await assert.rejects(decodeRecord(key, bytes), RecordError);
    }),
    RUNS,
  );
});

Deno.test("the job service admits at most its places and gives each back once", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 4 }),
      fc.array(fc.boolean(), { maxLength: 40 }),
      (size, queue, steps) => {
        const service = new JobService({
          key: {
            seed: new Uint8Array(32),
            publicKey: new Uint8Array(32),
            peerId: "x",
          },
          arch: "x86_64",
          sandboxSize: size,
          queueLimit: queue,
          admission: { perClient: size + queue, bodyBytes: 1 << 30 },
        });
        const held: { release(): void }[] = [];
        for (const admit of steps) {
          if (admit) {
            try {
              held.push(service.admit("client", 1000));
              assert.ok(held.length <= size + queue);
            } catch (error) {
              assert.ok(error instanceof AdmissionRefused);
              assert.equal(error.status, 503);
              assert.equal(held.length, size + queue);
            }
          } else {
            const admission = held.pop();
            admission?.release();
            admission?.release(); // twice: counted once
          }
          // Nobody took a turn yet: every admitted job is waiting.
          assert.equal(service.queued, held.length);
        }
      },
    ),
    RUNS,
  );
});

Deno.test("records: a stored record gives way only to a higher seq or to itself", async () => {
  const owner = await generateKey();
  const key = capabilityKey(owner.peerId);
  const k = new TextEncoder().encode(key);
  const record = (seq: number, cores: number) =>
    signRecord(owner, {
      type: "capability",
      key,
      seq,
      payload: { ...capability, cpu_cores: cores },
    }).then(encodeRecord);
  const stored = await record(5, 1);
  const validate = validatorKeepingNewest(() => Promise.resolve(stored));
  await validate(k, stored); // the same record: a re-publication
  await validate(k, await record(6, 2)); // newer
  await assert.rejects(validate(k, await record(4, 2)), /older than/);
  await assert.rejects(validate(k, await record(5, 2)), /already stored/);
});

Deno.test("POST /jobs query: plain decimals only, no parameter twice", () => {
  const judge = (query: string) =>
    judgeHttpJob(
      queryToJobBody(new URLSearchParams(query)),
      DEFAULT_JOB_LIMITS,
      { moduleInBody: true },
    );
  assert.equal(judge("memory_mb=16").order.memoryMb, 16);
  assert.equal(judge("timeout_seconds=1.5").order.timeoutSeconds, 1.5);
  for (
    const query of [
      "memory_mb=0x10",
      "memory_mb=1e3",
      "memory_mb=%2016",
      "memory_mb=-1",
      "memory_mb=16&memory_mb=9999",
      "env=A=1&env=A=2",
      "nonce=ab&nonce=cd",
      "unknown=1",
    ]
  ) {
    assert.throws(() => judge(query), JobError, query);
  }
  assert.deepEqual(judge("arg=a&arg=b").order.args, ["a", "b"]);
});

Deno.test("the DHT store keeps its bounds by dropping its oldest DHT entries, never other keys", () => {
  const store = new BoundedDatastore({ maxKeys: 3, maxBytes: 100 });
  const key = (n: number) => new Key(`/dht/record/k${n}`);
  const has = (k: Key) => {
    try {
      store.get(k);
      return true;
    } catch {
      return false;
    }
  };
  const peer = new Key("/peers/p1");
  store.put(peer, new Uint8Array(500)); // libp2p's own: outside the bounds
  for (let i = 0; i < 4; i++) store.put(key(i), new Uint8Array(10));
  assert.deepEqual([0, 1, 2, 3].map((i) => has(key(i))), [
    false,
    true,
    true,
    true,
  ]);
  store.put(key(4), new Uint8Array(90)); // bytes: pushes out until it fits
  assert.deepEqual([1, 2, 3, 4].map((i) => has(key(i))), [
    false,
    false,
    true,
    true,
  ]);
  assert.ok(has(peer));
});

Deno.test("job offers: runtime versions are compatible as semver reads them", () => {
  const offer = (version: string) => ({
    ...validOffer,
    requirements: { wasm_runtime: `wasi-preview1@${version}` },
  });
  const node = {
    ...capability,
    runtime: { ...capability.runtime, version: "0.3.0" },
  };
  for (const ok of ["0.3.0", "0.3", "00.3.1"]) {
    judgeOffer(offer(ok), node, DEFAULT_JOB_LIMITS);
  }
  for (const refused of ["0.2.0", "1.3.0", "0.4"]) {
    assert.throws(
      () => judgeOffer(offer(refused), node, DEFAULT_JOB_LIMITS),
      (e: Error) => (e as JobError).reason === "RuntimeNotSupported",
      refused,
    );
  }
});

Deno.test("admission: a ticket released while it waits for its turn gives the turn up", async () => {
  const admission = new JobAdmission({
    running: 1,
    admitted: 4,
    perClient: 4,
    bodyBytes: 1 << 20,
  });
  const first = admission.admit("a", 10);
  await first.turn();
  const second = admission.admit("a", 10);
  const waiting = second.turn();
  assert.equal(admission.stats.waiting, 1);
  second.release();
  await assert.rejects(waiting, /released/);
  first.release();
  assert.deepEqual(admission.stats, { admitted: 0, running: 0, waiting: 0 });
  // A third job now runs at once: no slot leaked.
  const third = admission.admit("b", 10);
  await third.turn();
  assert.equal(admission.stats.running, 1);
  third.release();
});

Deno.test("admission: a reservation grows with the bytes that arrive, within the budget and the client's share", () => {
  const admission = new JobAdmission({
    running: 1,
    admitted: 8,
    perClient: 8,
    bodyBytes: 100,
    perClientBytes: 60,
  });
  const a = admission.admit("a", 10);
  a.grow(50);
  assert.throws(() => a.grow(61), /at most 60/); // the client's share
  const b = admission.admit("b", 10);
  b.grow(40);
  assert.throws(() => b.grow(51), /already hold 90 bytes of 100/);
  a.release();
  b.grow(51); // a's bytes are free again
  b.release();
  assert.deepEqual(admission.stats, { admitted: 0, running: 0, waiting: 0 });
});
