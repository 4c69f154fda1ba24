import assert from "node:assert/strict";
import fc from "fast-check";
import * as ed from "@noble/ed25519";
import { generateKeyPairFromSeed, publicKeyFromRaw } from "@libp2p/crypto/keys";
import { peerIdFromPublicKey, peerIdFromString } from "@libp2p/peer-id";
import {
  canonicalBytes,
  type DocumentKind,
  fromBase64,
  inputHash,
  keyFromSeed,
  type Receipt,
  SchemaError,
  schemaOf,
  signingBytes,
  signReceipt,
  toBase64,
  toHex,
  validateDocument,
  validateJobManifest,
  verifyReceipt,
} from "../schemas/mod.ts";
import {
  COMPILED_VALIDATORS,
  compiledValidatorsSource,
} from "../schemas/build_validators.ts";
import { ROOT } from "./helpers.ts";
import vector from "./vectors/receipt_v1.json" with { type: "json" };

const seed = Uint8Array.from({ length: 32 }, (_, i) => i);

Deno.test("test vector: key, peer id, canonical bytes and signature", async () => {
  const key = await keyFromSeed(seed);
  assert.equal(toHex(seed), vector.seed_hex);
  assert.equal(toHex(key.publicKey), vector.public_key_hex);
  assert.equal(key.peerId, vector.peer_id);
  const receipt = vector.receipt as Receipt;
  assert.equal(
    new TextDecoder().decode(signingBytes(receipt)),
    vector.canonical_signing_bytes,
  );
  const { signature: _, ...unsigned } = receipt;
  const signed = await signReceipt(unsigned, key);
  assert.equal(signed.signature, vector.signature);
  assert.deepEqual(await verifyReceipt(receipt), { valid: true, receipt });
});

Deno.test("noble and libp2p keys from one seed give the same peer id and signatures", async () => {
  const key = await keyFromSeed(seed);
  const libp2pKey = await generateKeyPairFromSeed("Ed25519", seed);
  const message = new TextEncoder().encode("phase");
  const sig = await libp2pKey.sign(message);
  const receipt = vector.receipt as Receipt;
  assert.equal(receipt.node_peer_id, key.peerId);
  assert.deepEqual(
    new Uint8Array(libp2pKey.publicKey.raw),
    key.publicKey,
  );
  const { signBytes } = await import("../schemas/keys.ts");
  assert.deepEqual(
    fromBase64(await signBytes(key, message)),
    new Uint8Array(sig),
  );
});

Deno.test("WebCrypto keys and signatures equal @noble/ed25519's, peer ids libp2p's", async () => {
  const { signBytes } = await import("../schemas/keys.ts");
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ maxLength: 300 }),
      async (seed, message) => {
        const key = await keyFromSeed(seed);
        assert.deepEqual(key.publicKey, await ed.getPublicKeyAsync(seed));
        assert.equal(
          key.peerId,
          peerIdFromPublicKey(publicKeyFromRaw(key.publicKey)).toString(),
        );
        assert.equal(
          await signBytes(key, message),
          toBase64(await ed.signAsync(message, seed)),
        );
      },
    ),
    { numRuns: 100, seed: 13 },
  );
});

/** libp2p's reading of a peer id: its Ed25519 key, or null. */
function libp2pEd25519Key(text: string): Uint8Array | null {
  try {
    const id = peerIdFromString(text);
    // Only the canonical spelling names the key (what Phase writes).
    if (id.type !== "Ed25519" || id.toString() !== text) return null;
    return id.publicKey.raw;
  } catch {
    return null;
  }
}

Deno.test("publicKeyOfPeerId accepts exactly the Ed25519 ids libp2p reads, with the same key", async () => {
  const { publicKeyOfPeerId } = await import("../schemas/keys.ts");
  const base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  const valid = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((raw) =>
    peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
  );
  const mutated = fc.tuple(
    valid,
    fc.nat(),
    fc.constantFrom(...base58),
    fc.constantFrom("replace", "insert", "delete"),
  ).map(([id, at, c, how]) => {
    const i = at % id.length;
    if (how === "insert") return id.slice(0, i) + c + id.slice(i);
    if (how === "delete") return id.slice(0, i) + id.slice(i + 1);
    return id.slice(0, i) + c + id.slice(i + 1);
  });
  const other = fc.constantFrom(
    // secp256k1 and RSA (sha256) peer ids, and a CID spelling.
    "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
    "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
    "bafzaajaiaejcb6kkxqcwj6qosvnmnm7xjihojmwsdwq2vfmecjkeydwc3apinmjq",
    "",
    "1",
  );
  await fc.assert(
    fc.property(fc.oneof(valid, mutated, other, fc.string()), (text) => {
      const expected = libp2pEd25519Key(text);
      let actual: Uint8Array | null;
      try {
        actual = publicKeyOfPeerId(text);
      } catch (error) {
        assert.match((error as Error).message, /peer id/);
        actual = null;
      }
      assert.deepEqual(
        actual,
        expected === null ? null : new Uint8Array(expected),
      );
    }),
    { numRuns: 1000, seed: 14 },
  );
});

Deno.test("flipping any bit of the canonical signed receipt invalidates it", async () => {
  const compact = JSON.stringify(vector.receipt);
  const bytes = new TextEncoder().encode(compact);
  let checked = 0;
  for (let i = 0; i < bytes.length; i++) {
    const flipped = bytes.slice();
    flipped[i] ^= 0x01;
    let parsed: unknown;
    try {
      parsed = JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(flipped),
      );
    } catch {
      continue; // no longer JSON: a verifier cannot accept it either
    }
    const verdict = await verifyReceipt(parsed);
    assert.equal(verdict.valid, false, `byte ${i} flipped still verifies`);
    checked++;
  }
  assert.ok(checked > bytes.length / 2, `only ${checked} flips parsed`);
});

Deno.test("a receipt re-signed by another key fails when the peer id is kept", async () => {
  const other = await keyFromSeed(new Uint8Array(32).fill(9));
  const receipt = vector.receipt as Receipt;
  const { signature: _, ...unsigned } = receipt;
  const forged = await signReceipt(
    { ...unsigned, node_peer_id: other.peerId },
    other,
  );
  const swapped = { ...forged, node_peer_id: receipt.node_peer_id };
  const verdict = await verifyReceipt(swapped);
  assert.deepEqual(verdict, { valid: false, reason: "invalid signature" });
  const expectPeer = await verifyReceipt(forged, {
    peerId: receipt.node_peer_id,
  });
  assert.equal(expectPeer.valid, false);
});

Deno.test("verifyReceipt checks expectations", async () => {
  const receipt = vector.receipt as Receipt;
  assert.equal(
    (await verifyReceipt(receipt, { nonce: receipt.nonce })).valid,
    true,
  );
  const wrongNonce = await verifyReceipt(receipt, { nonce: "ff".repeat(16) });
  assert.equal(wrongNonce.valid, false);
  const wrongModule = await verifyReceipt(receipt, {
    moduleHash: "sha256:" + "1".repeat(64),
  });
  assert.equal(wrongModule.valid, false);
});

Deno.test("schema rejects unknown fields and bad hashes", async () => {
  const receipt = { ...(vector.receipt as Receipt), extra: 1 };
  const verdict = await verifyReceipt(receipt);
  assert.equal(verdict.valid, false);
  assert.match((verdict as { reason: string }).reason, /extra/);
  assert.throws(
    () => validateJobManifest({ version: 1, module_hash: "sha256:abc" }),
    SchemaError,
  );
  assert.throws(
    () =>
      validateJobManifest({
        version: 2,
        module_hash: "sha256:" + "a".repeat(64),
      }),
    SchemaError,
  );
  const ok = validateJobManifest({
    version: 1,
    module_hash: "sha256:" + "a".repeat(64),
    memory_mb: 64,
    args: ["x"],
    env: { A: "b" },
  });
  assert.equal(ok.memory_mb, 64);
});

Deno.test("JCS: RFC 8785 ordering and number forms", () => {
  const text = (v: unknown) => new TextDecoder().decode(canonicalBytes(v));
  assert.equal(
    text({ b: 1, a: 2, "€": 3, "\r": 4 }),
    '{"\\r":4,"a":2,"b":1,"€":3}',
  );
  assert.equal(
    text([1e21, 1e-7, -0, 0.1 + 0.2, 100]),
    "[1e+21,1e-7,0,0.30000000000000004,100]",
  );
  assert.equal(text({ s: "\u2028\u0007" }), '{"s":"\u2028\\u0007"}');
  assert.throws(() => canonicalBytes(NaN));
});

Deno.test("input hash covers args, env and stdin", async () => {
  const base = { args: ["a"], env: { K: "v" }, stdin: new Uint8Array([1]) };
  const h = await inputHash(base);
  assert.match(h, /^sha256:[0-9a-f]{64}$/);
  assert.notEqual(h, await inputHash({ ...base, args: ["b"] }));
  assert.notEqual(h, await inputHash({ ...base, env: {} }));
  assert.notEqual(h, await inputHash({ ...base, stdin: new Uint8Array([2]) }));
  assert.equal(h, await inputHash({ ...base }));
});

Deno.test("every schema compiles, refuses a wrong document with one line, and is specified in docs/protocol.md", async () => {
  const protocol = await Deno.readTextFile(`${ROOT}/docs/protocol.md`);
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}/schemas`)) {
    if (entry.name.endsWith(".schema.json")) files.push(entry.name);
  }
  assert.ok(files.length >= 12);
  for (const file of files) {
    if (file === "common.schema.json") continue; // definitions only
    assert.ok(
      protocol.includes(`schemas/${file}`) ||
        protocol.includes(`\`${file.replace(".schema.json", "")}\``),
      `docs/protocol.md does not mention schemas/${file}`,
    );
  }
  const kinds: DocumentKind[] = [
    "receipt",
    "job manifest",
    "boot manifest",
    "job offer",
    "job request",
    "accepted message",
    "rejected message",
    "result message",
    "job body",
    "record",
    "capability record",
    "boot-provider record",
    "capable peers",
    "disagreement report",
  ];
  for (const kind of kinds) {
    assert.ok(schemaOf(kind));
    assert.throws(() => validateDocument(kind, 42), (e: Error) => {
      assert.ok(e instanceof SchemaError);
      assert.equal(e.message.includes("\n"), false);
      return true;
    });
  }
});

Deno.test("compiled_validators.js is what build_validators.ts writes for the schemas as they are", async () => {
  assert.equal(
    await Deno.readTextFile(COMPILED_VALIDATORS),
    compiledValidatorsSource(),
    "schemas changed: run deno task build:validators",
  );
});

Deno.test("the compiled validators keep ajv-formats' calendar check of date-time", () => {
  const receipt = vector.receipt as Receipt;
  for (const timestamp of ["2026-02-29T00:00:00Z", "2026-04-31T10:00:00Z"]) {
    assert.throws(
      () => validateDocument("receipt", { ...receipt, timestamp }),
      /timestamp must match format "date-time"/,
    );
  }
  assert.ok(
    validateDocument("receipt", {
      ...receipt,
      timestamp: "2028-02-29T23:59:60Z",
    }),
  );
});
