import assert from "node:assert/strict";
import { generateKey } from "../schemas/mod.ts";
import {
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "./boot_harness.ts";
import { ROOT, tempDir, text } from "./helpers.ts";

Deno.test({
  name:
    "self-hosting loop: the host runs a job on VM1 over libp2p; VM2 boots from VM1 (found by mDNS) after the host's provider stopped",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await ensureBootTools();
    const [dir, cleanup] = await tempDir();
    const lab = new Lab();
    let vm1: Awaited<ReturnType<Lab["start"]>> | undefined;
    try {
      const images = await buildImages(`${dir}/images`);
      const release = await generateKey();
      await releaseArtifacts(`${dir}/artifacts`, images, release, {
        manifestVersion: 2000,
      });
      await lab.open();
      const host = await lab.serveRelease({
        artifacts: `${dir}/artifacts`,
        port: 8080,
        dataDir: `${dir}/data`,
      });
      const started = performance.now();
      vm1 = await lab.start({
        images,
        cmdline:
          `phase.mode=local phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId} phase.ip=10.77.0.20/24`,
        until: /announced as a boot provider/,
        timeoutMs: 300_000,
      });
      const first = await vm1.run;
      assert.ok(first.matched, first.output.slice(-3000));
      assert.match(first.output, /Receipt:\s+✓ Verified/);
      // The booted VM is a full node: the host finds it on libp2p, runs a
      // job on it and verifies a receipt signed by the VM's own key.
      const inLab = (args: string[]) => lab.phase(args);
      const vmAddress = "/ip4/10.77.0.20/tcp/4001";
      const discovered = await inLab([
        "discover",
        "--bootstrap",
        vmAddress,
        "--json",
        "--timeout",
        "20",
      ]);
      assert.equal(discovered.code, 0, text(discovered.stderr));
      const vmNode = (JSON.parse(text(discovered.stdout)) as {
        peer_id: string;
        arch: string;
        http_url?: string;
      }[]).find((n) => n.http_url === "http://10.77.0.20:8080");
      assert.ok(vmNode, text(discovered.stdout));
      assert.equal(vmNode.arch, "x86_64");
      // The VM printed the same peer id in its own receipt box.
      assert.ok(first.output.includes(vmNode.peer_id));
      const submitted = await inLab([
        "submit",
        `${ROOT}/examples/wasm/hello.wasm`,
        "--peer",
        vmNode.peer_id,
        "--bootstrap",
        vmAddress,
        "--receipt",
        `${dir}/vm-receipt.json`,
        "--",
        "from the host",
      ]);
      assert.equal(submitted.code, 0, text(submitted.stderr));
      assert.equal(text(submitted.stdout), "tsoh eht morf\n");
      assert.match(
        text(submitted.stderr),
        new RegExp(`signed by ${vmNode.peer_id}`),
      );
      const verified = await inLab([
        "receipt",
        "verify",
        `${dir}/vm-receipt.json`,
        "--peer",
        vmNode.peer_id,
      ]);
      assert.equal(verified.code, 0, text(verified.stderr));
      await lab.stopProvider(host);
      const vm2 = await lab.boot({
        images,
        cmdline:
          `phase.mode=local phase.pubkey=${release.peerId} phase.ip=10.77.0.21/24 phase.poweroff=1`,
        until:
          /Receipt:\s+✓ Verified[\s\S]*serving the artifacts it booted from on port \d+ \(booted from [^)]+\)/,
        timeoutMs: 300_000,
      });
      const total = (performance.now() - started) / 1000;
      assert.ok(vm2.matched, vm2.output.slice(-3000));
      assert.match(vm2.output, /looking for stable\/x86_64 providers \(mDNS\)/);
      assert.match(
        vm2.output,
        /fetching http:\/\/10\.77\.0\.20:8080\/stable\/x86_64\/manifest\.json/,
      );
      assert.match(vm2.output, /manifest 2000 verified/);
      assert.match(vm2.output, /booted from http:\/\/10\.77\.0\.20:8080/);
      // VM1's own counters show that VM2 downloaded the kernel and initramfs from it.
      const metrics = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          lab.ns,
          "curl",
          "-s",
          "--max-time",
          "10",
          "http://10.77.0.20:8080/metrics",
        ],
        stdout: "piped",
      }).output();
      const counters = text(metrics.stdout);
      assert.match(
        counters,
        /phase_artifact_downloads_total\{artifact="stable\/x86_64\/vmlinuz"\} [1-9]/,
      );
      assert.match(
        counters,
        /phase_artifact_downloads_total\{artifact="stable\/x86_64\/initramfs.img"\} [1-9]/,
      );
      // The operator's view of the VM-served provider.
      const status = await inLab([
        "provider",
        "status",
        "--url",
        "http://10.77.0.20:8080",
      ]);
      assert.equal(status.code, 0, text(status.stderr));
      assert.match(text(status.stdout), /^health:\s+ok$/m);
      console.log(
        `self-hosting chain (VM1 start -> VM2 verified receipt): ${
          total.toFixed(1)
        } s`,
      );
      assert.ok(total < 180, `the chain took ${total.toFixed(1)} s`);
    } finally {
      await vm1?.stop();
      await lab.close();
      await cleanup();
    }
  },
});
