// Differential fuzzing of the fuel instrumenter: binaryen's
// `wasm-opt --translate-to-fuzz` turns seeded random bytes into a valid
// module; its metered form must validate and, run with a large budget, log
// the same values, return the same results and trap the same way as the
// original. tests/fuzz_test.ts runs a few seeds; `deno task fuzz [COUNT]
// [FIRST_SEED]` runs many.
import {
  FUEL_EXPORT,
  instrumentFuel,
  REFUEL_IMPORT,
  START_EXPORT,
} from "../runner/mod.ts";

/** Proposals the instrumenter meters, enabled in the generated modules. */
const FEATURES = [
  "--enable-sign-ext",
  "--enable-mutable-globals",
  "--enable-nontrapping-float-to-int",
  "--enable-bulk-memory",
  "--enable-simd",
];

/** Makes sure binaryen's wasm-opt is here, installing it when root. */
export async function ensureWasmOpt(): Promise<void> {
  // A missing program makes output() throw at once, not reject.
  const has = async () => {
    try {
      return (await new Deno.Command("wasm-opt", {
        args: ["--version"],
        stdout: "null",
      }).output()).success;
    } catch {
      return false;
    }
  };
  if (await has()) return;
  if (Deno.uid() === 0) {
    for (
      const args of [["update", "-qq"], ["install", "-y", "-qq", "binaryen"]]
    ) {
      await new Deno.Command("apt-get", { args, stdout: "null" }).output();
    }
  }
  if (!await has()) {
    throw new Error("wasm-opt is missing: apt-get install binaryen");
  }
}

/** Seeded random bytes (mulberry32), so a failing seed can be replayed. */
function randomBytes(seed: number, length: number): Uint8Array {
  let state = seed >>> 0;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** The module binaryen makes from the seed's random bytes. */
export async function fuzzModule(
  seed: number,
  dir: string,
): Promise<Uint8Array> {
  const input = `${dir}/${seed}.dat`;
  const output = `${dir}/${seed}.wasm`;
  await Deno.writeFile(input, randomBytes(seed, 8192));
  const out = await new Deno.Command("wasm-opt", {
    args: [input, "-ttf", ...FEATURES, "-o", output],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`wasm-opt failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return await Deno.readFile(output);
}

/** Everything observable of one run: log calls, results and traps, in order. */
function observe(module: Uint8Array, metered: boolean): string[] {
  const events: string[] = [];
  const log = (kind: string) => (value: unknown) =>
    events.push(`${kind} ${String(value)}`);
  const imports = {
    "fuzzing-support": {
      "log-i32": log("i32"),
      "log-i64": log("i64"),
      "log-f32": log("f32"),
      "log-f64": log("f64"),
    },
    // The budget below is never spent, so the metering never calls it.
    [REFUEL_IMPORT.module]: {
      [REFUEL_IMPORT.name]: () => events.push("refuel"),
    },
  };
  const record = (what: string, call: () => unknown) => {
    try {
      events.push(`${what} -> ${String(call())}`);
    } catch (error) {
      events.push(
        `${what} !! ${(error as Error).name}: ${(error as Error).message}`,
      );
    }
  };
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(
      new WebAssembly.Module(module as Uint8Array<ArrayBuffer>),
      imports as WebAssembly.Imports,
    );
  } catch (error) {
    // A start function that traps: the metered form runs it below instead.
    return [...events, `start !! ${(error as Error).message}`];
  }
  const exports = instance.exports;
  if (metered) {
    (exports[FUEL_EXPORT] as WebAssembly.Global).value = 2n ** 60n;
    const start = exports[START_EXPORT] as (() => void) | undefined;
    if (start) {
      try {
        start();
      } catch (error) {
        return [...events, `start !! ${(error as Error).message}`];
      }
    }
  }
  const reset = exports.hangLimitInitializer as (() => void) | undefined;
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value !== "function" || name.startsWith("__phase_")) continue;
    if (name === "hangLimitInitializer") continue;
    reset?.();
    const args = Array.from(
      { length: value.length },
      () => 0,
    );
    record(name, () => value(...args));
  }
  return events;
}

/** Runs one seed; returns null when both agree, else what differed. */
export async function checkSeed(
  seed: number,
  dir: string,
): Promise<string | null> {
  const original = await fuzzModule(seed, dir);
  const metered = instrumentFuel(original).bytes;
  if (!WebAssembly.validate(metered as Uint8Array<ArrayBuffer>)) {
    return `seed ${seed}: the metered module does not validate`;
  }
  const want = observe(original, false);
  const got = observe(metered, true);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    if (want[i] !== got[i]) {
      return `seed ${seed}: event ${i} differs: original "${
        want[i]
      }", metered "${got[i]}"`;
    }
  }
  return null;
}

if (import.meta.main) {
  const count = Number(Deno.args[0] ?? 500);
  const first = Number(Deno.args[1] ?? 1);
  await ensureWasmOpt();
  const dir = await Deno.makeTempDir({ prefix: "phase-fuzz-" });
  let failures = 0;
  try {
    for (let seed = first; seed < first + count; seed++) {
      const problem = await checkSeed(seed, dir);
      if (problem) {
        failures++;
        console.log(problem);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  console.log(`${count} seeds from ${first}: ${failures} failures`);
  Deno.exit(failures === 0 ? 0 : 1);
}
