import assert from "node:assert/strict";
import type { ArtifactsOptions } from "../boot/mod.ts";
import { sha256File } from "../provider/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import {
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "./boot_harness.ts";
import { tempDir } from "./helpers.ts";

const CMDLINE = "console=ttyS0 panic=-1 quiet";
const VERIFIED =
  /Receipt:\s+✓ Verified[\s\S]*serving the artifacts it booted from on port \d+ \(booted from [^)]+\)/;
const FAILED = /phase-boot: FAILED: [^\n]*\n/;

Deno.test({
  name:
    "Phase Boot in QEMU: verified kexec, refusals, local mode, private mode",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await ensureBootTools();
    const [dir, cleanup] = await tempDir();
    const lab = new Lab();
    try {
      const images = await buildImages(`${dir}/images`);
      console.log(
        `initramfs ${
          (images.initramfsBytes / 1024 / 1024).toFixed(1)
        } MiB, built in ${images.buildSeconds.toFixed(1)} s`,
      );
      const release = await generateKey();
      const stranger = await generateKey();
      const version = 1000;
      const artifacts = (
        name: string,
        extra: Partial<ArtifactsOptions> = {},
      ) =>
        releaseArtifacts(`${dir}/${name}`, images, release, {
          cmdline: CMDLINE,
          manifestVersion: version,
          ...extra,
        });
      const good = await artifacts("good");
      const expired = await artifacts("expired", { validityDays: -1 });
      const tampered = await artifacts("tampered");
      const kernelPath = `${tampered}/stable/x86_64/vmlinuz`;
      const kernel = await Deno.readFile(kernelPath);
      kernel[kernel.length >> 1] ^= 0xff;
      await Deno.writeFile(kernelPath, kernel);
      await lab.open();
      const serve = (artifacts: string, port: number, extra?: string[]) =>
        lab.serveRelease({
          artifacts,
          port,
          dataDir: `${dir}/data-${port}`,
          extra,
        });
      await serve(good, 8080);
      await serve(expired, 8081);
      await serve(tampered, 8082);
      let address = 10;
      const boot = (
        cmdline: string,
        until: RegExp,
        timeoutMs: number,
        disk?: string,
      ) =>
        lab.boot({
          images,
          cmdline:
            `${cmdline} phase.ip=10.77.0.${address++}/24 phase.poweroff=1`,
          until,
          timeoutMs,
          disk,
        });

      await t.step(
        "happy path: verify, kexec, hello receipt, serve",
        async () => {
          const run = await boot(
            `phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId}`,
            VERIFIED,
            240_000,
          );
          assert.ok(run.matched, run.output.slice(-3000));
          assert.match(run.output, /manifest 1000 verified: signed by /);
          assert.match(run.output, /vmlinuz: sha256 verified/);
          assert.match(run.output, /kexec into/);
          assert.match(run.output, /stage 2 \(booted by Phase\)/);
          assert.match(run.output, /Output:\s+!dlroW ,olleH/);
          console.log(
            `verified receipt after kexec: ${
              run.seconds.toFixed(1)
            } s from QEMU start`,
          );
        },
      );

      const refusals: [string, string, RegExp][] = [
        [
          "untrusted key",
          `phase.provider=http://10.77.0.1:8080 phase.pubkey=${stranger.peerId}`,
          /not signed by any trusted key/,
        ],
        [
          "tampered kernel",
          `phase.provider=http://10.77.0.1:8082 phase.pubkey=${release.peerId}`,
          /kernel \(vmlinuz\): download failed: .*sha256 mismatch/,
        ],
        [
          "expired manifest",
          `phase.provider=http://10.77.0.1:8081 phase.pubkey=${release.peerId}`,
          /manifest expired at/,
        ],
        [
          "lower manifest_version",
          `phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId} phase.min_version=${
            version + 1
          }`,
          /rollback: manifest_version 1000 is lower than 1001/,
        ],
      ];
      for (const [name, cmdline, reason] of refusals) {
        await t.step(`refused: ${name}`, async () => {
          const run = await boot(cmdline, FAILED, 120_000);
          assert.ok(run.matched, run.output.slice(-2000));
          assert.match(run.output.match(FAILED)![0], reason);
          assert.doesNotMatch(run.output, /kexec into/);
          assert.doesNotMatch(run.output, /stage 2/);
        });
      }

      await t.step(
        "local mode: the provider is found by mDNS, no URL given",
        async () => {
          await serve(good, 8083, [
            "--mode",
            "local",
            "--listen",
            "/ip4/10.77.0.1/tcp/4001",
            "--advertise",
            "http://10.77.0.1:8083",
          ]);
          const run = await boot(
            `phase.mode=local phase.pubkey=${release.peerId}`,
            VERIFIED,
            240_000,
          );
          assert.ok(run.matched, run.output.slice(-3000));
          assert.match(
            run.output,
            /looking for stable\/x86_64 providers \(mDNS\)/,
          );
          assert.match(
            run.output,
            /fetching http:\/\/10\.77\.0\.1:808\d\/stable\/x86_64\/manifest\.json/,
          );
        },
      );

      await t.step(
        "private mode: an attached disk is left untouched",
        async () => {
          const disk = `${dir}/disk.img`;
          const bytes = new Uint8Array(4 * 1024 * 1024);
          for (let i = 0; i < bytes.length; i += 65536) {
            crypto.getRandomValues(bytes.subarray(i, i + 65536));
          }
          await Deno.writeFile(disk, bytes);
          const before = await sha256File(disk);
          const run = await boot(
            `phase.mode=private phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId}`,
            VERIFIED,
            240_000,
            disk,
          );
          assert.ok(run.matched, run.output.slice(-3000));
          assert.match(run.output, /private mode/);
          assert.equal(await sha256File(disk), before);
        },
      );
    } finally {
      await lab.close();
      await cleanup();
    }
  },
});
