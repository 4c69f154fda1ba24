import assert from "node:assert/strict";
import { churn, Swarm } from "../bench/swarm.ts";

// The bench (`deno task bench:p2p`) runs the same harness with 300 nodes in
// 6 processes and 200 jobs; this is its smaller form for the suite.
Deno.test({
  name:
    "a 40-node swarm in 4 processes: with 25% of it gone (a process killed without a goodbye, capable nodes among it, and graceful leaves) and new nodes joining, every submit --auto from a fresh client succeeds and no lookup lists a node that had left",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const swarm = await Swarm.grow({
      processes: 4,
      perProcess: 10,
      capableFraction: 0.2,
    });
    try {
      // A join may time out on a loaded machine (each is tried 5 times);
      // the churn below is what this test is about.
      const size = swarm.alive.size;
      assert.ok(size >= 36, `only ${size} of 40 nodes joined`);
      assert.ok(swarm.capable().length >= 6);
      const result = await churn(swarm, {
        jobs: 12,
        concurrency: 3,
        waveMs: 2000,
        minWaves: 6,
        leavePerWave: 1,
        crashEveryWaves: 3,
      });
      const failed = result.results.filter((r) => !r.ok);
      assert.deepEqual(failed.map((r) => r.detail), []);
      // Six waves at least: two processes killed (waves 2 and 5), four
      // graceful leaves.
      assert.ok(result.waves >= 6, `only ${result.waves} waves`);
      assert.ok(
        result.killed >= 10 && result.left + result.killed >= size / 4,
        `only ${result.left} left and ${result.killed} were killed`,
      );
      assert.ok(result.capableGone >= 1, "no capable node left");
      assert.ok(result.lookups >= 3, `only ${result.lookups} lookups ran`);
      assert.deepEqual(result.stale, []);
      // Nodes that joined during the churn are found too.
      let listed = 0;
      for (let i = 0; i < 5 && listed < swarm.capable().length; i++) {
        const after = await swarm.lookup();
        assert.deepEqual(after.stale, []);
        listed = after.listed.length;
      }
      assert.equal(listed, swarm.capable().length);
    } finally {
      await swarm.close();
    }
  },
});
