/**
 * Boot benchmark (needs root, QEMU and the boot tools; installs them like
 * the tests). Every figure is host seconds under QEMU's TCG (no KVM here),
 * printed against its target:
 *
 * - initramfs size (target <= 32 MiB) and build time;
 * - QEMU start -> verified receipt after kexec (x86_64 target <= 30 s),
 *   with the console's milestones (host seconds when each line showed);
 * - iPXE netboot: QEMU's NIC ROM, DHCP, boot.ipxe, kernel and initramfs
 *   over HTTP, then the same flow (target <= 50 s);
 * - the self-hosting chain: VM1 boots from the host, the host runs a job on
 *   it over libp2p, the host's provider stops, VM2 finds VM1 by mDNS and
 *   boots from it to a verified receipt (target <= 80 s, VM1 start -> VM2
 *   receipt).
 *
 * aarch64 (direct boot only) also pays for translating another instruction
 * set, so its ratio to x86_64 measures the emulation more than Phase.
 * Other work on the machine slows TCG: the load average is printed with
 * each figure.
 *
 * Usage: deno run -A bench/boot_bench.ts [--arch x86_64,aarch64]
 *        [--no-chains] [--json]
 */
import { parseArgs } from "node:util";
import { bootTarget } from "../boot/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import {
  type BootImages,
  buildImages,
  ensureBootTools,
  Lab,
  releaseArtifacts,
} from "../tests/boot_harness.ts";
import { ROOT } from "../tests/helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean" },
    arch: { type: "string", default: "x86_64,aarch64" },
    "no-chains": { type: "boolean" },
  },
});

/** Targets (issue: boot to a verified receipt in 30 s under emulation). */
const TARGETS = {
  initramfsMib: 32,
  receiptSeconds: 30,
  netbootSeconds: 50,
  chainSeconds: 80,
};

/** Console lines that mark where a boot's time goes, in order. */
const MILESTONES: [string, RegExp][] = [
  ["/init", /\/init: modules loaded/],
  ["network", /network eth\d/],
  ["deno started (stage 1)", /stage 1, /],
  ["manifest verified", /manifest \d+ verified/],
  ["artifacts verified", /handing over|kexec into/],
  ["kexec loaded", /kexec loaded/],
  ["stage 2 /init", /\/init: modules loaded[\s\S]*\/init: modules loaded/],
  ["deno started (stage 2)", /stage 2/],
  ["stage 2 manifest verified", /stage 2[\s\S]*manifest \d+ verified/],
  ["node started", /node started/],
  ["job done", /job done; receipt/],
];

const VERIFIED_AND_SERVING =
  /Receipt:\s+✓ Verified[\s\S]*serving the artifacts it booted from on port \d+ \(booted from [^)]+\)/;

/** One architecture's figures. */
interface BootResult {
  arch: string;
  initramfs_mib: number;
  build_seconds: number;
  receipt_seconds: number;
  marks: Record<string, number>;
  load: number;
  netboot_seconds?: number;
  netboot_marks?: Record<string, number>;
  netboot_load?: number;
  chain_seconds?: number;
  chain_load?: number;
}

/** The 1-minute load average. */
async function load(): Promise<number> {
  return Number(
    (await Deno.readTextFile("/proc/loadavg").catch(() => "0")).split(" ")[0],
  );
}

/** A lab with the release served on 10.77.0.1:8080; `fn` runs in it. */
async function withRelease<T>(
  images: BootImages,
  dir: string,
  extra: string[] | undefined,
  fn: (
    lab: Lab,
    peerId: string,
    host: Awaited<ReturnType<Lab["serveRelease"]>>,
  ) => Promise<T>,
): Promise<T> {
  const lab = new Lab();
  try {
    const release = await generateKey();
    await Deno.remove(`${dir}/artifacts`, { recursive: true }).catch(() => {});
    await releaseArtifacts(`${dir}/artifacts`, images, release);
    await lab.open();
    const host = await lab.serveRelease({
      artifacts: `${dir}/artifacts`,
      port: 8080,
      dataDir: `${dir}/data-${crypto.randomUUID()}`,
      extra: extra?.map((a) => a === "PUBKEY" ? release.peerId : a),
    });
    return await fn(lab, release.peerId, host);
  } finally {
    await lab.close();
  }
}

/** Host seconds from now at which each milestone first showed on the console. */
function milestones(extra: [string, RegExp][] = []) {
  const marks: Record<string, number> = {};
  let seen = "";
  const started = performance.now();
  return {
    marks,
    onOutput: (chunk: string) => {
      seen += chunk;
      const at = (performance.now() - started) / 1000;
      for (const [name, pattern] of [...extra, ...MILESTONES]) {
        if (!(name in marks) && pattern.test(seen)) marks[name] = at;
      }
    },
  };
}

/** QEMU start -> verified receipt after kexec, with milestones. */
async function direct(images: BootImages, dir: string) {
  return await withRelease(images, dir, undefined, async (lab, peerId) => {
    const { marks, onOutput } = milestones();
    const run = await lab.boot({
      images,
      cmdline:
        `phase.provider=http://10.77.0.1:8080 phase.pubkey=${peerId} phase.ip=10.77.0.10/24`,
      until: /Receipt:\s+✓ Verified/,
      timeoutMs: 900_000,
      onOutput,
    });
    if (!run.matched) {
      throw new Error(`no verified receipt: ${run.output.slice(-1000)}`);
    }
    return { seconds: run.seconds, marks };
  });
}

/** iPXE ROM -> DHCP -> boot.ipxe -> verified receipt. */
async function netboot(
  images: BootImages,
  dir: string,
): Promise<{ seconds: number; marks: Record<string, number> }> {
  return await withRelease(
    images,
    dir,
    ["--no-dht", "--pubkey", "PUBKEY"],
    async (lab) => {
      await lab.dhcp(`${dir}/dhcp`, "http://10.77.0.1:8080/boot.ipxe");
      const { marks, onOutput } = milestones([
        ["iPXE", /iPXE/],
        ["boot.ipxe", /boot\.ipxe/],
      ]);
      const run = await lab.boot({
        images,
        cmdline: "",
        firmware: true,
        until: VERIFIED_AND_SERVING,
        timeoutMs: 600_000,
        onOutput,
      });
      if (!run.matched) {
        throw new Error(`netboot: ${run.output.slice(-1000)}`);
      }
      return { seconds: run.seconds, marks };
    },
  );
}

/** VM1 from the host, a job on VM1, VM2 from VM1 by mDNS: VM1 start -> VM2 receipt. */
async function chain(images: BootImages, dir: string): Promise<number> {
  return await withRelease(
    images,
    dir,
    undefined,
    async (lab, peerId, host) => {
      const started = performance.now();
      const vm1 = await lab.start({
        images,
        cmdline:
          `phase.mode=local phase.provider=http://10.77.0.1:8080 phase.pubkey=${peerId} phase.ip=10.77.0.20/24`,
        until: /announced as a boot provider/,
        timeoutMs: 600_000,
      });
      try {
        const first = await vm1.run;
        if (!first.matched) {
          throw new Error(
            `VM1: ${first.output.slice(-1000)}`,
          );
        }
        const peer = first.output.match(/Node:\s+(12D3\w+)/)?.[1];
        const submitted = await lab.phase([
          "submit",
          `${ROOT}/examples/wasm/hello.wasm`,
          "--peer",
          peer ?? "",
          "--bootstrap",
          "/ip4/10.77.0.20/tcp/4001",
          "--",
          "from the host",
        ]);
        if (submitted.code !== 0) {
          throw new Error(
            `submit: ${new TextDecoder().decode(submitted.stderr)}`,
          );
        }
        await lab.stopProvider(host);
        const vm2 = await lab.boot({
          images,
          cmdline:
            `phase.mode=local phase.pubkey=${peerId} phase.ip=10.77.0.21/24 phase.poweroff=1`,
          until: /Receipt:\s+✓ Verified/,
          timeoutMs: 600_000,
        });
        if (!vm2.matched) throw new Error(`VM2: ${vm2.output.slice(-1000)}`);
        return (performance.now() - started) / 1000;
      } finally {
        await vm1.stop();
      }
    },
  );
}

async function measure(arch: string): Promise<BootResult> {
  await ensureBootTools(arch);
  const dir = await Deno.makeTempDir({ prefix: "phase-boot-bench-" });
  try {
    const images = await buildImages(`${dir}/images`, arch);
    const result: BootResult = {
      arch: images.target.arch,
      initramfs_mib: images.initramfsBytes / 1024 / 1024,
      build_seconds: images.buildSeconds,
      receipt_seconds: 0,
      marks: {},
      load: await load(),
    };
    const boot = await direct(images, dir);
    result.receipt_seconds = boot.seconds;
    result.marks = boot.marks;
    if (images.target.arch === "x86_64" && !values["no-chains"]) {
      result.netboot_load = await load();
      const net = await netboot(images, dir);
      result.netboot_seconds = net.seconds;
      result.netboot_marks = net.marks;
      result.chain_load = await load();
      result.chain_seconds = await chain(images, dir);
    }
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const against = (value: number, target: number, unit: string) =>
  `${value.toFixed(1)} ${unit} (target <= ${target} ${unit}: ${
    value <= target ? "met" : "missed"
  })`;

const results: BootResult[] = [];
for (const arch of values.arch.split(",").filter(Boolean)) {
  results.push(await measure(bootTarget(arch).arch));
}
if (values.json) console.log(JSON.stringify(results));
else {
  const x86 = results.find((r) => r.arch === "x86_64");
  for (const r of results) {
    console.log(
      `${r.arch}: initramfs ${
        against(r.initramfs_mib, TARGETS.initramfsMib, "MiB")
      }, built in ${r.build_seconds.toFixed(1)} s`,
    );
    console.log(
      `${r.arch}: QEMU start -> verified receipt after kexec: ${
        r.arch === "x86_64"
          ? against(r.receipt_seconds, TARGETS.receiptSeconds, "s")
          : `${r.receipt_seconds.toFixed(1)} s${
            x86
              ? ` (${
                (r.receipt_seconds / x86.receipt_seconds).toFixed(1)
              }x x86_64, both under TCG)`
              : ""
          }`
      } [load ${r.load.toFixed(2)}]`,
    );
    console.log(
      `${r.arch}: milestones (s): ${
        Object.entries(r.marks).map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(", ")
      }`,
    );
    if (r.netboot_seconds !== undefined) {
      console.log(
        `${r.arch}: iPXE netboot -> verified receipt: ${
          against(r.netboot_seconds, TARGETS.netbootSeconds, "s")
        } [load ${r.netboot_load?.toFixed(2)}]`,
      );
      console.log(
        `${r.arch}: netboot milestones (s): ${
          Object.entries(r.netboot_marks ?? {}).map(([k, v]) =>
            `${k} ${v.toFixed(1)}`
          ).join(", ")
        }`,
      );
    }
    if (r.chain_seconds !== undefined) {
      console.log(
        `${r.arch}: self-hosting chain (VM1 start -> VM2 verified receipt): ${
          against(r.chain_seconds, TARGETS.chainSeconds, "s")
        } [load ${r.chain_load?.toFixed(2)}]`,
      );
    }
  }
}
