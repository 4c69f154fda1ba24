/**
 * Boot benchmark (needs root, QEMU and the boot tools; installs them like
 * the tests): for x86_64 and aarch64 side by side, initramfs size and build
 * time, and host seconds from QEMU start to the verified receipt after kexec
 * (x86_64 target <= 40 s under TCG; the lab's raw wget+kexec chain took
 * ~45 s). Both run under TCG; aarch64 on an x86_64 host also pays for
 * translating another instruction set, so its ratio to x86_64 measures the
 * emulation more than Phase.
 *
 * Usage: deno run -A bench/boot_bench.ts [--arch x86_64,aarch64] [--json]
 */
import { parseArgs } from "node:util";
import { bootTarget } from "../boot/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import {
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "../tests/boot_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean" },
    arch: { type: "string", default: "x86_64,aarch64" },
  },
});

/** One architecture's figures. */
interface BootResult {
  arch: string;
  initramfs_mib: number;
  build_seconds: number;
  receipt_seconds: number;
  marks: Record<string, number>;
}

async function measure(arch: string): Promise<BootResult> {
  await ensureBootTools(arch);
  const dir = await Deno.makeTempDir({ prefix: "phase-boot-bench-" });
  const lab = new Lab();
  try {
    const images = await buildImages(`${dir}/images`, arch);
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
      timeoutMs: 900_000,
      onOutput: (chunk) => {
        seen += chunk;
        const at = (performance.now() - started) / 1000;
        for (
          const [name, pattern] of [
            ["/init", /\/init: modules loaded/],
            ["network up", /network eth\d/],
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
      throw new Error(
        `${arch}: no verified receipt: ${run.output.slice(-1000)}`,
      );
    }
    return {
      arch: images.target.arch,
      initramfs_mib: images.initramfsBytes / 1024 / 1024,
      build_seconds: images.buildSeconds,
      receipt_seconds: run.seconds,
      marks,
    };
  } finally {
    await lab.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const results: BootResult[] = [];
for (const arch of values.arch.split(",").filter(Boolean)) {
  results.push(await measure(bootTarget(arch).arch));
}
if (values.json) console.log(JSON.stringify(results));
else {
  const x86 = results.find((r) => r.arch === "x86_64");
  for (const result of results) {
    console.log(
      `${result.arch}: initramfs ${
        result.initramfs_mib.toFixed(1)
      } MiB (target <= 40 MB), built in ${result.build_seconds.toFixed(1)} s`,
    );
    console.log(
      `${result.arch}: QEMU start -> verified receipt after kexec: ${
        result.receipt_seconds.toFixed(1)
      } s${
        result.arch === "x86_64"
          ? " (target <= 40 s)"
          : x86
          ? ` (${
            (result.receipt_seconds / x86.receipt_seconds).toFixed(1)
          }x x86_64, both under TCG)`
          : ""
      }`,
    );
    console.log(
      `${result.arch}: milestones (s): ${
        Object.entries(result.marks).map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(", ")
      }`,
    );
  }
}
