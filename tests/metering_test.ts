import assert from "node:assert/strict";
import { execute } from "../runner/execute.ts";
import {
  DEFAULT_LIMITS,
  FUEL_EXPORT,
  instrumentFuel,
  MeteredModuleCache,
  METERING_VERSION,
  MIB,
  ModuleError,
  runJob,
  SandboxPool,
} from "../runner/mod.ts";
import { generateKey, sha256Ref } from "../schemas/mod.ts";
import { Reader, readSections, SECTION } from "../runner/wasm_binary.ts";
import { cli, example, examplePath, tempDir } from "./helpers.ts";

const EXAMPLES = [
  "hello",
  "cpu_heavy",
  "cpu_heavy_simd",
  "echo_env",
  "fs_probe",
  "huge_output",
  "memory_bomb",
  "sock_probe",
  "fuel_count",
  "bulk_memory",
  "write_bytes",
];

function runInProcess(module: Uint8Array, key: string, fuel?: number) {
  return execute({
    module,
    moduleKey: key,
    fuel,
    programName: "guest",
    args: ["1"],
    env: { GREETING: "hi" },
    stdin: new TextEncoder().encode("stdin bytes"),
    memoryBytes: 32 * MIB,
    outputLimit: MIB,
    preopens: [],
  });
}

Deno.test("metering keeps every example's behaviour and exports the fuel counter", () => {
  for (const name of EXAMPLES) {
    const original = example(name);
    const metered = instrumentFuel(original);
    const compiled = new WebAssembly.Module(
      metered.bytes as Uint8Array<ArrayBuffer>,
    );
    assert.ok(
      WebAssembly.Module.exports(compiled).some((e) =>
        e.name === FUEL_EXPORT && e.kind === "global"
      ),
      name,
    );
    assert.ok(metered.chargePoints >= metered.functions, name);
    const plain = runInProcess(original, `${name}/plain`);
    const counted = runInProcess(metered.bytes, `${name}/metered`, 1e12);
    // Metered modules also record failed memory.grow calls.
    const status = name === "memory_bomb" ? "memory_limit" : plain.status;
    assert.equal(counted.status, status, name);
    assert.equal(counted.exitCode, plain.exitCode, name);
    assert.deepEqual(counted.stdout, plain.stdout, name);
    assert.equal(plain.fuelConsumed, null, name);
    assert.ok(counted.fuelConsumed! > 0, name);
  }
});

/** Modules whose fuel is counted by hand in their source comments. */
const HAND_COUNTED = [
  { name: "fuel_count", rule: "segments and loop passes", fuel: 8004 },
  { name: "bulk_memory", rule: "bulk memory pays per byte", fuel: 17419 },
  {
    name: "write_bytes",
    rule: "host calls pay for the bytes they move",
    fuel: 107,
    stdoutBytes: 6400,
  },
  {
    name: "costly_steps",
    rule: "declared locals and bulk table instructions pay for their work",
    fuel: 6509,
  },
];

for (const { name, rule, fuel, stdoutBytes } of HAND_COUNTED) {
  Deno.test(`fuel follows the documented rules: ${rule} (${name}.wat: ${fuel})`, () => {
    const out = runInProcess(instrumentFuel(example(name)).bytes, name, 1e6);
    assert.equal(out.status, "exited");
    assert.equal(out.exitCode, 0);
    assert.equal(out.fuelConsumed, fuel);
    if (stdoutBytes !== undefined) {
      assert.equal(out.stdout.length, stdoutBytes);
    }
  });
}

Deno.test("a budget below the need stops the guest with fuel exhausted; the exact need is enough", () => {
  const module = instrumentFuel(example("fuel_count")).bytes;
  const enough = runInProcess(module, "fuel_count", 8004);
  assert.equal(enough.status, "exited");
  assert.equal(enough.fuelConsumed, 8004);
  const short = runInProcess(module, "fuel_count", 4000);
  assert.equal(short.status, "fuel_exhausted");
  assert.equal(short.exitCode, null);
  assert.equal(
    short.error,
    "fuel exhausted: the guest used its budget of 4000 fuel",
  );
  assert.ok(short.fuelConsumed! > 4000 && short.fuelConsumed! <= 4008);
});

Deno.test("fuel consumed is identical across runs, processes and the in-process path", async () => {
  const metered = instrumentFuel(example("cpu_heavy")).bytes;
  const inProcess = runInProcess(metered, "cpu", 1e12).fuelConsumed;
  const fromCli = [];
  for (let i = 0; i < 2; i++) {
    const out = await cli([
      "run",
      "--ephemeral",
      "--private",
      "--json",
      examplePath("cpu_heavy"),
      "--env",
      "GREETING=hi",
      "--",
      "1",
    ], {
      stdin: "stdin bytes",
      flags: ["--allow-read", "--allow-run", "--allow-env"],
    });
    assert.equal(out.code, 0, out.stderr);
    const receipt = JSON.parse(out.stdout);
    assert.equal(receipt.limits.fuel, 30 * DEFAULT_LIMITS.fuelPerSecond);
    fromCli.push(receipt.execution.fuel_consumed);
  }
  assert.ok(inProcess! > 1e6);
  assert.deepEqual(fromCli, [inProcess, inProcess]);
});

Deno.test("a runaway guest ends with fuel exhausted and its sandbox process serves the next job", async () => {
  const pool = new SandboxPool({ size: 1 });
  const key = await generateKey();
  try {
    await pool.warm();
    const before = pool.pids;
    const { receipt } = await runJob(
      { module: example("infinite_loop"), fuel: 50_000_000 },
      { sandbox: pool, key },
    );
    assert.equal(receipt.execution.status, "fuel_exhausted");
    assert.equal(receipt.limits.fuel, 50_000_000);
    assert.ok(receipt.execution.fuel_consumed! >= 50_000_000);
    assert.match(receipt.execution.error!, /^fuel exhausted/);
    const next = await runJob(
      { module: example("hello"), args: ["again"] },
      { sandbox: pool, key },
    );
    assert.equal(next.receipt.stdout, "niaga\n");
    assert.deepEqual(pool.pids, before, "the same process served both jobs");
  } finally {
    await pool.close();
  }
});

Deno.test("phase run --fuel: exit 124 and a one-line reason when the budget is spent", async () => {
  const out = await cli([
    "run",
    "--ephemeral",
    "--private",
    "--fuel",
    "1000",
    examplePath("infinite_loop"),
  ], { flags: ["--allow-read", "--allow-run", "--allow-env"] });
  assert.equal(out.code, 124);
  assert.equal(
    out.stderr.trim(),
    "phase: fuel exhausted: the guest used its budget of 1000 fuel",
  );
  const bad = await cli(["run", "--ephemeral", "--fuel=-3", "x.wasm"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr.trim(),
    "phase: --fuel wants a whole number from 1 to 9007199254740991 fuel, got -3",
  );
});

Deno.test("the job manifest's fuel is the budget when the caller gives none", async () => {
  const pool = new SandboxPool({ size: 1 });
  try {
    const module = example("fuel_count");
    const { receipt } = await runJob({
      module,
      manifest: { version: 1, module_hash: await sha256Ref(module), fuel: 100 },
    }, { sandbox: pool, key: await generateKey() });
    assert.equal(receipt.limits.fuel, 100);
    assert.equal(receipt.execution.status, "fuel_exhausted");
  } finally {
    await pool.close();
  }
});

Deno.test("metered modules are cached by hash in memory and on disk, and a damaged file is rebuilt", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const module = example("hello");
    const hash = await sha256Ref(module);
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const first = new MeteredModuleCache({ dir });
    const built = await first.metered(module, hash, secret);
    assert.equal(built.key, `${hash}+fuel${METERING_VERSION}`);
    await first.metered(module, hash, secret);
    assert.deepEqual(first.stats, {
      memoryHits: 1,
      diskHits: 0,
      instrumented: 1,
    });
    const file = `${dir}/${hash.slice(7)}.fuel${METERING_VERSION}.wasm`;
    // The file is the metered module followed by its MAC section.
    const stored = await Deno.readFile(file);
    assert.deepEqual(stored.subarray(0, built.bytes.length), built.bytes);
    assert.equal(stored.length - built.bytes.length, 2 + 16 + 32);

    const second = new MeteredModuleCache({ dir });
    assert.deepEqual(
      (await second.metered(module, hash, secret)).bytes,
      built.bytes,
    );
    assert.equal(second.stats.diskHits, 1);
    // Another node's secret does not trust this file: it rebuilds.
    const stranger = new MeteredModuleCache({ dir });
    await stranger.metered(module, hash);
    assert.deepEqual(stranger.stats.diskHits, 0);
    await Deno.writeFile(file, stored);

    await Deno.writeFile(file, built.bytes.subarray(0, 100));
    // Bounded on disk: the least recently used file goes.
    const [pruned, cleanupPruned] = await tempDir();
    try {
      const two = new MeteredModuleCache({ dir: pruned, maxFiles: 2 });
      const names = ["hello", "echo_env", "fs_probe"];
      for (const name of names) {
        const bytes = example(name);
        await two.metered(bytes, await sha256Ref(bytes));
        await new Promise((r) => setTimeout(r, 20));
      }
      const kept = [...Deno.readDirSync(pruned)].map((e) => e.name).sort();
      const expected = await Promise.all(
        names.slice(1).map(async (name) =>
          `${
            (await sha256Ref(example(name))).slice(7)
          }.fuel${METERING_VERSION}.wasm`
        ),
      );
      assert.deepEqual(kept, expected.sort());
      // And by bytes: a budget below two files keeps only the newest.
      const tight = new MeteredModuleCache({
        dir: `${pruned}/tight`,
        maxDiskBytes: 1.5 * example("fs_probe").length,
      });
      await Deno.mkdir(`${pruned}/tight`);
      for (const name of ["fs_probe", "echo_env"]) {
        const bytes = example(name);
        await tight.metered(bytes, await sha256Ref(bytes));
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(
        [...Deno.readDirSync(`${pruned}/tight`)].map((e) => e.name),
        [
          `${
            (await sha256Ref(example("echo_env"))).slice(7)
          }.fuel${METERING_VERSION}.wasm`,
        ],
      );
    } finally {
      await cleanupPruned();
    }

    // Bounded in memory: a cap below two modules keeps only the newest.
    const small = new MeteredModuleCache({ maxBytes: built.bytes.length + 1 });
    await small.metered(module, hash);
    const other = example("echo_env");
    await small.metered(other, await sha256Ref(other));
    await small.metered(module, hash);
    assert.deepEqual(small.stats, {
      memoryHits: 0,
      diskHits: 0,
      instrumented: 3,
    });

    const third = new MeteredModuleCache({ dir });
    assert.deepEqual(
      (await third.metered(module, hash, secret)).bytes,
      built.bytes,
    );
    assert.equal(third.stats.instrumented, 1);
    assert.deepEqual(await Deno.readFile(file), stored);
  } finally {
    await cleanup();
  }
});

Deno.test("modules that cannot be metered are refused with one line", () => {
  assert.throws(
    () => instrumentFuel(new TextEncoder().encode("not wasm")),
    (error: Error) =>
      error instanceof ModuleError && /bad magic number/.test(error.message),
  );
  // A guest that imports the host function the metering adds, to call it
  // itself.
  const name = (
    text: string,
  ) => [text.length, ...new TextEncoder().encode(text)];
  const imports = [1, ...name("__phase_host"), ...name("refuel"), 0, 0];
  const exports = [1, ...name("x"), 0, 0];
  const sneaky = Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...[1, 4, 1, 0x60, 0, 0],
    ...[2, imports.length, ...imports],
    ...[7, exports.length, ...exports],
  ]);
  new WebAssembly.Module(sneaky); // valid WebAssembly
  assert.throws(
    () => instrumentFuel(sneaky),
    /^ModuleError: the module imports from __phase_host, a name Phase's metering reserves$/,
  );
  // A wait on shared memory: nothing else could wake it.
  assert.throws(
    () => instrumentFuel(example("atomic_wait")),
    /^ModuleError: the module uses threads \(memory.atomic.wait\), which Phase does not support/,
  );
  // A damaged function body.
  const broken = instrumentFuel(example("fuel_count")).bytes.slice();
  const body = broken.lastIndexOf(0x0b);
  broken[body - 1] = 0xff;
  assert.throws(
    () => instrumentFuel(broken),
    (error: Error) =>
      error instanceof ModuleError && !error.message.includes("\n"),
  );
});

Deno.test("every fuel check is hinted as not taken, and every hint points at one", () => {
  for (const name of ["hello", "cpu_heavy", "bulk_memory", "costly_steps"]) {
    const metered = instrumentFuel(example(name)).bytes;
    const sections = readSections(metered);
    const custom = sections.find((s) =>
      s.id === SECTION.custom &&
      new Reader(s.body).string() === "metadata.code.branch_hint"
    );
    assert.ok(custom, `${name}: no branch hint section`);
    const code = sections.find((s) => s.id === SECTION.code)!;
    const codeAt = sections.indexOf(code);
    assert.ok(sections.indexOf(custom) < codeAt, "hints after the code");
    // Bodies by function index (imports first, the refuel import last).
    const bodies: Uint8Array[] = [];
    const reader = new Reader(code.body);
    for (let n = reader.u32(); n > 0; n--) {
      const size = reader.u32();
      bodies.push(code.body.subarray(reader.offset, reader.offset + size));
      reader.skip(size);
    }
    const hints = new Reader(custom.body);
    hints.string();
    let checks = 0;
    const firstDefined = importedFunctions(metered);
    for (let f = hints.u32(); f > 0; f--) {
      const body = bodies[hints.u32() - firstDefined];
      for (let n = hints.u32(); n > 0; n--) {
        const at = hints.u32();
        assert.equal(hints.u32(), 1);
        assert.equal(hints.byte(), 0, "hinted as taken");
        // if (empty) call refuel
        assert.deepEqual([body[at], body[at + 1], body[at + 2]], [
          0x04,
          0x40,
          0x10,
        ], `${name}: a hint that is not at a fuel check`);
        checks++;
      }
    }
    const metering = instrumentFuel(example(name));
    assert.ok(checks >= metering.functions, `${name}: ${checks} hints`);
  }
});

/** Functions a module imports (the index of its first own function). */
function importedFunctions(module: Uint8Array): number {
  const imports = readSections(module).find((s) => s.id === SECTION.import);
  if (!imports) return 0;
  const r = new Reader(imports.body);
  let functions = 0;
  for (let n = r.u32(); n > 0; n--) {
    r.string();
    r.string();
    const kind = r.byte();
    if (kind !== 0) throw new Error("the examples import only functions");
    r.u32();
    functions++;
  }
  return functions;
}
