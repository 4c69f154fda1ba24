/**
 * Runner benchmark. Prints, from one run on this machine:
 * - hello latency in process (warm p50/p99) and through the CLI (cold wall);
 * - hello jobs per second through the sandbox pool (2 processes);
 * - the CPU-heavy module (SHA-256 over N MiB) in Phase vs the same C built
 *   natively with gcc -O2 vs Node's node:wasi, as ratios to native.
 * Targets (issue 2): warm p50 <= 2 ms, >= 500 jobs/s, CPU-heavy <= 1.4x native.
 *
 * Usage: deno run -A bench/runner_bench.ts [--mib N] [--json]
 */
import { parseArgs } from "node:util";
import { execute } from "../runner/execute.ts";
import { MIB, SandboxPool } from "../runner/mod.ts";
import { sha256Ref } from "../schemas/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mib: { type: "string", default: "64" },
    json: { type: "boolean" },
  },
});
const mib = Number(values.mib);
const root = new URL("../", import.meta.url).pathname;
const hello = Deno.readFileSync(`${root}examples/wasm/hello.wasm`);
const helloHash = await sha256Ref(hello);
const cpuHeavy = Deno.readFileSync(`${root}examples/wasm/cpu_heavy.wasm`);
const cpuHash = await sha256Ref(cpuHeavy);

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function log(line: string) {
  if (!values.json) console.log(line);
}

const request = (args: string[]) => ({
  module: hello,
  moduleHash: helloHash,
  programName: "hello",
  args,
  env: {},
  stdin: new Uint8Array(),
  memoryBytes: 128 * MIB,
  outputLimit: MIB,
  preopens: [],
});

// 1. In-process warm latency.
for (let i = 0; i < 50; i++) execute(request(["warm"]));
const warm: number[] = [];
for (let i = 0; i < 500; i++) {
  const t = performance.now();
  execute(request(["Hello, World!"]));
  warm.push(performance.now() - t);
}
log(
  `hello in process (warm):   p50 ${percentile(warm, 0.5).toFixed(3)} ms, p99 ${
    percentile(warm, 0.99).toFixed(3)
  } ms`,
);

// 2. CLI cold wall time.
const tmp = await Deno.makeTempDir();
const cold: number[] = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}main.ts`,
      "run",
      `${root}examples/wasm/hello.wasm`,
      "--data-dir",
      tmp,
      "--",
      "Hello",
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  if (out.code !== 0) throw new Error("CLI run failed");
  cold.push(performance.now() - t);
}
await Deno.remove(tmp, { recursive: true });
log(
  `hello via CLI (cold):      median ${
    percentile(cold, 0.5).toFixed(0)
  } ms over 5 runs`,
);

// 3. Pool throughput.
const pool = new SandboxPool({ size: 2, queueLimit: 10_000 });
await pool.warm();
const total = 2000;
const submitters = 8;
const latencies: number[] = [];
let next = 0;
const started = performance.now();
await Promise.all(Array.from({ length: submitters }, async () => {
  while (next < total) {
    next++;
    const t = performance.now();
    const out = await pool.run({ ...request(["Hello"]), timeoutMs: 10_000 });
    if (out.exitCode !== 0) throw new Error("pool job failed");
    latencies.push(performance.now() - t);
  }
}));
const jobsPerSecond = total / ((performance.now() - started) / 1000);
await pool.close();
log(
  `hello via sandbox pool:    ${
    jobsPerSecond.toFixed(0)
  } jobs/s (2 processes, ${submitters} submitters), p50 ${
    percentile(latencies, 0.5).toFixed(2)
  } ms`,
);

// 4. CPU-heavy: Phase vs native vs node:wasi.
async function timeCommand(
  program: string,
  args: string[],
): Promise<[number, string]> {
  const t = performance.now();
  const out = await new Deno.Command(program, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `${program} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return [performance.now() - t, new TextDecoder().decode(out.stdout).trim()];
}
const work = await Deno.makeTempDir();
await timeCommand("gcc", [
  "-O2",
  "-o",
  `${work}/cpu_heavy`,
  `${root}examples/src/cpu_heavy.c`,
]);
await Deno.writeTextFile(
  `${work}/node_wasi.mjs`,
  `
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
const wasi = new WASI({ version: "preview1", args: ["cpu_heavy", process.argv[3]] });
const module = await WebAssembly.compile(readFileSync(process.argv[2]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
wasi.start(instance);
`,
);
const best = async (fn: () => Promise<[number, string]>) => {
  let min = Infinity;
  let output = "";
  for (let i = 0; i < 3; i++) {
    const [ms, out] = await fn();
    if (ms < min) [min, output] = [ms, out];
  }
  return [min, output] as const;
};
const [nativeMs, nativeOut] = await best(() =>
  timeCommand(`${work}/cpu_heavy`, [String(mib)])
);
const [phaseMs, phaseOut] = await best(() => {
  const t = performance.now();
  const out = execute({
    ...request([String(mib)]),
    module: cpuHeavy,
    moduleHash: cpuHash,
    programName: "cpu_heavy",
  });
  return Promise.resolve([
    performance.now() - t,
    new TextDecoder().decode(out.stdout).trim(),
  ]);
});
let nodeMs = NaN;
try {
  const [ms, out] = await best(() =>
    timeCommand("node", [
      "--no-warnings",
      `${work}/node_wasi.mjs`,
      `${root}examples/wasm/cpu_heavy.wasm`,
      String(mib),
    ])
  );
  if (out !== nativeOut) throw new Error("node:wasi output differs");
  nodeMs = ms;
} catch (error) {
  log(`node:wasi: not measured (${(error as Error).message})`);
}
await Deno.remove(work, { recursive: true });
if (phaseOut !== nativeOut) throw new Error("Phase and native outputs differ");
log(
  `cpu_heavy ${mib} MiB (best of 3): native ${nativeMs.toFixed(0)} ms, phase ${
    phaseMs.toFixed(0)
  } ms (${(phaseMs / nativeMs).toFixed(2)}x native), node:wasi ${
    nodeMs.toFixed(0)
  } ms (${(nodeMs / nativeMs).toFixed(2)}x native)`,
);

if (values.json) {
  console.log(JSON.stringify({
    warm_p50_ms: percentile(warm, 0.5),
    warm_p99_ms: percentile(warm, 0.99),
    cli_cold_median_ms: percentile(cold, 0.5),
    pool_jobs_per_second: jobsPerSecond,
    pool_p50_ms: percentile(latencies, 0.5),
    cpu_heavy: {
      mib,
      native_ms: nativeMs,
      phase_ms: phaseMs,
      node_wasi_ms: nodeMs,
      phase_ratio: phaseMs / nativeMs,
    },
  }));
}
