/**
 * The WASI suite (examples/src/wasi_suite.c) run by Phase and by Node's
 * node:wasi on the same directories, case by case, as each runner is used:
 * Phase through its sandbox pool, node:wasi in a Node process with /data,
 * /rw and /tmp preopened (node:wasi has no read-only preopens and no
 * in-memory scratch: /tmp is a host folder holding the seed). Phase must
 * pass every case; the counts must be the ones the README states.
 */
import assert from "node:assert/strict";
import { runJob, SandboxPool } from "../runner/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import {
  aptInstall,
  example,
  examplePath,
  hasCommand,
  ROOT,
  tempDir,
  text,
} from "./helpers.ts";
import { fixture, SUITE_SEED, suitePreopens } from "./wasi_fixture.ts";

const NODE_SCRIPT = `
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
const [wasm, data, rw, tmp, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: "preview1",
  args: ["wasi_suite", ...args],
  env: { A: "1", UTF: "\\u00fc" },
  preopens: { "/data": data, "/rw": rw, "/tmp": tmp },
  returnOnExit: true,
});
const module = new WebAssembly.Module(readFileSync(wasm));
const instance = new WebAssembly.Instance(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
`;

/** The suite's case names, as it lists them. */
async function suiteCases(): Promise<string[]> {
  const [dirs, cleanup] = await fixture();
  const pool = new SandboxPool({ size: 1 });
  try {
    const { outcome } = await runJob({
      module: example("wasi_suite"),
      preopens: suitePreopens(dirs),
      scratch: "/tmp",
    }, { sandbox: pool, key: await generateKey() });
    return text(outcome.stdout).trim().split("\n");
  } finally {
    await pool.close();
    await cleanup();
  }
}

const passed = (name: string, code: number | null, stdout: string) =>
  code === (name === "proc_exit" ? 7 : 0) &&
  new RegExp(`^ok ${name}$`, "m").test(stdout);

Deno.test("Phase passes every case of the WASI suite, node:wasi the README's count", async () => {
  if (!await hasCommand("node")) {
    await aptInstall(["nodejs"], "the node:wasi comparison");
  }
  assert.ok(await hasCommand("node"), "node is needed for the comparison");
  const cases = await suiteCases();
  const pool = new SandboxPool({ size: 1 });
  const key = await generateKey();
  const phaseFailed: string[] = [];
  const nodeFailed: string[] = [];
  const [scriptDir, cleanupScript] = await tempDir();
  const script = `${scriptDir}/node_wasi.mjs`;
  await Deno.writeTextFile(script, NODE_SCRIPT);
  try {
    for (const name of cases) {
      const args = [name, "héllo", "✓"];
      const stdin = new TextEncoder().encode("stdin-data");
      // Phase: a fresh set of directories per case.
      const [dirs, cleanup] = await fixture();
      try {
        const { outcome } = await runJob({
          module: example("wasi_suite"),
          programName: "wasi_suite",
          args,
          env: { A: "1", UTF: "ü" },
          stdin,
          memoryMb: 32,
          preopens: suitePreopens(dirs),
          scratch: "/tmp",
          scratchSeed: SUITE_SEED,
        }, { sandbox: pool, key });
        if (!passed(name, outcome.exitCode, text(outcome.stdout))) {
          phaseFailed.push(`${name}: ${text(outcome.stdout).trim()}`);
        }
      } finally {
        await cleanup();
      }
      // node:wasi: the same directories, the seed written into /tmp.
      const [nodeDirs, nodeCleanup] = await fixture();
      try {
        const tmp = `${nodeDirs.root}/tmp`;
        await Deno.mkdir(`${tmp}/seed`, { recursive: true });
        await Deno.writeTextFile(`${tmp}/seed/a.txt`, "seeded\n");
        await Deno.symlink("a.txt", `${tmp}/seed/link`);
        const child = new Deno.Command("node", {
          args: [
            "--no-warnings",
            script,
            examplePath("wasi_suite"),
            nodeDirs.data,
            nodeDirs.rw,
            tmp,
            ...args,
          ],
          cwd: ROOT,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const writer = child.stdin.getWriter();
        await writer.write(stdin);
        await writer.close();
        // A case node:wasi hangs on counts as failed after 10 s.
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        const out = await child.output();
        clearTimeout(timer);
        if (!passed(name, out.code, text(out.stdout))) {
          nodeFailed.push(
            `${name}: ${text(out.stdout).trim().split("\n").at(-1)}`,
          );
        }
      } finally {
        await nodeCleanup();
      }
    }
  } finally {
    await pool.close();
    await cleanupScript();
  }
  const total = cases.length;
  console.error(
    `WASI suite: phase ${total - phaseFailed.length}/${total}, node:wasi ${
      total - nodeFailed.length
    }/${total}\nnode:wasi failed:\n  ${nodeFailed.join("\n  ")}`,
  );
  assert.deepEqual(phaseFailed, []);
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const stated = /Phase passes (\d+) of (\d+) .*node:wasi passes (\d+)/s.exec(
    readme,
  );
  assert.ok(stated, "the README states the suite's counts");
  assert.deepEqual(
    stated.slice(1).map(Number),
    [total, total, total - nodeFailed.length],
    "the README's counts are this run's",
  );
});
