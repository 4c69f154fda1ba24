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
import { runOk, tempDir } from "./helpers.ts";
import {
  type CacheHeader,
  currentSlot,
  decodeHeaderSlot,
  SLOT_BYTES,
} from "../boot/cache.ts";

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
          // Stage 2 took the manifest and the job's files from stage 1's
          // hand-over (checked again), not from the network.
          assert.match(
            run.output,
            /manifest 1000 verified: signed by \S+ \(handed over by stage 1\)/,
          );
          assert.match(run.output, /hello\.wasm: handed over by stage 1/);
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
        "refused: an archive in front of the image that plants a file it does not hold",
        async () => {
          // What a tampered hand-over could do: the kernel unpacks it before
          // the verified image, which overwrites only the paths it holds.
          const planted = `${dir}/planted`;
          await Deno.mkdir(`${planted}/etc`, { recursive: true });
          await Deno.writeTextFile(
            `${planted}/etc/ld.so.preload`,
            "/lib/evil.so\n",
          );
          const archive = await new Deno.Command("sh", {
            args: ["-c", "find etc | cpio -o -H newc --quiet"],
            cwd: planted,
            stdout: "piped",
          }).output();
          assert.equal(archive.code, 0);
          const initrd = `${dir}/planted.img`;
          await Deno.writeFile(initrd, archive.stdout);
          await Deno.writeFile(initrd, await Deno.readFile(images.initramfs), {
            append: true,
          });
          const run = await lab.boot({
            images: { ...images, initramfs: initrd },
            cmdline:
              `phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId} phase.ip=10.77.0.${address++}/24 phase.poweroff=1`,
            until: /refusing them/,
            timeoutMs: 120_000,
          });
          assert.ok(run.matched, run.output.slice(-2000));
          assert.match(
            run.output,
            /files this image does not hold: \/etc\/ld\.so\.preload/,
          );
          assert.doesNotMatch(run.output, /stage 1, /);
        },
      );

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

      await t.step(
        "boot cache: the next boot downloads nothing, a damaged file is fetched again, the stored floor refuses a rollback",
        async () => {
          const disk = `${dir}/cache.img`;
          {
            using file = await Deno.open(disk, { write: true, create: true });
            await file.truncate(128 * 1024 * 1024);
          }
          // A provider of its own, so its counters are this step's.
          await serve(good, 8084);
          const downloads = async () => {
            const status = JSON.parse(
              await runOk("ip", [
                "netns",
                "exec",
                lab.ns,
                "curl",
                "-sf",
                "http://10.77.0.1:8084/status",
              ]),
            );
            return status.metrics.artifact_downloads as Record<string, number>;
          };
          const withCache =
            `phase.provider=http://10.77.0.1:8084 phase.pubkey=${release.peerId} phase.cache=/dev/vda`;
          const first = await boot(withCache, VERIFIED, 240_000, disk);
          assert.ok(first.matched, first.output.slice(-3000));
          assert.match(
            first.output,
            /boot cache \/dev\/vda: 0 artifacts, floor 0/,
          );
          const fetched = await downloads();
          assert.ok(
            fetched["stable/x86_64/vmlinuz"] >= 1,
            JSON.stringify(fetched),
          );

          const second = await boot(withCache, VERIFIED, 240_000, disk);
          assert.ok(second.matched, second.output.slice(-3000));
          assert.match(
            second.output,
            /boot cache \/dev\/vda: \d+ artifacts, floor 1000/,
          );
          for (const file of ["vmlinuz", "initramfs.img", "hello.wasm"]) {
            assert.match(
              second.output,
              new RegExp(`${file}: from the boot cache, sha256 verified`),
            );
          }
          assert.deepEqual(
            await downloads(),
            fetched,
            "the second boot downloaded",
          );
          console.log(
            `boot cache: first boot ${first.seconds.toFixed(1)} s, second ${
              second.seconds.toFixed(1)
            } s (0 artifact bytes downloaded)`,
          );

          // Damage the cached kernel on the disk, between boots.
          {
            using file = await Deno.open(disk, { read: true, write: true });
            const slots = new Uint8Array(2 * SLOT_BYTES);
            await file.read(slots);
            const headers = await Promise.all(
              [0, 1].map((i) =>
                decodeHeaderSlot(
                  slots.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES),
                  128 * 1024 * 1024,
                )
              ),
            ) as [CacheHeader | null, CacheHeader | null];
            const header = headers[currentSlot(headers)!]!;
            const kernel = header.entries.find((e) => e.name === "kernel")!;
            await file.seek(kernel.offset + 4096, Deno.SeekMode.Start);
            await file.write(new Uint8Array([0xde, 0xad]));
          }
          const third = await boot(withCache, /kexec into/, 120_000, disk);
          assert.ok(third.matched, third.output.slice(-3000));
          assert.match(third.output, /vmlinuz: sha256 verified/);
          assert.doesNotMatch(third.output, /vmlinuz: from the boot cache/);
          assert.match(third.output, /initramfs\.img: from the boot cache/);

          // An older release, signed by the same key, without
          // phase.min_version on the command line: the disk's floor refuses it.
          const older = await artifacts("older", {
            manifestVersion: version - 1,
          });
          await serve(older, 8085);
          const fourth = await boot(
            `phase.provider=http://10.77.0.1:8085 phase.pubkey=${release.peerId} phase.cache=/dev/vda`,
            FAILED,
            120_000,
            disk,
          );
          assert.ok(fourth.matched, fourth.output.slice(-2000));
          assert.match(
            fourth.output.match(FAILED)![0],
            /rollback: manifest_version 999 is lower than 1000/,
          );
          assert.doesNotMatch(fourth.output, /kexec into/);
        },
      );
    } finally {
      await lab.close();
      await cleanup();
    }
  },
});
