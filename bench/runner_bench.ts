/**
 * Runner benchmark. Prints, from one run on this machine:
 * - hello latency in process (warm p50/p99) and through the CLI (cold wall);
 * - cold start in the same rounds as its peers: `phase version` against a
 *   Deno hello-world, `phase run` of hello.wasm against node:wasi running it,
 *   each a new process with the flags and permissions ./phase uses;
 * - hello jobs per second and p50/p99 through the sandbox pool (2 processes)
 *   with 1, 2 and 8 concurrent submitters, and through runJob (metered-module
 *   cache and a signed receipt per job);
 * - fuel instrumentation time for hello and a ~1 MB module;
 * - the CPU-heavy module (SHA-256 over N MiB) metered and unmetered in Phase
 *   vs the same C built natively with gcc -O2 vs Node's node:wasi;
 * - 100 MB of standard input through runJob into a guest that counts it,
 *   vs the same bytes piped into `wc -c`;
 * - fuel burn rates (the densest loop known and compiled C) against the
 *   default budget's rate.
 * Targets: `phase version` <= 3x a Deno hello-world; `phase run` of hello
 * <= 1.0x node:wasi; warm p50 <= 2 ms; pool >= 1000 jobs/s with p50 <= 2 ms;
 * instrumentation of 1 MB <= 100 ms; metering overhead <= 20%; CPU-heavy
 * <= 1.4x native; the default fuel rate above every measured rate.
 *
 * Usage: deno run -A bench/runner_bench.ts [--mib N] [--json]
 */
import { parseArgs } from "node:util";
import { execute } from "../runner/execute.ts";
import {
  DEFAULT_LIMITS,
  instrumentFuel,
  MIB,
  runJob,
  SandboxPool,
} from "../runner/mod.ts";
import { generateKey, sha256Ref } from "../schemas/mod.ts";
import { inflateModule } from "./inflate_module.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mib: { type: "string", default: "64" },
    json: { type: "boolean" },
  },
});
const mib = Number(values.mib);
const root = new URL("../", import.meta.url).pathname;
const helloPlain = Deno.readFileSync(`${root}examples/wasm/hello.wasm`);
// Jobs run metered modules, so the latency figures use one too.
const hello = instrumentFuel(helloPlain).bytes;
const helloHash = `${await sha256Ref(helloPlain)}+fuel`;
const cpuHeavy = Deno.readFileSync(`${root}examples/wasm/cpu_heavy.wasm`);
const cpuHash = await sha256Ref(cpuHeavy);

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function log(line: string) {
  if (!values.json) console.log(line);
}

// Node.js running a module with node:wasi, the peer for CPU and start-up:
// `node node_wasi.mjs <module.wasm> [args…]` (argv[0] is the module's name).
const work = await Deno.makeTempDir();
const nodeWasi = `${work}/node_wasi.mjs`;
await Deno.writeTextFile(
  nodeWasi,
  `
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
const [path, ...args] = process.argv.slice(2);
const name = path.split("/").pop().replace(/\\.wasm$/, "");
const wasi = new WASI({ version: "preview1", args: [name, ...args] });
const module = await WebAssembly.compile(readFileSync(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
wasi.start(instance);
`,
);

const request = (args: string[]) => ({
  module: hello,
  moduleKey: helloHash,
  programName: "hello",
  args,
  env: {},
  stdin: new Uint8Array(),
  memoryBytes: 128 * MIB,
  outputLimit: MIB,
  preopens: [],
  fuel: 60_000_000_000,
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

// Cold start against peers measured in the same rounds: every command a new
// process, in turn, 15 rounds after one uncounted round (the OS file cache
// warm, no Phase process alive between runs), each with the `deno run` flags
// and permissions ./phase gives it. Targets: `phase version` <= 3x a Deno
// hello-world; `phase run` of hello.wasm <= 1.0x node:wasi running it.
const data = `${work}/data`;
const deno = Deno.execPath();
const helloPath = `${root}examples/wasm/hello.wasm`;
await Deno.writeTextFile(`${work}/hello.js`, `console.log("Hello, World!");\n`);
const denoRun = ["run", "--no-prompt", "--quiet", `--config=${root}deno.json`];
const runHello = ["run", helloPath, "--data-dir", data, "--", "hi"];
const coldCommands: Record<string, [string, string[], string]> = {
  hello: [deno, [...denoRun, `${work}/hello.js`], "Hello, World!"],
  version: [deno, [...denoRun, `${root}main.ts`, "version"], "phase "],
  // With the permissions ./phase grants `run`.
  run: [deno, [
    ...denoRun,
    "--unstable-lazy-dynamic-imports",
    "--allow-read",
    `--allow-write=${data}`,
    "--allow-env=PHASE_HOME,XDG_DATA_HOME,HOME",
    `--allow-run=${deno}`,
    `${root}main.ts`,
    ...runHello,
  ], "ih"],
  // As users run it: the launcher finds Deno and grants the permissions.
  launcher: [`${root}phase`, runHello, "ih"],
  node: ["node", ["--no-warnings", nodeWasi, helloPath, "hi"], "ih"],
};
const coldTimes: Record<string, number[]> = {};
let nodeMissing = "";
for (let round = 0; round <= 15; round++) {
  for (
    const [name, [program, args, expected]] of Object.entries(coldCommands)
  ) {
    if (name === "node" && nodeMissing) continue;
    let ms: number, out: string;
    try {
      [ms, out] = await timeCommand(program, args);
    } catch (error) {
      if (name !== "node") throw error;
      nodeMissing = (error as Error).message.split("\n")[0];
      continue;
    }
    if (!out.startsWith(expected)) {
      throw new Error(`${name} printed ${JSON.stringify(out)}`);
    }
    if (round > 0) (coldTimes[name] ??= []).push(ms);
  }
}
const coldMedian = (name: string) =>
  coldTimes[name] ? percentile(coldTimes[name], 0.5) : NaN;
const coldStart = {
  rounds: 15,
  deno_hello_ms: coldMedian("hello"),
  version_ms: coldMedian("version"),
  version_ratio: coldMedian("version") / coldMedian("hello"),
  run_ms: coldMedian("run"),
  node_wasi_ms: coldMedian("node"),
  run_ratio: coldMedian("run") / coldMedian("node"),
  launcher_ms: coldMedian("launcher"),
  launcher_ratio: coldMedian("launcher") / coldMedian("node"),
};
log(
  `phase version (cold):      median ${
    coldStart.version_ms.toFixed(0)
  } ms, deno hello-world ${coldStart.deno_hello_ms.toFixed(0)} ms (${
    coldStart.version_ratio.toFixed(2)
  }x; target <= 3x)`,
);
log(
  nodeMissing
    ? `phase run hello (cold):    median ${
      coldStart.run_ms.toFixed(0)
    } ms; node:wasi not measured (${nodeMissing})`
    : `phase run hello (cold):    median ${
      coldStart.run_ms.toFixed(0)
    } ms, node:wasi ${coldStart.node_wasi_ms.toFixed(0)} ms (${
      coldStart.run_ratio.toFixed(2)
    }x; target <= 1.0x)`,
);
log(
  `./phase run hello (cold):  median ${coldStart.launcher_ms.toFixed(0)} ms (${
    coldStart.launcher_ratio.toFixed(2)
  }x node:wasi; the launcher's ${
    (coldStart.launcher_ms - coldStart.run_ms).toFixed(0)
  } ms included)`,
);

// 3. Pool throughput with 1, 2 and 8 submitters.
const pool = new SandboxPool({ size: 2, queueLimit: 10_000 });
await pool.warm();
const poolRuns: {
  submitters: number;
  jobs_per_second: number;
  p50_ms: number;
  p99_ms: number;
}[] = [];
for (const submitters of [1, 2, 8]) {
  const total = 2000;
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
  const run = {
    submitters,
    jobs_per_second: total / ((performance.now() - started) / 1000),
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
  };
  poolRuns.push(run);
  log(
    `hello via sandbox pool:    ${run.jobs_per_second.toFixed(0)} jobs/s, p50 ${
      run.p50_ms.toFixed(2)
    } ms, p99 ${
      run.p99_ms.toFixed(2)
    } ms (2 processes, ${submitters} submitter${submitters > 1 ? "s" : ""})`,
  );
}

// The whole job path: metered-module cache, sandbox, signed receipt.
const key = await generateKey();
const jobLatencies: number[] = [];
const jobTotal = 2000;
let jobNext = 0;
const jobStarted = performance.now();
await Promise.all(Array.from({ length: 8 }, async () => {
  while (jobNext < jobTotal) {
    jobNext++;
    const t = performance.now();
    const { receipt } = await runJob(
      { module: helloPlain, args: ["Hello"] },
      { sandbox: pool, key },
    );
    if (receipt.execution.exit_code !== 0) throw new Error("job failed");
    jobLatencies.push(performance.now() - t);
  }
}));
const signedJobs = {
  jobs_per_second: jobTotal / ((performance.now() - jobStarted) / 1000),
  p50_ms: percentile(jobLatencies, 0.5),
  p99_ms: percentile(jobLatencies, 0.99),
};
log(
  `hello via runJob (signed): ${
    signedJobs.jobs_per_second.toFixed(0)
  } jobs/s, p50 ${signedJobs.p50_ms.toFixed(2)} ms, p99 ${
    signedJobs.p99_ms.toFixed(2)
  } ms (2 processes, 8 submitters)`,
);

// 100 MB of stdin through the whole job path, vs `wc -c` reading a pipe.
const stdinBytes = 100 * 1000 * 1000;
const bigStdin = new Uint8Array(stdinBytes).fill(0x61);
const counter = Deno.readFileSync(`${root}examples/wasm/stdin_count.wasm`);
let stdinMs = Infinity;
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const { receipt } = await runJob(
    { module: counter, stdin: bigStdin, memoryMb: 256 },
    { sandbox: pool, key },
  );
  if (!receipt.stdout.startsWith(`${stdinBytes} `)) {
    throw new Error(`stdin job failed: ${receipt.execution.error}`);
  }
  stdinMs = Math.min(stdinMs, performance.now() - t);
}
let wcMs = Infinity;
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const wc = new Deno.Command("wc", {
    args: ["-c"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = wc.stdin.getWriter();
  await writer.write(bigStdin);
  await writer.close();
  const out = await wc.output();
  if (new TextDecoder().decode(out.stdout).trim() !== String(stdinBytes)) {
    throw new Error("wc -c miscounted");
  }
  wcMs = Math.min(wcMs, performance.now() - t);
}
const stdinThroughput = {
  bytes: stdinBytes,
  phase_ms: stdinMs,
  phase_mb_per_s: stdinBytes / 1e6 / (stdinMs / 1000),
  wc_ms: wcMs,
  ratio_to_wc: stdinMs / wcMs,
};
log(
  `100 MB stdin via runJob:   ${stdinMs.toFixed(0)} ms (${
    stdinThroughput.phase_mb_per_s.toFixed(0)
  } MB/s), wc -c on a pipe ${wcMs.toFixed(0)} ms (${
    stdinThroughput.ratio_to_wc.toFixed(1)
  }x), best of 3`,
);
await pool.close();

// Fuel burn rates vs the default budget's rate.
const burn = (name: string, args: string[], fuel: number) => {
  const module = instrumentFuel(
    Deno.readFileSync(`${root}examples/wasm/${name}.wasm`),
  ).bytes;
  const run = () =>
    execute({
      ...request(args),
      module,
      moduleKey: `${name}+fuel`,
      programName: name,
      fuel,
    });
  run();
  const out = run();
  return out.fuelConsumed! / (out.wallTimeMs / 1000);
};
const fuelRates = {
  fuel_dense_per_s: burn("fuel_dense", [], 300_000_000_000),
  tight_loop_per_s: burn("infinite_loop", [], 3_000_000_000),
  cpu_heavy_per_s: burn("cpu_heavy", ["16"], 1e15),
  default_per_s: DEFAULT_LIMITS.fuelPerSecond,
};
log(
  `fuel burn rates:           fuel_dense ${
    fuelRates.fuel_dense_per_s.toExponential(2)
  }/s, tight loop ${fuelRates.tight_loop_per_s.toExponential(2)}/s, cpu_heavy ${
    fuelRates.cpu_heavy_per_s.toExponential(2)
  }/s; default budget ${fuelRates.default_per_s.toExponential(1)}/s (${
    (fuelRates.default_per_s / fuelRates.fuel_dense_per_s).toFixed(1)
  }x the densest)`,
);

// 4. Fuel instrumentation time.
const median = (samples: number[]) => percentile(samples, 0.5);
const timeInstrument = (module: Uint8Array, runs: number) => {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    instrumentFuel(module);
    samples.push(performance.now() - t);
  }
  return samples;
};
const big = inflateModule(
  Deno.readFileSync(`${root}examples/wasm/cpu_heavy.wasm`),
  MIB,
);
const bigSamples = timeInstrument(big, 11);
const helloSamples = timeInstrument(helloPlain, 21);
const instrumentation = {
  hello_bytes: helloPlain.length,
  hello_median_ms: median(helloSamples.slice(1)),
  big_bytes: big.length,
  big_first_ms: bigSamples[0],
  big_median_ms: median(bigSamples.slice(1)),
};
log(
  `fuel instrumentation:      hello (${
    (helloPlain.length / 1024).toFixed(0)
  } KiB) ${instrumentation.hello_median_ms.toFixed(2)} ms; ${
    (big.length / MIB).toFixed(2)
  } MiB module ${instrumentation.big_median_ms.toFixed(0)} ms (first call ${
    instrumentation.big_first_ms.toFixed(0)
  } ms)`,
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
await timeCommand("gcc", [
  "-O2",
  "-o",
  `${work}/cpu_heavy`,
  `${root}examples/src/cpu_heavy.c`,
]);
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
const cpuMetered = instrumentFuel(cpuHeavy).bytes;
const inPhase = (metered: boolean) =>
  best(() => {
    const t = performance.now();
    const out = execute({
      ...request([String(mib)]),
      module: metered ? cpuMetered : cpuHeavy,
      moduleKey: metered ? `${cpuHash}+fuel` : cpuHash,
      fuel: metered ? 1e15 : undefined,
      programName: "cpu_heavy",
    });
    return Promise.resolve([
      performance.now() - t,
      new TextDecoder().decode(out.stdout).trim(),
    ]);
  });
const [phaseMs, phaseOut] = await inPhase(false);
const [meteredMs, meteredOut] = await inPhase(true);
let nodeMs = NaN;
try {
  const [ms, out] = await best(() =>
    timeCommand("node", [
      "--no-warnings",
      nodeWasi,
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
if (phaseOut !== nativeOut || meteredOut !== nativeOut) {
  throw new Error("Phase and native outputs differ");
}
log(
  `cpu_heavy ${mib} MiB (best of 3): native ${nativeMs.toFixed(0)} ms, phase ${
    phaseMs.toFixed(0)
  } ms (${(phaseMs / nativeMs).toFixed(2)}x native), metered ${
    meteredMs.toFixed(0)
  } ms (${(meteredMs / nativeMs).toFixed(2)}x native, ${
    ((meteredMs / phaseMs - 1) * 100).toFixed(1)
  }% over unmetered), node:wasi ${nodeMs.toFixed(0)} ms (${
    (nodeMs / nativeMs).toFixed(2)
  }x native)`,
);

if (values.json) {
  console.log(JSON.stringify({
    warm_p50_ms: percentile(warm, 0.5),
    warm_p99_ms: percentile(warm, 0.99),
    cli_cold_median_ms: percentile(cold, 0.5),
    cold_start: coldStart,
    pool: poolRuns,
    signed_jobs: signedJobs,
    stdin_throughput: stdinThroughput,
    fuel_rates: fuelRates,
    instrumentation,
    cpu_heavy: {
      mib,
      native_ms: nativeMs,
      phase_ms: phaseMs,
      metered_ms: meteredMs,
      metering_overhead: meteredMs / phaseMs - 1,
      node_wasi_ms: nodeMs,
      phase_ratio: phaseMs / nativeMs,
    },
  }));
}
