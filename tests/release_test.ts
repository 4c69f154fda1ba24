/**
 * Signed releases: SHA256SUMS and SHA256SUMS.sig over a release folder, and
 * `phase release verify`, which accepts the folder as signed and refuses it
 * after any changed, added, removed or replaced byte or file. A small
 * release (fake kernel and initramfs, a real signed boot manifest) keeps
 * this fast; tests/boot_image_test.ts verifies a full `deno task release`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { writeArtifacts } from "../boot/mod.ts";
import {
  SIGNATURE_FILE,
  signRelease,
  SUMS_FILE,
  verifyRelease,
} from "../release/mod.ts";
import {
  canonicalBytes,
  generateKey,
  type NodeKey,
  releaseSignatureBytes,
  signReleaseSums,
  verifyReleaseSums,
} from "../schemas/mod.ts";
import { publicKeyOfPeerId } from "../schemas/mod.ts";
import { runLauncher, tempDir, text } from "./helpers.ts";

/** A small release in `dir`: a package, boot artifacts with a signed manifest, sums. */
async function smallRelease(dir: string, key: NodeKey): Promise<void> {
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/phase_0.0.1_amd64.deb`, random(4096));
  await Deno.writeFile(`${dir}/kernel`, random(2048));
  await Deno.writeFile(`${dir}/initrd`, random(3000));
  await writeArtifacts({
    dir,
    channel: "stable",
    arch: "x86_64",
    kernel: `${dir}/kernel`,
    initramfs: `${dir}/initrd`,
    cmdline: "console=ttyS0",
    releaseKey: key,
  });
  await Deno.remove(`${dir}/kernel`);
  await Deno.remove(`${dir}/initrd`);
  await signRelease(dir, key, { version: "0.0.1" });
}

/** Every file of the release, relative to it. */
async function releaseFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(`${dir}/${prefix}`)) {
    const name = `${prefix}${entry.name}`;
    if (entry.isDirectory) out.push(...await releaseFiles(dir, `${name}/`));
    else out.push(name);
  }
  return out.sort();
}

/** `./phase release verify DIR --pubkey KEY` as users run it. */
const verifyCli = (home: string, dir: string, key: string) =>
  runLauncher(home, ["release", "verify", dir, "--pubkey", key]);

Deno.test({
  name:
    "release verify: accepts a signed release; refuses any flipped byte, added, removed or replaced file, and a stranger's key",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const [dir, cleanup] = await tempDir();
    try {
      const key = await generateKey();
      const stranger = await generateKey();
      const release = `${dir}/release`;
      await smallRelease(release, key);
      const trusted = [publicKeyOfPeerId(key.peerId)];
      const files = await releaseFiles(release);
      assert.ok(files.includes(SUMS_FILE) && files.includes(SIGNATURE_FILE));
      assert.ok(files.includes("stable/x86_64/manifest.json"));

      await t.step(
        "the CLI accepts it; a stranger's key is refused",
        async () => {
          const ok = await verifyCli(dir, release, key.peerId);
          assert.equal(ok.code, 0, ok.stderr);
          assert.match(
            ok.stdout,
            /^valid: release 0\.0\.1 .* signed by 12D3KooW/,
          );
          const bad = await verifyCli(dir, release, stranger.peerId);
          assert.equal(bad.code, 1);
          assert.match(
            bad.stderr,
            /^phase: release .* is invalid: not signed by any trusted key\n$/,
          );
        },
      );

      await t.step(
        "property: any flipped byte of any file is refused",
        async () => {
          await fc.assert(
            fc.asyncProperty(
              fc.constantFrom(...files),
              fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
              fc.integer({ min: 1, max: 255 }),
              async (name, where, mask) => {
                const path = `${release}/${name}`;
                const bytes = await Deno.readFile(path);
                const at = Math.floor(where * bytes.length);
                bytes[at] ^= mask;
                await Deno.writeFile(path, bytes);
                try {
                  const verdict = await verifyRelease(release, trusted);
                  assert.equal(verdict.valid, false, `${name}@${at}^${mask}`);
                } finally {
                  bytes[at] ^= mask;
                  await Deno.writeFile(path, bytes);
                }
              },
            ),
            { numRuns: 300, seed: 16 },
          );
          assert.equal((await verifyRelease(release, trusted)).valid, true);
        },
      );

      await t.step(
        "added, removed, truncated, extended and replaced files are refused",
        async () => {
          const expectRefused = async (reason: RegExp) => {
            const verdict = await verifyRelease(release, trusted);
            assert.equal(verdict.valid, false);
            assert.match((verdict as { reason: string }).reason, reason);
          };
          await Deno.writeTextFile(`${release}/extra.txt`, "not signed");
          await expectRefused(/extra\.txt is not in SHA256SUMS/);
          await Deno.remove(`${release}/extra.txt`);

          const deb = `${release}/phase_0.0.1_amd64.deb`;
          const saved = await Deno.readFile(deb);
          await Deno.remove(deb);
          await expectRefused(/phase_0\.0\.1_amd64\.deb is missing/);
          await Deno.writeFile(deb, saved.subarray(0, saved.length - 1));
          await expectRefused(/sha256 mismatch/);
          await Deno.writeFile(deb, new Uint8Array([...saved, 0]));
          await expectRefused(/sha256 mismatch/);
          // A link to a file with the very same bytes is still not a file.
          await Deno.writeFile(`${dir}/copy.deb`, saved);
          await Deno.remove(deb);
          await Deno.symlink(`${dir}/copy.deb`, deb);
          await expectRefused(/not a regular file/);
          await Deno.remove(deb);
          await Deno.writeFile(deb, saved);

          const sig = `${release}/${SIGNATURE_FILE}`;
          const signature = await Deno.readFile(sig);
          // The same document, pretty-printed: equal in meaning, not in bytes.
          await Deno.writeTextFile(
            sig,
            JSON.stringify(JSON.parse(text(signature)), null, 2),
          );
          await expectRefused(/canonical form/);
          await Deno.writeFile(sig, signature);
          assert.equal((await verifyRelease(release, trusted)).valid, true);
        },
      );

      await t.step("a bad --pubkey is a usage error of one line", async () => {
        const out = await verifyCli(dir, release, "not-a-key");
        assert.equal(out.code, 2);
        assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
      });
    } finally {
      await cleanup();
    }
  },
});

Deno.test("release signature: signed SHA256SUMS bytes verify; any change to either file is refused", async () => {
  const key = await generateKey();
  const trusted = [publicKeyOfPeerId(key.peerId)];
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 512 }),
      fc.boolean(),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      async (sums, inSignature, where, mask) => {
        const signature = releaseSignatureBytes(
          await signReleaseSums(sums, key, {
            version: "1.0.0",
            now: new Date(0),
          }),
        );
        assert.equal(
          (await verifyReleaseSums(sums, signature, trusted)).valid,
          true,
        );
        const target = Uint8Array.from(inSignature ? signature : sums);
        target[where % target.length] ^= mask;
        const verdict = inSignature
          ? await verifyReleaseSums(sums, target, trusted)
          : await verifyReleaseSums(target, signature, trusted);
        assert.equal(verdict.valid, false);
      },
    ),
    { numRuns: 200, seed: 16 },
  );
  // Its bytes are the canonical JSON and one line break.
  const signed = await signReleaseSums(new Uint8Array(3), key, {
    version: "1.0.0",
  });
  assert.deepEqual(
    releaseSignatureBytes(signed),
    new Uint8Array([...canonicalBytes(signed), 0x0a]),
  );
});
