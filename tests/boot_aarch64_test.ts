/**
 * Phase Boot on aarch64 (QEMU `-M virt -cpu max`, TCG) from an x86_64 host,
 * and the cross-architecture checks, in ONE booted VM because emulating
 * aarch64 is slow: the image is reproducible and one provider serves both
 * architectures; a tampered kernel is refused before kexec (QEMU's own
 * loader); the VM boots through UEFI firmware, verifies, kexecs and shows
 * the verified receipt; the host finds it with
 * `phase discover` as an aarch64 node, runs jobs on it with
 * `phase submit --arch aarch64` and checks receipts signed by the VM's key;
 * and the same module and input give the same fuel, output and input hash on
 * both architectures (a difference is a metering bug, not a tolerance).
 */
import assert from "node:assert/strict";
import type { Receipt } from "../schemas/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import { sha256File } from "../provider/mod.ts";
import {
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "./boot_harness.ts";
import { ROOT, tempDir, text } from "./helpers.ts";

const FAILED = /phase-boot: FAILED: [^\n]*\n/;
const VM_IP = "10.77.0.40";
/** Modules run on both architectures, with their arguments. */
const JOBS: [string, string[]][] = [
  ["hello", ["from x86_64"]],
  ["cpu_heavy", ["2"]],
  ["cpu_heavy_simd", ["2"]],
];

async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(value),
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

Deno.test({
  name:
    "aarch64: reproducible image, one provider for both arches, tampered kernel refused, verified kexec, cross-arch jobs, the same fuel on both arches",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const testStarted = performance.now();
    await ensureBootTools("aarch64");
    const [dir, cleanup] = await tempDir();
    const lab = new Lab();
    let vm: Awaited<ReturnType<Lab["start"]>> | undefined;
    try {
      const images = await buildImages(`${dir}/images`, "aarch64");
      console.log(
        `aarch64 initramfs ${
          (images.initramfsBytes / 1024 / 1024).toFixed(1)
        } MiB, built in ${images.buildSeconds.toFixed(1)} s`,
      );
      await t.step("the aarch64 initramfs is reproducible", async () => {
        const again = await buildImages(`${dir}/again`, "aarch64");
        assert.equal(
          await sha256File(again.initramfs),
          await sha256File(images.initramfs),
        );
      });
      const x86 = await buildImages(`${dir}/x86_64`);
      const release = await generateKey();
      const artifacts = `${dir}/artifacts`;
      await releaseArtifacts(artifacts, images, release, {
        manifestVersion: 3000,
      });
      await releaseArtifacts(artifacts, x86, release, {
        manifestVersion: 3000,
      });
      const tampered = await releaseArtifacts(
        `${dir}/tampered`,
        images,
        release,
        { manifestVersion: 3000 },
      );
      const kernelPath = `${tampered}/stable/aarch64/Image`;
      const kernel = await Deno.readFile(kernelPath);
      kernel[kernel.length >> 1] ^= 0xff;
      await Deno.writeFile(kernelPath, kernel);
      await lab.open();
      await lab.serveRelease({
        artifacts,
        port: 8080,
        dataDir: `${dir}/data-8080`,
      });
      await lab.serveRelease({
        artifacts: tampered,
        port: 8082,
        dataDir: `${dir}/data-8082`,
      });

      await t.step("one provider serves both architectures", async () => {
        for (const arch of ["aarch64", "x86_64", "arm64"]) {
          const expected = arch === "x86_64" ? "x86_64" : "aarch64";
          const url = `http://10.77.0.1:8080/stable/${arch}/manifest.json`;
          const verified = await lab.phase([
            "manifest",
            "verify",
            url,
            "--pubkey",
            release.peerId,
            "--arch",
            expected,
          ]);
          assert.equal(verified.code, 0, text(verified.stderr));
          const fetched = await new Deno.Command("ip", {
            args: ["netns", "exec", lab.ns, "curl", "-sf", url],
            stdout: "piped",
          }).output();
          const manifest = JSON.parse(text(fetched.stdout)) as {
            arch: string;
            artifacts: { kernel: { filename: string } };
          };
          assert.equal(manifest.arch, expected);
          assert.equal(
            manifest.artifacts.kernel.filename,
            expected === "aarch64" ? "Image" : "vmlinuz",
          );
        }
      });

      await t.step("a tampered kernel never kexecs", async () => {
        const run = await lab.boot({
          images,
          cmdline:
            `phase.provider=http://10.77.0.1:8082 phase.pubkey=${release.peerId} phase.ip=10.77.0.39/24 phase.poweroff=1`,
          until: FAILED,
          timeoutMs: 300_000,
        });
        assert.ok(run.matched, run.output.slice(-3000));
        assert.match(run.output, /stage 1, internet mode, stable\/aarch64/);
        assert.match(
          run.output.match(FAILED)![0],
          /kernel \(Image\): download failed: .*sha256 mismatch/,
        );
        assert.doesNotMatch(run.output, /kexec into/);
        assert.doesNotMatch(run.output, /stage 2/);
        console.log(`aarch64 refusal: ${run.seconds.toFixed(1)} s`);
      });

      let receiptSeconds = 0;
      await t.step(
        "boots through UEFI firmware from the host's provider, verifies, kexecs, shows the verified receipt and serves",
        async () => {
          const started = performance.now();
          let seen = "";
          vm = await lab.start({
            images,
            // The firmware path: EDK2 starts the Image through its EFI stub
            // (the refusal above used QEMU's own loader).
            uefi: true,
            cmdline:
              `phase.mode=local phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId} phase.ip=${VM_IP}/24`,
            until: /announced as a boot provider|phase-boot: FAILED/,
            timeoutMs: 900_000,
            onOutput: (chunk) => {
              seen += chunk;
              if (!receiptSeconds && /Receipt:\s+✓ Verified/.test(seen)) {
                receiptSeconds = (performance.now() - started) / 1000;
              }
            },
          });
          const run = await vm.run;
          assert.ok(run.matched, run.output.slice(-3000));
          assert.doesNotMatch(run.output, /FAILED/);
          assert.match(run.output, /UEFI firmware/);
          assert.match(run.output, /stage 1, local mode, stable\/aarch64/);
          assert.match(run.output, /manifest 3000 verified: signed by /);
          assert.match(run.output, /Image: sha256 verified/);
          assert.match(run.output, /kexec into/);
          assert.match(run.output, /stage 2 \(booted by Phase\)/);
          assert.match(run.output, /Output:\s+!dlroW ,olleH/);
          assert.match(run.output, /Receipt:\s+✓ Verified/);
          console.log(
            `aarch64 QEMU start -> verified receipt after kexec: ${
              receiptSeconds.toFixed(1)
            } s; serving at ${run.seconds.toFixed(1)} s`,
          );
        },
      );

      const vmReceipts = new Map<string, Receipt>();
      let vmPeer = "";
      await t.step(
        "cross-architecture jobs: the host finds the VM as an aarch64 node and runs jobs on it",
        async () => {
          assert.ok(vm, "the VM did not boot");
          const bootstrap = `/ip4/${VM_IP}/tcp/4001`;
          const discovered = await lab.phase([
            "discover",
            "--bootstrap",
            bootstrap,
            "--json",
            "--timeout",
            "60",
          ]);
          assert.equal(
            discovered.code,
            0,
            `${text(discovered.stdout)} ${text(discovered.stderr)}`,
          );
          const node = (JSON.parse(text(discovered.stdout)) as {
            peer_id: string;
            arch: string;
            http_url?: string;
          }[]).find((n) => n.http_url === `http://${VM_IP}:8080`);
          assert.ok(node, text(discovered.stdout));
          assert.equal(node.arch, "aarch64");
          vmPeer = node.peer_id;
          for (const [name, args] of JOBS) {
            const file = `${dir}/vm-${name}.json`;
            const submitted = await lab.phase([
              "submit",
              `${ROOT}/examples/wasm/${name}.wasm`,
              "--auto",
              "--arch",
              "aarch64",
              "--bootstrap",
              bootstrap,
              "--timeout",
              "60",
              "--job-timeout",
              "60",
              "--receipt",
              file,
              "--",
              ...args,
            ]);
            assert.equal(submitted.code, 0, text(submitted.stderr));
            assert.match(
              text(submitted.stderr),
              new RegExp(`signed by ${vmPeer}`),
            );
            const verified = await lab.phase([
              "receipt",
              "verify",
              file,
              "--peer",
              vmPeer,
            ]);
            assert.equal(verified.code, 0, text(verified.stderr));
            const receipt = JSON.parse(await Deno.readTextFile(file));
            assert.equal(receipt.node_peer_id, vmPeer);
            assert.equal(receipt.execution.status, "exited");
            assert.equal(receipt.stdout, text(submitted.stdout));
            vmReceipts.set(name, receipt);
          }
          assert.equal(vmReceipts.get("hello")!.stdout, "46_68x morf\n");
        },
      );

      await t.step(
        "fuel determinism: the same module and input give the same fuel, output and input hash on x86_64 and aarch64",
        async () => {
          assert.equal(vmReceipts.size, JOBS.length, "the VM ran no jobs");
          for (const [name, args] of JOBS) {
            const file = `${dir}/host-${name}.json`;
            // A node names every module main.wasm (argv[0], which fuel
            // depends on and input_hash does not cover); so does this run.
            const module = `${dir}/host-${name}/main.wasm`;
            await Deno.mkdir(`${dir}/host-${name}`);
            await Deno.copyFile(`${ROOT}/examples/wasm/${name}.wasm`, module);
            const ran = await lab.phase([
              "run",
              module,
              "--ephemeral",
              "--receipt",
              file,
              "--",
              ...args,
            ]);
            assert.equal(ran.code, 0, text(ran.stderr));
            const host = JSON.parse(await Deno.readTextFile(file)) as Receipt;
            const remote = vmReceipts.get(name)!;
            assert.notEqual(host.node_peer_id, remote.node_peer_id);
            assert.equal(host.module_hash, remote.module_hash, name);
            assert.equal(host.input_hash, remote.input_hash, name);
            assert.equal(
              host.execution.fuel_consumed,
              remote.execution.fuel_consumed,
              `${name}: fuel on x86_64 vs aarch64`,
            );
            assert.equal(
              await sha256Hex(host.stdout),
              await sha256Hex(remote.stdout),
              `${name}: output`,
            );
            console.log(
              `${name}: fuel ${host.execution.fuel_consumed} on both; wall ${host.execution.wall_time_ms} ms (x86_64) vs ${remote.execution.wall_time_ms} ms (aarch64 under TCG)`,
            );
          }
          // The SIMD build computes the same digest as the scalar one.
          assert.equal(
            vmReceipts.get("cpu_heavy")!.stdout,
            vmReceipts.get("cpu_heavy_simd")!.stdout,
          );
        },
      );
      console.log(
        `aarch64 test: ${
          ((performance.now() - testStarted) / 1000).toFixed(1)
        } s in all`,
      );
    } finally {
      await vm?.stop();
      await lab.close();
      await cleanup();
    }
  },
});
