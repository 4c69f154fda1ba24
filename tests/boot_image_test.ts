/**
 * A whole release, the way a maintainer makes one (`deno task release --
 * --key release.key`), checked by `phase release verify`, and its disk image
 * booted in QEMU from `-drive file=…,format=raw` through both kinds of
 * firmware: SeaBIOS (GRUB's BIOS core in the BIOS boot partition) and OVMF
 * (GRUB's EFI image on the ESP). Each machine gets an address by DHCP on the
 * test network, finds the provider serving the release by mDNS (the image's
 * phase.mode=local), verifies the manifest with the key pinned in the image,
 * kexecs and prints the verified receipt.
 */
import assert from "node:assert/strict";
import { ensureBootTools, ensureImageTools, Lab } from "./boot_harness.ts";
import { runLauncher, runOk, runTask, tempDir } from "./helpers.ts";

const VERIFIED =
  /Receipt:\s+✓ Verified[\s\S]*serving the artifacts it booted from on port \d+/;

const phase = runLauncher;

Deno.test({
  name:
    "release + disk image: deno task release, phase release verify, and the image boots with SeaBIOS and with OVMF to a verified receipt",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await ensureBootTools();
    await ensureImageTools({ ovmf: true });
    const [dir, cleanup] = await tempDir();
    const lab = new Lab();
    try {
      const keygen = await phase(dir, [
        "keygen",
        "--output",
        `${dir}/release.key`,
        "--json",
      ]);
      assert.equal(keygen.code, 0, keygen.stderr);
      const releaseKey = JSON.parse(keygen.stdout).peer_id as string;
      const dist = `${dir}/dist`;
      const started = performance.now();
      const release = await runTask(dir, "release", [
        "--",
        "--key",
        `${dir}/release.key`,
        "--output",
        dist,
        "--json",
      ]);
      assert.equal(release.code, 0, release.stderr);
      const built = JSON.parse(release.stdout);
      console.log(
        `deno task release: ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s, ${built.files} files`,
      );
      assert.equal(built.signer, releaseKey);
      for (
        const file of [
          built.deb,
          "phase-boot-x86_64.img",
          "phase-boot-x86_64.qcow2",
          "stable/x86_64/vmlinuz",
          "stable/x86_64/initramfs.img",
          "stable/x86_64/manifest.json",
          "SHA256SUMS",
          "SHA256SUMS.sig",
        ]
      ) await Deno.stat(`${dist}/${file}`);

      await t.step(
        "phase release verify accepts it, and refuses one changed byte of the image",
        async () => {
          const ok = await phase(dir, [
            "release",
            "verify",
            dist,
            "--pubkey",
            releaseKey,
          ]);
          assert.equal(ok.code, 0, ok.stderr);
          // sha256sum reads the same list.
          await runOk("sha256sum", ["-c", "--quiet", "SHA256SUMS"], dist);
          const image = await Deno.open(`${dist}/phase-boot-x86_64.img`, {
            read: true,
            write: true,
          });
          const at = 3_000_000;
          const byte = new Uint8Array(1);
          try {
            await image.seek(at, Deno.SeekMode.Start);
            await image.read(byte);
            await image.seek(at, Deno.SeekMode.Start);
            await image.write(Uint8Array.of(byte[0] ^ 0x01));
            const bad = await phase(dir, [
              "release",
              "verify",
              dist,
              "--pubkey",
              releaseKey,
            ]);
            assert.equal(bad.code, 1);
            assert.match(
              bad.stderr,
              /^phase: release .* is invalid: phase-boot-x86_64\.img: sha256 mismatch/,
            );
          } finally {
            await image.seek(at, Deno.SeekMode.Start);
            await image.write(byte);
            image.close();
          }
        },
      );

      await t.step(
        "the image is a valid GPT disk with a BIOS boot partition and an ESP; the QCOW2 checks",
        async () => {
          const table = await runOk("sgdisk", [
            "--print",
            `${dist}/phase-boot-x86_64.img`,
          ]);
          assert.match(table, /^\s+1\s+2048\s+4095\s.*EF02/m);
          assert.match(table, /^\s+2\s+4096\s+\d+\s.*EF00/m);
          await runOk("qemu-img", [
            "check",
            "-f",
            "qcow2",
            `${dist}/phase-boot-x86_64.qcow2`,
          ]);
        },
      );

      await lab.open();
      await lab.dhcp(`${dir}/dhcp`, "none");
      await lab.serveRelease({
        artifacts: dist,
        port: 8080,
        dataDir: `${dir}/provider`,
        extra: [
          "--mode",
          "local",
          "--listen",
          "/ip4/10.77.0.1/tcp/4001",
          "--advertise",
          "http://10.77.0.1:8080",
        ],
      });
      for (const firmware of ["seabios", "ovmf"] as const) {
        await t.step(
          `${firmware}: GRUB, DHCP, the provider by mDNS, verified kexec, receipt`,
          async () => {
            const run = await lab.boot({
              diskBoot: { image: `${dist}/phase-boot-x86_64.img`, firmware },
              cmdline: "",
              until: VERIFIED,
              timeoutMs: 420_000,
            });
            assert.ok(run.matched, run.output.slice(-3000));
            assert.match(run.output, /Phase Boot: loading the kernel/);
            assert.match(
              run.output,
              /looking for stable\/x86_64 providers \(mDNS\)/,
            );
            assert.match(run.output, /manifest \d+ verified: signed by /);
            assert.match(run.output, /kexec into/);
            console.log(
              `${firmware}: verified receipt ${
                run.seconds.toFixed(1)
              } s after QEMU start`,
            );
          },
        );
      }
    } finally {
      await lab.close();
      await cleanup();
    }
  },
});
