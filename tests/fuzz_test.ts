// The fuel instrumenter against binaryen's random valid modules (a fixed
// seed range, so a failure replays); `deno task fuzz [COUNT] [FIRST_SEED]`
// runs longer.
import assert from "node:assert/strict";
import { instrumentFuel } from "../runner/mod.ts";
import { checkSeed, ensureWasmOpt, fuzzModule } from "./fuzz_metering.ts";
import { tempDir } from "./helpers.ts";

Deno.test("metered random modules validate and behave as their originals (seeds 1-16)", async () => {
  await ensureWasmOpt();
  const [dir, cleanup] = await tempDir();
  try {
    const problems: string[] = [];
    let chargePoints = 0;
    for (let seed = 1; seed <= 16; seed++) {
      const problem = await checkSeed(seed, dir);
      if (problem) problems.push(problem);
      chargePoints += instrumentFuel(await fuzzModule(seed, dir)).chargePoints;
    }
    assert.deepEqual(problems, []);
    assert.ok(chargePoints > 1000, "the generated modules are nearly empty");
  } finally {
    await cleanup();
  }
});
