/**
 * Boot benchmark (needs root, QEMU and the boot tools; installs them like
 * the tests): initramfs size and build time, and host seconds from QEMU start
 * to the verified receipt after kexec (target <= 40 s under TCG; the lab's
 * raw wget+kexec chain took ~45 s).
 *
 * Usage: deno run -A bench/boot_bench.ts [--json]
 */
import { parseArgs } from "node:util";
import { generateKey } from "../schemas/mod.ts";
import {
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "../tests/boot_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { json: { type: "boolean" } },
});
await ensureBootTools();
const dir = await Deno.makeTempDir({ prefix: "phase-boot-bench-" });
const lab = new Lab();
try {
  const images = await buildImages(`${dir}/images`);
  const release = await generateKey();
  await releaseArtifacts(`${dir}/artifacts`, images, release);
  await lab.open();
  await lab.serveRelease({
    artifacts: `${dir}/artifacts`,
    port: 8080,
    dataDir: `${dir}/data`,
  });
  const marks: Record<string, number> = {};
  let seen = "";
  const started = performance.now();
  const run = await lab.boot({
    images,
    cmdline:
      `phase.provider=http://10.77.0.1:8080 phase.pubkey=${release.peerId} phase.ip=10.77.0.10/24`,
    until: /Receipt:\s+✓ Verified/,
    timeoutMs: 300_000,
    onOutput: (chunk) => {
      seen += chunk;
      const at = (performance.now() - started) / 1000;
      for (
        const [name, pattern] of [
          ["/init", /\/init: modules loaded/],
          ["network up", /network eth0/],
          ["boot program started", /stage 1, /],
          ["manifest verified", /manifest \d+ verified/],
          ["kexec", /kexec into/],
          ["stage 2", /stage 2/],
          ["job done", /job done; receipt/],
        ] as const
      ) {
        if (!(name in marks) && pattern.test(seen)) marks[name] = at;
      }
    },
  });
  if (!run.matched) {
    throw new Error(`no verified receipt: ${run.output.slice(-1000)}`);
  }
  const result = {
    initramfs_mib: images.initramfsBytes / 1024 / 1024,
    build_seconds: images.buildSeconds,
    receipt_seconds: run.seconds,
    marks,
  };
  if (values.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `initramfs ${
        result.initramfs_mib.toFixed(1)
      } MiB (target <= 40 MB), built in ${result.build_seconds.toFixed(1)} s`,
    );
    console.log(
      `QEMU start -> verified receipt after kexec: ${
        result.receipt_seconds.toFixed(1)
      } s (target <= 40 s)`,
    );
    console.log(
      `milestones (s): ${
        Object.entries(marks).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")
      }`,
    );
  }
} finally {
  await lab.close();
  await Deno.remove(dir, { recursive: true });
}
