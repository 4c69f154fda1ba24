import assert from "node:assert/strict";
import { RUNTIME_VERSION } from "../runner/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import {
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "./boot_harness.ts";
import { tempDir } from "./helpers.ts";

Deno.test({
  name:
    "firmware netboot: QEMU's iPXE ROM, DHCP boot file /boot.ipxe, Phase Boot to a verified receipt",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await ensureBootTools();
    const [dir, cleanup] = await tempDir();
    const lab = new Lab();
    try {
      const images = await buildImages(`${dir}/images`);
      const release = await generateKey();
      await releaseArtifacts(`${dir}/artifacts`, images, release, {
        manifestVersion: 3000,
      });
      await lab.open();
      await lab.serveRelease({
        artifacts: `${dir}/artifacts`,
        port: 8080,
        dataDir: `${dir}/data`,
        extra: ["--no-dht", "--pubkey", release.peerId],
      });
      await lab.dhcp(`${dir}/dhcp`, "http://10.77.0.1:8080/boot.ipxe");
      const run = await lab.boot({
        images,
        cmdline: "",
        firmware: true,
        until:
          /Receipt:\s+✓ Verified[\s\S]*serving the artifacts it booted from on port \d+ \(booted from [^)]+\)/,
        timeoutMs: 300_000,
      });
      assert.ok(run.matched, run.output.slice(-3000));
      assert.match(run.output, /iPXE/);
      assert.match(
        run.output,
        new RegExp(
          `Phase Boot ${
            RUNTIME_VERSION.replaceAll(".", "\\.")
          } \\(stable/x86_64, manifest 3000\\)`,
        ),
      );
      assert.match(run.output, /manifest 3000 verified: signed by /);
      assert.match(run.output, /kexec into/);
      console.log(
        `firmware netboot to a verified receipt: ${run.seconds.toFixed(1)} s`,
      );
    } finally {
      await lab.close();
      await cleanup();
    }
  },
});
