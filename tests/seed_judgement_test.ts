/**
 * The judgement of scratch seeds (runner/scratch_seed.ts) against a model
 * that says the same thing the plain way (every prefix of every path), on
 * random small seeds; and a stranger's deep seed is judged in time
 * proportional to its size, not to its depth squared.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  SCRATCH_ENTRY_BYTES,
  seedCost,
  type SeedEntry,
  seedPathProblem,
  seedProblem,
  stringBytes,
} from "../runner/scratch_seed.ts";

/** Usable or not, and the cost, computed the plain way. */
function model(entries: SeedEntry[]): { usable: boolean; cost: number } {
  const kinds = new Map<string, string>();
  let usable = entries.length <= 4096;
  for (const e of entries) {
    if (seedPathProblem(e.path) || kinds.has(e.path)) usable = false;
    if (e.kind === "symlink" && !e.target) usable = false;
    kinds.set(e.path, e.kind);
  }
  const implied = new Set<string>();
  let cost = 0;
  for (const e of entries) {
    const parts = e.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const kind = kinds.get(prefix);
      if (kind !== undefined && kind !== "dir") usable = false;
      if (kind === undefined) implied.add(prefix);
    }
    cost += SCRATCH_ENTRY_BYTES + stringBytes(parts.at(-1)!) +
      (e.data?.length ?? 0) + stringBytes(e.target ?? "");
  }
  for (const dir of implied) {
    cost += SCRATCH_ENTRY_BYTES + stringBytes(dir.split("/").at(-1)!);
  }
  return { usable, cost };
}

const entry: fc.Arbitrary<SeedEntry> = fc.record({
  path: fc.array(fc.constantFrom("a", "b", "c", "..", ""), {
    minLength: 1,
    maxLength: 4,
  }).map((parts) => parts.join("/")),
  kind: fc.constantFrom("file", "dir", "symlink") as fc.Arbitrary<
    SeedEntry["kind"]
  >,
  data: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined }),
  target: fc.option(fc.constantFrom("a", "../x", "b/c"), { nil: undefined }),
});

Deno.test("seed judgement agrees with the plain model: usable or not, and what it costs", () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 12 }), (entries) => {
      const expected = model(entries);
      assert.equal(seedProblem(entries) === null, expected.usable);
      if (expected.usable) assert.equal(seedCost(entries), expected.cost);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("a deep seed is judged in time linear in its size", () => {
  // 1024 files under chains of 500 directories the seed does not list:
  // judged prefix by prefix this took minutes on the node's event loop.
  const depth = "d/".repeat(500);
  const entries: SeedEntry[] = Array.from({ length: 1024 }, (_, i) => ({
    path: `a${i}/${depth}`.slice(0, 1000) + "x",
    kind: "file",
  }));
  assert.equal(seedProblem(entries), null);
  // 1024 x ~500 implied directories, each priced once.
  assert.ok(seedCost(entries) > 1024 * 400 * SCRATCH_ENTRY_BYTES);
});
