// A hostile guest against the single-thread sandbox (metering 4): each test
// plays one attack with a module built here, run the way users run jobs
// (`./phase run` with a fresh HOME, or `./phase serve` and POST /jobs), and
// checks a promise of README.md or docs/threat-model.md.
import assert from "node:assert/strict";
import { SANDBOX_OVERHEAD_MIB } from "../runner/mod.ts";
import {
  assembleModule,
  encodeSection,
  SECTION,
  sleb,
  uleb,
} from "../runner/wasm_binary.ts";
import {
  alive,
  children,
  example,
  freshHomeEnv,
  ROOT,
  runLauncher,
  serveTask,
  stopAnnounced,
  tempDir,
  text,
  until,
} from "./helpers.ts";

const I32 = 0x7f;
const I64 = 0x7e;

/** A name as the binary format writes it. */
function name(value: string): number[] {
  const bytes = [...new TextEncoder().encode(value)];
  return [...uleb(bytes.length), ...bytes];
}

/** One section from raw bytes. */
function section(id: number, body: number[] | Uint8Array): Uint8Array[] {
  return encodeSection(id, [Uint8Array.from(body)]);
}

/** A function body: its local declarations, then its code (without `end`). */
interface Body {
  locals?: [number, number][];
  code: number[] | Uint8Array;
}

/**
 * A WASI command: type 0 is (i32) -> (), type 1 is () -> (), type 2 is
 * `extraType` when given; imports `proc_exit` (function 0) and `imports`
 * (functions 1…); defines `bodies` (all of type 1, the last is `_start`).
 */
function command(options: {
  bodies: Body[];
  imports?: [string, string, number][];
  types?: number[][];
  pages?: number;
}): Uint8Array {
  const types = [
    [0x60, 1, I32, 0],
    [0x60, 0, 0],
    ...(options.types ?? []),
  ];
  const imports = [
    ["wasi_snapshot_preview1", "proc_exit", 0] as [string, string, number],
    ...(options.imports ?? []),
  ];
  const bodies = options.bodies.map(({ locals = [], code }) => {
    const head = [
      ...uleb(locals.length),
      ...locals.flatMap(([count, type]) => [...uleb(count), type]),
    ];
    const all = new Uint8Array(head.length + code.length + 1);
    all.set(head);
    all.set(code, head.length);
    all[all.length - 1] = 0x0b;
    return [Uint8Array.from(uleb(all.length)), all];
  });
  const start = imports.length + bodies.length - 1;
  return assembleModule([
    ...section(SECTION.type, [...uleb(types.length), ...types.flat()]),
    ...section(SECTION.import, [
      ...uleb(imports.length),
      ...imports.flatMap(([module, field, type]) => [
        ...name(module),
        ...name(field),
        0,
        ...uleb(type),
      ]),
    ]),
    ...section(SECTION.function, [
      ...uleb(bodies.length),
      ...bodies.map(() => 1),
    ]),
    ...section(SECTION.memory, [1, 0, ...uleb(options.pages ?? 1)]),
    ...section(SECTION.export, [
      2,
      ...name("memory"),
      2,
      0,
      ...name("_start"),
      0,
      ...uleb(start),
    ]),
    ...encodeSection(SECTION.code, [
      Uint8Array.from(uleb(bodies.length)),
      ...bodies.flat(),
    ]),
  ]);
}

/**
 * Not valid WebAssembly: `_start` writes global 0, which the module does
 * not have. Once metered, global 0 is the fuel counter.
 */
function fuelWriter(value: bigint, spin: boolean): Uint8Array {
  const set = [0x42, ...sleb(value), 0x24, 0x00]; // i64.const; global.set 0
  return command({
    bodies: [{
      code: spin
        ? [0x03, 0x40, ...set, 0x0c, 0x00, 0x0b] // loop … br 0 end
        : [...set, 0x41, 0x00, 0x10, 0x00], // proc_exit(0)
    }],
  });
}

async function withModule<T>(
  bytes: Uint8Array,
  use: (path: string, home: string) => Promise<T>,
): Promise<T> {
  const [dir, cleanup] = await tempDir();
  try {
    const path = `${dir}/guest.wasm`;
    await Deno.writeFile(path, bytes);
    await Deno.mkdir(`${dir}/home`);
    return await use(path, `${dir}/home`);
  } finally {
    await cleanup();
  }
}

/**
 * `./phase run MODULE ARGS…` as a user runs it; once its sandbox has run
 * the guest for `runMs` (and, when given, used `cpuTicksFirst` clock ticks
 * of CPU), the CLI is killed with SIGKILL. Returns how long
 * the sandbox outlived it (ms), at most `waitMs`; survivors are killed.
 */
async function outlives(
  bytes: Uint8Array,
  args: string[],
  runMs: number,
  waitMs = 2000,
  cpuTicksFirst = 0,
): Promise<number> {
  return await withModule(bytes, async (path, home) => {
    const child = new Deno.Command(`${ROOT}/phase`, {
      args: ["run", path, "--timeout", "3600", ...args],
      env: await freshHomeEnv(home),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let ended = false;
    const status = child.status.finally(() => ended = true);
    const sandboxes = new Set<number>();
    const started = await until(() => {
      for (const pid of children(child.pid)) sandboxes.add(pid);
      return sandboxes.size > 0 || ended;
    }, 20_000);
    assert.ok(started, "the CLI started no sandbox");
    await new Promise((r) => setTimeout(r, runMs));
    if (cpuTicksFirst > 0) {
      await until(
        () => [...sandboxes].some((pid) => cpuTicks(pid) >= cpuTicksFirst),
        60_000,
      );
    }
    for (const pid of children(child.pid)) sandboxes.add(pid);
    try {
      child.kill("SIGKILL");
    } catch {
      // it already ended
    }
    await status;
    const killed = performance.now();
    await until(() => ![...sandboxes].some(alive), waitMs);
    const lived = performance.now() - killed;
    for (const pid of [...sandboxes].filter(alive)) Deno.kill(pid, "SIGKILL");
    return lived;
  });
}

Deno.test("guest attack: a module that does not validate is refused, not metered into one that writes its own fuel counter", async () => {
  // Spins after setting the counter: --fuel 1000 should stop it at once.
  await withModule(fuelWriter(0x7fffffffffffn, true), async (path, home) => {
    const out = await runLauncher(home, [
      "run",
      path,
      "--fuel",
      "1000",
      "--timeout",
      "2",
    ]);
    assert.equal(
      out.code,
      1,
      `exit ${out.code}: ${out.stderr.trim()} (a fuel budget of 1000 did not stop it)`,
    );
    assert.match(out.stderr, /^phase: not a valid WebAssembly module/);
  });
  // Sets the counter to 0 and exits: its receipt would claim the fuel of a
  // whole slice (100000) for 3 instructions.
  await withModule(fuelWriter(0n, false), async (path, home) => {
    const out = await runLauncher(home, ["run", path, "--json"]);
    assert.equal(
      out.code,
      1,
      `exit ${out.code}; fuel_consumed ${
        out.code === 0
          ? JSON.parse(out.stdout).execution.fuel_consumed
          : out.stderr.trim()
      }`,
    );
  });
});

Deno.test("guest attack: a guest that wrote its fuel counter does not outlive its CLI killed with SIGKILL", async () => {
  const lived = await outlives(fuelWriter(0x7fffffffffffn, true), [], 1500);
  assert.ok(
    lived < 2000,
    `the sandbox still ran ${lived.toFixed(0)} ms after the CLI was killed`,
  );
});

/**
 * `_start` calls a function declaring 50,000 i32 locals whose body is one
 * block of `branches` × (local.get 0; br_if 0): V8 compiles it when it is
 * first called, in the guest's thread, in time that grows with locals ×
 * branches (about 100 s for a million here), with no fuel check inside.
 */
function slowToCompile(branches: number): Uint8Array {
  const code = new Uint8Array(2 + branches * 4 + 1);
  code.set([0x02, 0x40]);
  for (let i = 0; i < branches; i++) {
    code.set([0x20, 0x00, 0x0d, 0x00], 2 + i * 4);
  }
  code[code.length - 1] = 0x0b;
  return command({
    bodies: [
      { locals: [[50_000, I32]], code },
      { code: [0x10, 0x01, 0x41, 0x00, 0x10, 0x00] }, // call 1; proc_exit(0)
    ],
  });
}

Deno.test("guest attack: a sandbox compiling a slow function does not outlive its CLI killed with SIGKILL", async () => {
  const lived = await outlives(slowToCompile(1_000_000), [], 1500);
  assert.ok(
    lived < 2000,
    `the sandbox still ran ${lived.toFixed(0)} ms after the CLI was killed`,
  );
});

/**
 * Fills `bytes` of memory with "./" and calls path_open on that path once
 * (relative to the scratch preopen, fd 3).
 */
function longPathOpen(bytes: number): Uint8Array {
  const pages = Math.ceil((bytes + 16) / 65536) + 1;
  return command({
    pages,
    types: [[0x60, 9, I32, I32, I32, I32, I32, I64, I64, I32, I32, 1, I32]],
    imports: [["wasi_snapshot_preview1", "path_open", 2]],
    bodies: [{
      locals: [[1, I32]],
      code: [
        // loop: i32.store16 [i] "./"; i += 2; br_if i < bytes
        0x03,
        0x40,
        0x20,
        0x00,
        0x41,
        ...sleb(0x2f2e),
        0x3b,
        0x01,
        0x00,
        0x20,
        0x00,
        0x41,
        0x02,
        0x6a,
        0x22,
        0x00,
        0x41,
        ...sleb(bytes),
        0x49,
        0x0d,
        0x00,
        0x0b,
        // proc_exit(path_open(3, 0, 0, bytes - 1, 0, -1, -1, 0, bytes))
        0x41,
        0x03,
        0x41,
        0x00,
        0x41,
        0x00,
        0x41,
        ...sleb(bytes - 1),
        0x41,
        0x00,
        0x42,
        0x7f,
        0x42,
        0x7f,
        0x41,
        0x00,
        0x41,
        ...sleb(bytes),
        0x10,
        0x01,
        0x10,
        0x00,
      ],
    }],
  });
}

Deno.test("guest attack: a guest inside one long path_open does not outlive its CLI killed with SIGKILL", async () => {
  // A 2 MiB path of "./": the walk is quadratic in its components (minutes).
  const lived = await outlives(
    longPathOpen(2 * 1024 * 1024),
    ["--scratch", "/s"],
    2000,
  );
  assert.ok(
    lived < 2000,
    `the sandbox still ran ${lived.toFixed(0)} ms after the CLI was killed`,
  );
});

Deno.test("guest attack: one fd_write of millions of empty iovecs stays within the budget plus the sandbox's overhead", async () => {
  // 48 MiB of memory, all of it zeroed iovecs: 6M buffers of 0 bytes in
  // one call, which fuel does not charge.
  const pages = 768;
  const count = pages * 65536 / 8 - 2;
  const bytes = command({
    pages,
    types: [[0x60, 4, I32, I32, I32, I32, 1, I32]],
    imports: [["wasi_snapshot_preview1", "fd_write", 2]],
    bodies: [{
      code: [
        // proc_exit(fd_write(1, 0, count, pages * 65536 - 8))
        0x41,
        0x01,
        0x41,
        0x00,
        0x41,
        ...sleb(count),
        0x41,
        ...sleb(pages * 65536 - 8),
        0x10,
        0x01,
        0x10,
        0x00,
      ],
    }],
  });
  const budgetMib = 64;
  await withModule(bytes, async (path) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}/tests/fixtures/peak_rss_probe.ts`,
        path,
        String(budgetMib),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, text(out.stderr));
    const probe = JSON.parse(text(out.stdout));
    const limitKiB = (budgetMib + SANDBOX_OVERHEAD_MIB) * 1024;
    assert.ok(
      probe.sandboxPeakKiB <= limitKiB,
      `the sandbox peaked at ${probe.sandboxPeakKiB} KiB, over ${limitKiB} KiB (status ${probe.status})`,
    );
  });
});

/** Peak resident memory (VmHWM) of `pid`'s descendants that are not sandboxes. */
function nodePeakKiB(pid: number): number {
  let peak = 0;
  for (const child of children(pid)) {
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${child}/cmdline`);
      if (cmdline.includes("sandbox_worker")) continue;
      const status = Deno.readTextFileSync(`/proc/${child}/status`);
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0));
    } catch {
      continue;
    }
    peak = Math.max(peak, nodePeakKiB(child));
  }
  return peak;
}

Deno.test("guest attack: metering a 15 MB module neither stalls the node's HTTP server nor takes gigabytes", async () => {
  // One function of 5M empty loops (3 bytes each): metering makes 135 MB
  // of it, synchronously, in the node's own thread.
  const loops = 5_000_000;
  const code = new Uint8Array(loops * 3);
  for (let i = 0; i < loops; i++) code.set([0x03, 0x40, 0x0b], i * 3);
  const bytes = command({
    bodies: [{ code }, { code: [0x41, 0x00, 0x10, 0x00] }],
  });
  assert.ok(bytes.length < 16 * 1024 * 1024);
  const [home, cleanup] = await tempDir();
  const node = await serveTask(home);
  try {
    const url = node.info.url;
    const job = fetch(`${url}/jobs?timeout_seconds=5`, {
      method: "POST",
      headers: { "content-type": "application/wasm" },
      body: bytes as Uint8Array<ArrayBuffer>,
    }).then((r) => r.body?.cancel());
    let done = false;
    job.finally(() => done = true);
    let worst = 0;
    await new Promise((r) => setTimeout(r, 200));
    while (!done) {
      const asked = performance.now();
      const answer = await fetch(`${url}/health`);
      await answer.body?.cancel();
      worst = Math.max(worst, performance.now() - asked);
      await new Promise((r) => setTimeout(r, 100));
    }
    await job;
    const peakMib = nodePeakKiB(node.child.pid) / 1024;
    assert.ok(
      worst < 2000 && peakMib < 1024,
      `GET /health waited ${
        worst.toFixed(0)
      } ms while the node metered one job, and the node peaked at ${
        peakMib.toFixed(0)
      } MiB of resident memory for a 15 MB body`,
    );
  } finally {
    await stopAnnounced(node);
    await cleanup();
  }
});

Deno.test("guest attack: importing __phase_host.refuel with another signature is refused as a reserved name, not as WASI", async () => {
  const bytes = command({
    types: [[0x60, 0, 1, I64]],
    imports: [["__phase_host", "refuel", 2]],
    bodies: [{ code: [0x41, 0x00, 0x10, 0x00] }],
  });
  await withModule(bytes, async (path, home) => {
    const out = await runLauncher(home, ["run", path]);
    assert.equal(out.code, 1);
    assert.doesNotMatch(out.stderr, /WASI preview1 defines/);
    assert.match(out.stderr, /__phase_host/);
  });
});

/**
 * `functions` functions of 10,000 empty loops each, all called by
 * `_start` (so V8 compiles them all); `salt` makes modules differ.
 */
function manyFunctions(functions: number, salt: number): Uint8Array {
  // Straight-line code (i32.const 0; drop), which metering barely grows.
  const code = new Uint8Array(30_000);
  for (let i = 0; i < 10_000; i++) code.set([0x41, 0x00, 0x1a], i * 3);
  const calls: number[] = [];
  for (let f = 1; f <= functions; f++) calls.push(0x10, ...uleb(f));
  return command({
    bodies: [
      ...Array.from({ length: functions }, () => ({ code })),
      { code: [...calls, 0x41, ...sleb(salt), 0x10, 0x00] },
    ],
  });
}

/** Resident memory (VmRSS, KiB) of each sandbox under `pid`. */
function sandboxRssKiB(pid: number): number[] {
  const found: number[] = [];
  for (const child of children(pid)) {
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${child}/cmdline`);
      if (cmdline.includes("sandbox_worker")) {
        const status = Deno.readTextFileSync(`/proc/${child}/status`);
        found.push(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0));
      }
    } catch {
      continue;
    }
    found.push(...sandboxRssKiB(child));
  }
  return found;
}

Deno.test("guest attack: a node's warm sandbox does not pile up the code of several 5 MB jobs", async () => {
  const budgetMib = 16;
  const [home, cleanup] = await tempDir();
  const node = await serveTask(home);
  try {
    const seen: number[] = [];
    for (let salt = 0; salt < 4; salt++) {
      const answer = await fetch(
        `${node.info.url}/jobs?timeout_seconds=30&memory_mb=${budgetMib}`,
        {
          method: "POST",
          headers: { "content-type": "application/wasm" },
          body: manyFunctions(160, salt) as Uint8Array<ArrayBuffer>,
        },
      );
      const receipt = await answer.json();
      assert.equal(answer.status, 200, JSON.stringify(receipt));
      assert.equal(receipt.execution.status, "exited");
      seen.push(Math.max(0, ...sandboxRssKiB(node.child.pid)) / 1024);
    }
    // Compiled code is outside the budget (docs/threat-model.md): about
    // ten times the module's bytes, for the job that runs, not piled up.
    const limit = budgetMib + SANDBOX_OVERHEAD_MIB + 10 * 5;
    assert.ok(
      seen.every((mib) => mib <= limit) && seen[3] <= seen[0] * 1.5,
      `a sandbox held ${
        seen.map((mib) => mib.toFixed(0)).join(", ")
      } MiB after jobs 1-4 of ${budgetMib} MiB each (limit ${limit} MiB)`,
    );
  } finally {
    await stopAnnounced(node);
    await cleanup();
  }
});

/** Sleeps one second in poll_oneoff (a relative monotonic clock), exits 0. */
function sleepOneSecond(): Uint8Array {
  return command({
    types: [[0x60, 4, I32, I32, I32, I32, 1, I32]],
    imports: [["wasi_snapshot_preview1", "poll_oneoff", 2]],
    bodies: [{
      code: [
        ...[0x41, 16, 0x41, 1, 0x36, 0x02, 0x00], // clock id 1 at 16
        ...[0x41, 24, 0x42, ...sleb(1_000_000_000), 0x37, 0x03, 0x00],
        ...[
          0x41,
          0,
          0x41,
          ...sleb(100),
          0x41,
          1,
          0x41,
          ...sleb(200),
          0x10,
          0x01,
        ],
        ...[0x1a, 0x41, 0x00, 0x10, 0x00], // drop; proc_exit(0)
      ],
    }],
  });
}

Deno.test("guest attack: another client's 15 MB module does not turn a job that ended in time into a timeout", async () => {
  const loops = 4_999_000;
  const code = new Uint8Array(loops * 3);
  for (let i = 0; i < loops; i++) code.set([0x03, 0x40, 0x0b], i * 3);
  const slow = command({
    bodies: [{ code }, { code: [0x41, 0x00, 0x10, 0x00] }],
  });
  const [home, cleanup] = await tempDir();
  const node = await serveTask(home);
  try {
    const post = (query: string, body: Uint8Array) =>
      fetch(`${node.info.url}/jobs?${query}`, {
        method: "POST",
        headers: { "content-type": "application/wasm" },
        body: body as Uint8Array<ArrayBuffer>,
      }).then((r) => r.json());
    // Warm: the sandbox is up and the sleeper's module is metered.
    assert.equal(
      (await post("timeout_seconds=2", sleepOneSecond())).execution.status,
      "exited",
    );
    const innocent = post("timeout_seconds=2", sleepOneSecond());
    await new Promise((r) => setTimeout(r, 300));
    await post("timeout_seconds=5", slow);
    const receipt = await innocent;
    assert.equal(
      receipt.execution.status,
      "exited",
      `a job that sleeps 1 s of its 2 s got: ${receipt.execution.error} (wall ${receipt.execution.wall_time_ms} ms)`,
    );
  } finally {
    await stopAnnounced(node);
    await cleanup();
  }
});

/** CPU time (user + system, clock ticks) that `pid` has used. */
function cpuTicks(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** Process ids of the sandboxes below `pid`, with their parents. */
function sandboxesBelow(pid: number): { pid: number; parent: number }[] {
  const found: { pid: number; parent: number }[] = [];
  for (const child of children(pid)) {
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${child}/cmdline`);
      if (cmdline.includes("sandbox_worker")) {
        found.push({ pid: child, parent: pid });
        continue;
      }
    } catch {
      continue;
    }
    found.push(...sandboxesBelow(child));
  }
  return found;
}

Deno.test("guest attack: a node's sandbox compiling a slow function does not outlive the node killed with SIGKILL", async () => {
  const [home, cleanup] = await tempDir();
  const node = await serveTask(home);
  const sandboxes = new Set<number>();
  try {
    const job = fetch(`${node.info.url}/jobs?timeout_seconds=60`, {
      method: "POST",
      headers: { "content-type": "application/wasm" },
      body: slowToCompile(1_000_000) as Uint8Array<ArrayBuffer>,
    }).then((r) => r.body?.cancel(), () => {});
    // Wait until a sandbox has spent a second of CPU on the job (compiling).
    let found: { pid: number; parent: number }[] = [];
    const busy = await until(() => {
      found = sandboxesBelow(node.child.pid);
      return found.some(({ pid }) => cpuTicks(pid) >= 100);
    }, 30_000);
    assert.ok(busy, "no sandbox of the node started on the job");
    for (const { pid } of found) sandboxes.add(pid);
    Deno.kill(found[0].parent, "SIGKILL");
    const killed = performance.now();
    await until(() => ![...sandboxes].some(alive), 2000);
    const lived = performance.now() - killed;
    await job;
    assert.ok(
      lived < 2000,
      `a sandbox still ran ${lived.toFixed(0)} ms after its node was killed`,
    );
  } finally {
    for (const pid of [...sandboxes].filter(alive)) Deno.kill(pid, "SIGKILL");
    await stopAnnounced(node);
    await cleanup();
  }
});

Deno.test("guest attack: a guest that overflows its stack through host calls reports the same fuel on every run: none", async () => {
  // $r calls args_sizes_get (no clock, no randomness), then itself, until
  // the stack runs out: a trap whose depth must not depend on the host.
  const bytes = command({
    types: [[0x60, 2, I32, I32, 1, I32]],
    imports: [["wasi_snapshot_preview1", "args_sizes_get", 2]],
    bodies: [
      {
        code: [
          ...[0x41, ...sleb(64), 0x41, ...sleb(72), 0x10, 0x01, 0x1a],
          ...[0x10, 0x02],
        ],
      },
      { code: [0x10, 0x02] },
    ],
  });
  await withModule(bytes, async (path, home) => {
    const seen = new Map<number, number>();
    for (let run = 0; run < 12; run++) {
      const out = await runLauncher(home, ["run", path, "--json", "--quiet"]);
      assert.equal(out.code, 134, out.stderr);
      const { execution } = JSON.parse(out.stdout);
      assert.equal(execution.status, "trap");
      assert.equal(execution.error, "trap: stack overflow");
      assert.equal(execution.fuel_consumed, null);
      seen.set(
        execution.fuel_consumed,
        (seen.get(execution.fuel_consumed) ?? 0) + 1,
      );
    }
    assert.equal(
      seen.size,
      1,
      `fuel_consumed over 12 runs: ${
        [...seen].map(([fuel, n]) => `${fuel} (${n}×)`).join(", ")
      }`,
    );
  });
});

Deno.test("guest attack: examples/wasm/deep_recursion reports the same fuel on a node's first and later jobs: none", async () => {
  const [home, cleanup] = await tempDir();
  const node = await serveTask(home);
  try {
    const seen: number[] = [];
    for (let run = 0; run < 4; run++) {
      const answer = await fetch(`${node.info.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/wasm" },
        body: example("deep_recursion") as Uint8Array<ArrayBuffer>,
      });
      const receipt = await answer.json();
      assert.equal(receipt.execution.status, "trap");
      assert.equal(receipt.execution.fuel_consumed, null);
      seen.push(receipt.execution.fuel_consumed);
    }
    assert.equal(
      new Set(seen).size,
      1,
      `fuel_consumed of jobs 1-4: ${seen.join(", ")}`,
    );
  } finally {
    await stopAnnounced(node);
    await cleanup();
  }
});

Deno.test("guest attack: a straight run of memory.fill instructions does not outlive its CLI killed with SIGKILL", async () => {
  // 400 × memory.fill(0, 1, 256 MiB) in one segment: each pays 4M fuel,
  // but nothing looks at the fuel (or the clock) between them.
  const fill = [
    ...[0x41, 0x00, 0x41, 0x01, 0x41, ...sleb(256 * 1024 * 1024)],
    ...[0xfc, 0x0b, 0x00],
  ];
  const code: number[] = [];
  for (let i = 0; i < 400; i++) code.push(...fill);
  code.push(0x41, 0x00, 0x10, 0x00);
  const bytes = command({ pages: 4096, bodies: [{ code }] });
  const lived = await outlives(bytes, ["--memory", "300"], 1500);
  assert.ok(
    lived < 2000,
    `the sandbox still ran ${lived.toFixed(0)} ms after the CLI was killed`,
  );
});

Deno.test("guest attack: a loop of table.fill does not outlive its CLI killed with SIGKILL", async () => {
  // table.fill pays one fuel per 64 elements, but a funcref element costs
  // about 10 ns: after a fast warm-up (slices at their 10M maximum) one
  // slice of table.fill lasts seconds without a look at the clock. The
  // guest alternates the two, so most of its time is in such a slice.
  const bytes = assembleModule([
    ...section(SECTION.type, [2, 0x60, 1, I32, 0, 0x60, 0, 0]),
    ...section(SECTION.import, [
      1,
      ...name("wasi_snapshot_preview1"),
      ...name("proc_exit"),
      0,
      0,
    ]),
    ...section(SECTION.function, [1, 1]),
    ...section(SECTION.table, [1, 0x70, 0, ...uleb(1_000_000)]),
    ...section(SECTION.memory, [1, 0, 1]),
    ...section(SECTION.export, [
      2,
      ...name("memory"),
      2,
      0,
      ...name("_start"),
      0,
      1,
    ]),
    ...section(SECTION.code, [
      1,
      ...((body: number[]) => [...uleb(body.length), ...body])([
        ...[1, 2, I32],
        // loop (forever):
        0x03,
        0x40,
        // a fast warm-up, so slices grow back to their maximum:
        // i = 0; loop: i += 1; br_if i < 300M
        ...[0x41, 0x00, 0x21, 0x00],
        ...[0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00],
        ...[0x41, ...sleb(300_000_000), 0x49, 0x0d, 0x00, 0x0b],
        // then about one 10M slice of table.fill 0 (0, ref.null, 1M):
        // k = 0; loop: fill; k += 1; br_if k < 640
        ...[0x41, 0x00, 0x21, 0x01],
        ...[0x03, 0x40, 0x41, 0x00, 0xd0, 0x70, 0x41, ...sleb(1_000_000)],
        ...[0xfc, 0x11, 0x00, 0x20, 0x01, 0x41, 0x01, 0x6a, 0x22, 0x01],
        ...[0x41, ...sleb(640), 0x49, 0x0d, 0x00, 0x0b],
        // br 0 (the outer loop); end; end of the function
        ...[0x0c, 0x00, 0x0b, 0x0b],
      ]),
    ]),
  ]);
  // The kill may land near a slice's end: try two points in the loop.
  const lived: number[] = [];
  for (const ticks of [120, 180]) {
    lived.push(await outlives(bytes, ["--memory", "100"], 1000, 2000, ticks));
  }
  assert.ok(
    lived.every((ms) => ms < 2000),
    `the sandbox still ran ${
      lived.map((ms) => ms.toFixed(0)).join(", ")
    } ms after the CLI was killed (two tries)`,
  );
});
