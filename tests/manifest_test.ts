import assert from "node:assert/strict";
import { startProvider } from "../provider/mod.ts";
import {
  type BootManifest,
  generateKey,
  signManifest,
  verifyManifest,
} from "../schemas/mod.ts";
import { cli, example, tempDir } from "./helpers.ts";

async function artifacts(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/stable/x86_64`, { recursive: true });
  await Deno.writeFile(
    `${dir}/stable/x86_64/vmlinuz`,
    crypto.getRandomValues(new Uint8Array(4096)),
  );
  await Deno.writeFile(
    `${dir}/stable/x86_64/initramfs.img`,
    crypto.getRandomValues(new Uint8Array(2048)),
  );
  await Deno.writeFile(`${dir}/stable/x86_64/hello.wasm`, example("hello"));
}

Deno.test("manifest signed offline: verifies with the pinned key only, and is served as is", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await artifacts(`${dir}/artifacts`);
    const key = JSON.parse(
      (await cli(["keygen", "--output", `${dir}/release.key`, "--json"]))
        .stdout,
    );
    const other = JSON.parse(
      (await cli(["keygen", "--output", `${dir}/other.key`, "--json"])).stdout,
    );
    const path = `${dir}/artifacts/stable/x86_64/manifest.json`;
    const generated = await cli([
      "manifest",
      "generate",
      "--artifacts",
      `${dir}/artifacts`,
      "--channel",
      "stable",
      "--arch",
      "amd64",
      "--manifest-version",
      "7",
      "--cmdline",
      "console=ttyS0 quiet",
      "--output",
      path,
    ]);
    assert.equal(generated.code, 0, generated.stderr);
    const unsignedVerify = await cli([
      "manifest",
      "verify",
      path,
      "--pubkey",
      key.peer_id,
    ]);
    assert.equal(unsignedVerify.code, 1);
    assert.match(unsignedVerify.stderr, /not signed by any trusted key/);
    const signed = await cli([
      "manifest",
      "sign",
      path,
      "--key",
      `${dir}/release.key`,
    ]);
    assert.equal(signed.code, 0, signed.stderr);
    const ok = await cli(["manifest", "verify", path, "--pubkey", key.peer_id]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`signed by ${key.peer_id}`));
    const byBase64 = await cli([
      "manifest",
      "verify",
      path,
      "--pubkey",
      key.public_key,
    ]);
    assert.equal(byBase64.code, 0, byBase64.stderr);
    const wrongKey = await cli([
      "manifest",
      "verify",
      path,
      "--pubkey",
      other.peer_id,
    ]);
    assert.equal(wrongKey.code, 1);
    const rollback = await cli([
      "manifest",
      "verify",
      path,
      "--pubkey",
      key.peer_id,
      "--min-version",
      "8",
    ]);
    assert.equal(rollback.code, 1);
    assert.match(
      rollback.stderr,
      /rollback: manifest_version 7 is lower than 8/,
    );
    // Any changed byte of the signed content fails.
    const original = await Deno.readTextFile(path);
    const tampered = original.replace(
      "console=ttyS0 quiet",
      "console=ttyS0 init=/bin/sh",
    );
    assert.notEqual(tampered, original);
    await Deno.writeTextFile(`${dir}/tampered.json`, tampered);
    const bad = await cli([
      "manifest",
      "verify",
      `${dir}/tampered.json`,
      "--pubkey",
      key.peer_id,
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid signature/);
    // A provider serves the offline manifest byte for byte.
    const provider = await startProvider({
      artifactsDir: `${dir}/artifacts`,
      dataDir: null,
      key: await generateKey(),
      hostname: "127.0.0.1",
      port: 0,
      jobs: null,
    });
    try {
      const served =
        await (await fetch(`${provider.url}/stable/x86_64/manifest.json`))
          .text();
      assert.equal(served, original);
      const remote = await cli([
        "manifest",
        "verify",
        `${provider.url}/manifest.json`,
        "--pubkey",
        key.peer_id,
      ]);
      assert.equal(remote.code, 0, remote.stderr);
      const ipxe = await (await fetch(`${provider.url}/boot.ipxe`)).text();
      const lines = ipxe.trim().split("\n");
      assert.equal(lines[0], "#!ipxe");
      assert.match(
        lines[2],
        new RegExp(
          `^kernel ${provider.url}/stable/x86_64/vmlinuz console=ttyS0 quiet initrd=initramfs.img phase.provider=${provider.url} phase.channel=stable phase.arch=x86_64 phase.pubkey=${key.peer_id}$`,
        ),
      );
      assert.equal(
        lines[3],
        `initrd ${provider.url}/stable/x86_64/initramfs.img`,
      );
      assert.equal(lines[4], "boot");
      const list = await cli(["provider", "list", "--url", provider.url]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(
        list.stdout,
        /kernel\s+vmlinuz\s+4096\s+sha256:[0-9a-f]{64}/,
      );
    } finally {
      await provider.close();
    }
  } finally {
    await cleanup();
  }
});

Deno.test("verifyManifest never trusts the key a manifest names itself", async () => {
  const release = await generateKey();
  const attacker = await generateKey();
  const manifest: BootManifest = {
    format: "phase-boot-manifest/1",
    manifest_version: 3,
    version: "1.0",
    channel: "stable",
    arch: "x86_64",
    created_at: "2026-01-01T00:00:00Z",
    expires_at: "2099-01-01T00:00:00Z",
    cmdline: "",
    artifacts: {
      kernel: {
        filename: "vmlinuz",
        size: 1,
        sha256: "a".repeat(64),
        urls: ["/stable/x86_64/vmlinuz"],
      },
    },
    signatures: [],
  };
  const forged = await signManifest(manifest, attacker);
  assert.equal(
    (await verifyManifest(forged, { trustedKeys: [release.publicKey] })).valid,
    false,
  );
  // The attacker puts the release key's id on its own signature.
  const relabelled = {
    ...forged,
    signatures: [{ ...forged.signatures[0], key_id: release.peerId }],
  };
  const verdict = await verifyManifest(relabelled, {
    trustedKeys: [release.publicKey],
  });
  assert.deepEqual(verdict, {
    valid: false,
    reason: `invalid signature by ${release.peerId}`,
  });
  const good = await signManifest(manifest, release);
  assert.equal(
    (await verifyManifest(good, { trustedKeys: [release.publicKey] })).valid,
    true,
  );
  const expired = await verifyManifest(good, {
    trustedKeys: [release.publicKey],
    now: new Date("2100-01-01"),
  });
  assert.match((expired as { reason: string }).reason, /expired/);
  const twice = await signManifest(good, attacker);
  assert.equal(twice.signatures.length, 2);
  assert.equal(
    (await verifyManifest(twice, { trustedKeys: [release.publicKey] })).valid,
    true,
  );
  assert.equal(
    (await verifyManifest(good, {
      trustedKeys: [release.publicKey],
      arch: "arm64",
    })).valid,
    false,
  );
  assert.equal(
    (await verifyManifest(good, {
      trustedKeys: [release.publicKey],
      arch: "amd64",
    })).valid,
    true,
  );
});
