// Runner containment (issue 12): every host resource a guest can reach is
// bounded, no sandbox outlives its parent, and a receipt always describes
// what ran. Each test plays one of the findings with a hostile module from
// examples/src or the CLI.
import assert from "node:assert/strict";
import {
  checkLink,
  DEFAULT_LIMITS,
  defaultSandboxCommand,
  instrumentFuel,
  JobRefused,
  MIB,
  ModuleError,
  runJob,
  SANDBOX_OVERHEAD_MIB,
  SandboxError,
  SandboxPool,
} from "../runner/mod.ts";
import {
  assembleModule,
  encodeSection,
  SECTION,
  sleb,
  uleb,
  WASM_PAGE,
} from "../runner/wasm_binary.ts";
import { generateKey, verifyReceipt } from "../schemas/mod.ts";
import {
  alive,
  children,
  cli,
  type CliResult,
  example,
  examplePath,
  ROOT,
  tempDir,
  text,
  until,
} from "./helpers.ts";

/** `phase run --ephemeral --private ARGS…` with no write permission. */
function privateRun(args: string[]): Promise<CliResult> {
  return cli(["run", "--ephemeral", "--private", ...args], {
    flags: ["--allow-read", "--allow-run", "--allow-env"],
  });
}

interface Probe {
  status: string;
  error: string | null;
  stdout: string;
  sandboxPeakKiB: number;
  parentPeakKiB: number;
}

async function probe(args: string[]): Promise<Probe> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/tests/fixtures/peak_rss_probe.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, text(out.stderr));
  return JSON.parse(text(out.stdout));
}

Deno.test("each hostile module stays within its memory budget plus the sandbox's fixed overhead", async () => {
  const cases: {
    name: string;
    args: string[];
    budgetMib: number;
    check: (p: Probe) => void;
  }[] = [
    {
      // 16 tables of 10M entries: 3.8 GB in V8 if nothing charges them.
      name: "table_bomb",
      args: [examplePath("table_bomb"), "16"],
      budgetMib: 16,
      check: (p) => {
        assert.equal(p.status, "refused");
        assert.match(
          p.error!,
          /^memory limit: the module's tables \(4882\.9 MiB\).* need more than the job's 16 MiB budget$/,
        );
      },
    },
    {
      // 2M one-byte writes: one frame and ~500 host bytes per write before.
      name: "tiny_writes",
      args: [examplePath("tiny_writes"), "16"],
      budgetMib: 16,
      check: (p) => {
        assert.equal(p.status, "exited");
        assert.match(p.stdout, /^x{200}$/);
        // The whole job path (receipt included) stays small too.
        assert.ok(
          p.parentPeakKiB < 200 * 1024,
          `runner side peaked at ${p.parentPeakKiB} KiB`,
        );
      },
    },
    {
      // 100k directories with 16 KiB names: 1.79 GB before.
      name: "scratch_bomb",
      args: [
        examplePath("scratch_bomb"),
        "16",
        "/scratch",
        "0",
        "--",
        "/scratch",
      ],
      budgetMib: 16,
      check: (p) => {
        assert.equal(p.status, "exited");
        assert.match(
          p.stdout,
          /^made \d{3,4} directories, stopped by No space left on device\n$/,
        );
      },
    },
    {
      name: "memory_bomb",
      args: [examplePath("memory_bomb"), "16"],
      budgetMib: 16,
      check: (p) => assert.equal(p.status, "memory_limit"),
    },
    {
      // Standard input is charged to the budget it arrives in.
      name: "stdin_count",
      args: [examplePath("stdin_count"), "80", "", String(64 * MIB)],
      budgetMib: 80,
      check: (p) => {
        assert.equal(p.status, "exited");
        assert.match(p.stdout, /^67108864 [0-9a-f]{8}\n$/);
      },
    },
  ];
  for (const { name, args, budgetMib, check } of cases) {
    const result = await probe(args);
    check(result);
    const limitKiB = (budgetMib + SANDBOX_OVERHEAD_MIB) * 1024;
    assert.ok(
      result.sandboxPeakKiB <= limitKiB,
      `${name}: the sandbox peaked at ${result.sandboxPeakKiB} KiB, over ${limitKiB} KiB`,
    );
    console.log(
      `${name}: sandbox peak ${
        (result.sandboxPeakKiB / 1024).toFixed(1)
      } MiB (budget ${budgetMib} MiB + overhead ${SANDBOX_OVERHEAD_MIB} MiB)`,
    );
  }
});

/** `phase run ARGS…` as a child process this test controls. */
function spawnRun(args: string[], piped: boolean): Deno.ChildProcess {
  const io = piped ? "piped" : "null";
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/main.ts`, "run", ...args],
    stdin: io,
    stdout: io,
    stderr: io,
  }).spawn();
}

async function startCli(
  module: string,
  dir: string,
): Promise<{ child: Deno.ChildProcess; sandbox: number }> {
  const child = spawnRun([
    examplePath(module),
    "--data-dir",
    dir,
    "--timeout",
    "600",
    "--fuel",
    String(Number.MAX_SAFE_INTEGER),
  ], false);
  let sandbox = 0;
  const started = await until(() => {
    sandbox = children(child.pid)[0] ?? 0;
    return sandbox !== 0;
  }, 15_000);
  assert.ok(started, "the CLI started no sandbox");
  // Let the guest start running (spinning or asleep in its host call).
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(alive(sandbox));
  return { child, sandbox };
}

for (
  const [signal, module] of [
    ["SIGKILL", "infinite_loop"],
    ["SIGKILL", "sleep_long"],
    ["SIGINT", "infinite_loop"],
    ["SIGTERM", "sleep_long"],
  ] as const
) {
  Deno.test(`a sandbox does not outlive its CLI killed with ${signal} (${module})`, async () => {
    const [dir, cleanup] = await tempDir();
    try {
      const { child, sandbox } = await startCli(module, dir);
      child.kill(signal);
      await child.status;
      const gone = await until(() => !alive(sandbox), 2000);
      if (!gone) Deno.kill(sandbox, "SIGKILL");
      assert.ok(gone, `sandbox ${sandbox} still runs 2 s after ${signal}`);
    } finally {
      await cleanup();
    }
  });
}

Deno.test("a node's pool does not outlive the node killed with SIGKILL", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}/tests/fixtures/pool_holder.ts`,
      examplePath("infinite_loop"),
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the pool holder ended early");
    line += value;
  }
  const { pids } = JSON.parse(line) as { pids: number[] };
  assert.equal(pids.length, 2);
  assert.ok(pids.every(alive));
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  const gone = await until(() => !pids.some(alive), 2000);
  for (const pid of pids.filter(alive)) Deno.kill(pid, "SIGKILL");
  assert.ok(gone, "a pool sandbox still runs 2 s after its node died");
});

Deno.test("fuel is one budget: a start function and host-call charges stop the guest", async () => {
  // A start function that spins; one fd_write of 1 MiB (16384 fuel of host
  // work) on a budget of 100: both stop at once, nothing unpaid is kept.
  for (const [name, fuel] of [["start_spin", "1000"], ["big_write", "100"]]) {
    const out = await privateRun([
      "--json",
      "--fuel",
      fuel,
      "--timeout",
      "20",
      examplePath(name),
    ]);
    assert.equal(out.code, 124, out.stderr);
    const receipt = JSON.parse(out.stdout);
    assert.equal(receipt.execution.status, "fuel_exhausted", name);
    assert.ok(receipt.execution.wall_time_ms < 5000, name);
    assert.equal(receipt.stdout, "", `${name}: unpaid output was kept`);
  }
});

Deno.test("a receipt never says exited with more fuel consumed than its budget", async () => {
  // fuel_count.wat needs exactly 8004; checks sit at entries and loop
  // headers, so a budget just under the need can end between two checks.
  const { execute } = await import("../runner/execute.ts");
  const module = instrumentFuel(
    Deno.readFileSync(examplePath("fuel_count")),
  ).bytes;
  for (let fuel = 7900; fuel <= 8010; fuel++) {
    const out = execute({
      module,
      moduleKey: "fuel_count",
      fuel,
      programName: "fuel_count",
      args: [],
      env: {},
      stdin: new Uint8Array(),
      memoryBytes: 16 * MIB,
      outputLimit: MIB,
      preopens: [],
    });
    if (out.status === "exited") {
      assert.ok(
        out.fuelConsumed! <= fuel,
        `budget ${fuel}: exited having used ${out.fuelConsumed}`,
      );
    } else {
      assert.equal(out.status, "fuel_exhausted", `budget ${fuel}`);
      assert.ok(out.fuelConsumed! > fuel);
    }
  }
});

Deno.test("the default fuel budget does not stop a job before its wall clock", async () => {
  // The densest fuel burner known runs into its 1 s wall clock, not fuel.
  const dense = await privateRun([
    "--json",
    "--timeout",
    "1",
    examplePath("fuel_dense"),
  ]);
  const receipt = JSON.parse(dense.stdout);
  assert.equal(receipt.execution.status, "timeout", dense.stderr);
  assert.equal(receipt.limits.fuel, DEFAULT_LIMITS.fuelPerSecond);
  // A 0.1 s cpu_heavy finishes under --timeout 1 (it was "fuel exhausted").
  const heavy = await privateRun([
    "--timeout",
    "1",
    examplePath("cpu_heavy"),
    "--",
    "4",
  ]);
  assert.equal(heavy.code, 0, heavy.stderr);
  assert.match(heavy.stdout, /^[0-9a-f]{64}\n$/);
});

Deno.test("a swapped metered-cache file is rebuilt: the receipt's module is the one that ran", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const run = (name: string) =>
      cli(["run", "--json", "--data-dir", dir, examplePath(name)], {
        stdin: "abc",
      });
    const hello = JSON.parse((await run("hello")).stdout);
    assert.equal(hello.stdout, "cba");
    const other = JSON.parse((await run("stdin_count")).stdout);
    assert.match(other.stdout, /^3 /);
    const files = [...Deno.readDirSync(`${dir}/modules`)].map((e) => e.name);
    const helloFile = files.find((f) =>
      f.startsWith(hello.module_hash.slice(7))
    )!;
    const otherFile = files.find((f) =>
      f.startsWith(other.module_hash.slice(7))
    )!;
    assert.ok(helloFile && otherFile, files.join(", "));
    // cp -p of another valid cached module over hello's.
    await Deno.copyFile(
      `${dir}/modules/${otherFile}`,
      `${dir}/modules/${helloFile}`,
    );
    const again = JSON.parse((await run("hello")).stdout);
    assert.equal(again.stdout, "cba", "the swapped module ran");
    assert.equal(again.module_hash, hello.module_hash);
    assert.ok((await verifyReceipt(again)).valid);
  } finally {
    await cleanup();
  }
});

Deno.test("a --dir host path never becomes permission syntax", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/x,`, { recursive: true });
    const out = await cli([
      "run",
      "--data-dir",
      dir,
      "--dir",
      `${dir}/x,/etc:/data`,
      examplePath("fs_probe"),
    ]);
    assert.equal(out.code, 2, out.stderr);
    assert.match(
      out.stderr.trim(),
      /^phase: --dir ".*\/x,\/etc": a host path with a comma or line break cannot be shared with the sandbox$/,
    );
    assert.throws(
      () => defaultSandboxCommand([`${dir}/x,/etc`]),
      SandboxError,
    );
    assert.throws(
      () => defaultSandboxCommand([`${dir}/ok`], [`${dir}/x,/etc`]),
      SandboxError,
    );
    // A writable preopen's process may write that directory and nothing else.
    const { args } = defaultSandboxCommand([`${dir}/a`, `${dir}/b`], [
      `${dir}/b`,
    ]);
    assert.deepEqual(args.filter((a) => a.startsWith("--allow-write")), [
      `--allow-write=${dir}/b`,
    ]);
    assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
    assert.deepEqual(
      defaultSandboxCommand([`${dir}/a`]).args.filter((a) =>
        a.startsWith("--allow-write")
      ),
      [],
    );
  } finally {
    await cleanup();
  }
});

Deno.test("imports Phase cannot link are one line before any code runs, exit 1, no receipt", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const cases: [string, RegExp][] = [
      [
        "unknown_import",
        /^phase: the module imports wasi_snapshot_preview1\.fd_frobnicate, which Phase does not provide$/,
      ],
      [
        "wrong_signature",
        /^phase: the module imports wasi_snapshot_preview1\.fd_write as \(i32\) -> \(i32\), but WASI preview1 defines it as \(i32, i32, i32, i32\) -> \(i32\)$/,
      ],
    ];
    for (const [name, pattern] of cases) {
      const out = await cli([
        "run",
        "--data-dir",
        dir,
        "--receipt",
        `${dir}/r.json`,
        examplePath(name),
      ]);
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr.trim(), pattern);
      assert.equal(out.stdout, "");
      assert.ok(!(await Deno.stat(`${dir}/r.json`).catch(() => null)));
    }
    const receipts = await Deno.stat(`${dir}/receipts`).catch(() => null);
    assert.ok(
      !receipts || [...Deno.readDirSync(`${dir}/receipts`)].length === 0,
    );
    // Every preview1 function the suite imports links.
    checkLink(Deno.readFileSync(examplePath("wasi_suite")));
  } finally {
    await cleanup();
  }
});

/** A module from its sections (types, imports… as raw bodies). */
function moduleOf(sections: [number, number[]][]): Uint8Array {
  return assembleModule(
    sections.flatMap(([id, body]) =>
      encodeSection(id, [Uint8Array.from(body)])
    ),
  );
}

/** A name as the binary format writes it. */
function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

const exportsMemoryAndStart = [
  2,
  ...name("memory"),
  2,
  0,
  ...name("_start"),
  0,
  0,
];

Deno.test("proposals the instrumenter does not meter are refused by name, even when V8 accepts them", () => {
  // call_ref through a typed function reference (final encoding).
  const typedRefs = moduleOf([
    [SECTION.type, [1, 0x60, 0, 0]],
    [SECTION.function, [2, 0, 0]],
    [SECTION.memory, [1, 0, 1]],
    [SECTION.export, exportsMemoryAndStart],
    [SECTION.element, [1, 3, 0, 1, 0]], // declare func 0
    [SECTION.code, [2, 2, 0, 0x0b, 6, 0, 0xd2, 0, 0x14, 0, 0x0b]],
  ]);
  // A struct type and struct.new (garbage collection).
  const gc = moduleOf([
    [SECTION.type, [2, 0x5f, 1, 0x7f, 0, 0x60, 0, 0]],
    [SECTION.function, [1, 1]],
    [SECTION.memory, [1, 0, 1]],
    [SECTION.export, exportsMemoryAndStart],
    // i32.const 1; struct.new 0; drop; end
    [SECTION.code, [1, 8, 0, 0x41, 1, 0xfb, 0, 0, 0x1a, 0x0b]],
  ]);
  for (
    const [module, name] of [
      [typedRefs, "typed function references"],
      [gc, "garbage collection"],
    ] as const
  ) {
    new WebAssembly.Module(module as Uint8Array<ArrayBuffer>); // V8 accepts it
    assert.throws(
      () => instrumentFuel(module),
      (error: Error) =>
        error instanceof ModuleError && error.message.includes(name) &&
        !error.message.includes("\n"),
    );
  }
});

Deno.test("modules with 35k functions or 2000 functions of 25 ifs are metered and run", async () => {
  for (
    const [name, pattern] of [
      ["many_functions", /^35000 functions, sum \d+\n$/],
      ["many_ifs", /^2000 functions, sum \d+\n$/],
    ] as const
  ) {
    const out = await privateRun([examplePath(name)]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, pattern);
  }
});

Deno.test("exit codes: above 255 exits 255 (never 0), limits are range-checked, a failed grow past 4 GiB is a trap", async () => {
  const exit = await privateRun(["--json", examplePath("exit_256")]);
  assert.equal(exit.code, 255);
  assert.equal(JSON.parse(exit.stdout).execution.exit_code, 256);

  const ranges: [string, string, RegExp][] = [
    [
      "--timeout",
      "2147484",
      /^phase: --timeout wants a number above 0 to 86400 seconds, got 2147484$/,
    ],
    [
      "--timeout",
      "0",
      /^phase: --timeout wants a number above 0 to 86400 seconds, got 0$/,
    ],
    [
      "--memory",
      "4097",
      /^phase: --memory wants a whole number from 1 to 4096 MiB, got 4097$/,
    ],
    [
      "--output-limit",
      "1e9",
      /^phase: --output-limit wants a whole number from 0 to 67108864 bytes, got 1e9$/,
    ],
    [
      "--fuel",
      "1e300",
      /^phase: --fuel wants a whole number from 1 to 9007199254740991 fuel, got 1e300$/,
    ],
  ];
  for (const [flag, value, pattern] of ranges) {
    const out = await privateRun([flag, value, examplePath("hello")]);
    assert.equal(out.code, 2, `${flag} ${value}: ${out.stderr}`);
    assert.match(out.stderr.trim(), pattern);
  }

  const grow = await privateRun(["--json", examplePath("grow_beyond_4g")]);
  const receipt = JSON.parse(grow.stdout);
  assert.equal(receipt.execution.status, "trap");
  assert.equal(grow.code, 134);
});

Deno.test("truncation is reported on every end state", async () => {
  const cases: [string, string[], string][] = [
    ["print_then_loop", ["--timeout", "1", "--output-limit", "1"], "timeout"],
    [
      "tiny_writes",
      ["--fuel", "100000", "--output-limit", "10"],
      "fuel_exhausted",
    ],
    ["tiny_writes", ["--output-limit", "10"], "exited"],
  ];
  for (const [name, args, status] of cases) {
    const out = await privateRun(["--json", ...args, examplePath(name)]);
    const receipt = JSON.parse(out.stdout);
    assert.equal(receipt.execution.status, status, out.stderr);
    assert.equal(receipt.stdout_truncated, true, `${name} ${status}`);
  }
});

Deno.test("256 MiB of stdin reaches the guest whole", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const size = 256 * MIB;
    const child = spawnRun([
      "--data-dir",
      dir,
      "--memory",
      "400",
      examplePath("stdin_count"),
    ], true);
    const writer = child.stdin.getWriter();
    const chunk = new Uint8Array(MIB).fill(0x61);
    for (let i = 0; i < size / MIB; i++) await writer.write(chunk);
    await writer.close();
    const out = await child.output();
    assert.equal(out.code, 0, text(out.stderr));
    assert.match(text(out.stdout), /^268435456 [0-9a-f]{8}\n$/);
    // At the default budget, it is refused with one line, before running.
    const refused = await cli(
      ["run", "--data-dir", dir, examplePath("stdin_count")],
      { stdin: "x".repeat(129 * MIB) },
    );
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr.trim(),
      /^phase: memory limit: 135266304 bytes of standard input do not fit the job's 128 MiB memory budget$/,
    );
  } finally {
    await cleanup();
  }
});

Deno.test("a module with a 50 MiB data segment runs without quadratic copies", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // proc_exit(first byte of a 50 MiB active data segment at 65536).
    const size = 50 * MIB;
    const body = [0, 0x41, ...sleb(65536), 0x2d, 0, 0, 0x10, 0, 0x0b];
    const head = moduleOf([
      [SECTION.type, [2, 0x60, 1, 0x7f, 0, 0x60, 0, 0]],
      [SECTION.import, [
        1,
        ...name("wasi_snapshot_preview1"),
        ...name("proc_exit"),
        0,
        0,
      ]],
      [SECTION.function, [1, 1]],
      [SECTION.memory, [1, 0, ...uleb(Math.ceil(size / WASM_PAGE) + 1)]],
      [SECTION.export, [2, ...name("memory"), 2, 0, ...name("_start"), 0, 1]],
      [SECTION.code, [1, body.length, ...body]],
    ]);
    const dataHeader = [1, 0, 0x41, ...sleb(65536), 0x0b, ...uleb(size)];
    const dataSize = uleb(dataHeader.length + size);
    const module = new Uint8Array(
      head.length + 1 + dataSize.length + dataHeader.length + size,
    );
    module.set(head);
    module.set([SECTION.data, ...dataSize, ...dataHeader], head.length);
    module.fill(7, head.length + 1 + dataSize.length + dataHeader.length);
    await Deno.writeFile(`${dir}/big.wasm`, module);
    const out = await cli([
      "run",
      "--json",
      "--data-dir",
      dir,
      "--memory",
      "256",
      `${dir}/big.wasm`,
    ]);
    const receipt = JSON.parse(out.stdout);
    assert.equal(receipt.execution.status, "exited", out.stderr);
    assert.equal(receipt.execution.exit_code, 7);
  } finally {
    await cleanup();
  }
});

Deno.test("files: --receipt is written whole, output survives an unwritable receipt, temporaries are swept, --key must have a folder", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    // Leftovers of interrupted runs, old enough to be stale.
    await Deno.mkdir(`${dir}/receipts`, { recursive: true });
    await Deno.mkdir(`${dir}/modules`, { recursive: true });
    const old = new Date(Date.now() - 3600_000);
    for (
      const path of [
        `${dir}/receipts/a.json.tmp-1234`,
        `${dir}/modules/b.wasm.tmp-99`,
      ]
    ) {
      await Deno.writeTextFile(path, "partial");
      await Deno.utime(path, old, old);
    }
    const fresh = `${dir}/receipts/c.json.tmp-5678`;
    await Deno.writeTextFile(fresh, "in progress elsewhere");
    const ok = await cli(
      [
        "run",
        "--data-dir",
        dir,
        "--receipt",
        `${dir}/r.json`,
        examplePath("hello"),
      ],
      { stdin: "hi" },
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(
      (await verifyReceipt(
        JSON.parse(await Deno.readTextFile(`${dir}/r.json`)),
      )).valid,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.includes(".tmp-")
      ),
      [],
    );
    assert.ok(
      !(await Deno.stat(`${dir}/receipts/a.json.tmp-1234`).catch(() => null)),
    );
    assert.ok(
      !(await Deno.stat(`${dir}/modules/b.wasm.tmp-99`).catch(() => null)),
    );
    assert.ok(await Deno.stat(fresh), "a fresh temporary was removed");

    const unwritable = await cli(
      [
        "run",
        "--data-dir",
        dir,
        "--receipt",
        `${dir}/missing/r.json`,
        examplePath("hello"),
      ],
      { stdin: "hi" },
    );
    assert.equal(unwritable.stdout, "ih");
    assert.equal(unwritable.code, 1);
    assert.match(
      unwritable.stderr.trim(),
      /^phase: cannot write receipt .*\/missing\/r\.json: No such file or directory/,
    );

    const key = await cli([
      "run",
      "--data-dir",
      dir,
      "--key",
      `${dir}/nowhere/k`,
      examplePath("hello"),
    ]);
    assert.equal(key.code, 1);
    assert.match(
      key.stderr.trim(),
      /^phase: cannot write key file .*the folder .*\/nowhere does not exist$/,
    );
    assert.ok(!(await Deno.stat(`${dir}/nowhere`).catch(() => null)));
  } finally {
    await cleanup();
  }
});

Deno.test("Private mode refuses a scoped write permission", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const out = await cli([
      "run",
      "--private",
      "--receipt",
      `${dir}/x.json`,
      examplePath("hello"),
    ], {
      flags: [
        "--no-prompt",
        "--allow-read",
        "--allow-run",
        "--allow-env",
        `--allow-write=${dir}`,
      ],
      env: { PHASE_HOME: dir },
    });
    assert.equal(out.code, 1);
    assert.match(
      out.stderr.trim(),
      /^phase: private mode needs write permission denied, but it is granted \(.+\)/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await cleanup();
  }
});

Deno.test("a seeded scratch is paid from the job's memory budget: over it is refused, near it leaves the guest less", async () => {
  const pool = new SandboxPool({ size: 1 });
  const key = await generateKey();
  const seed = (mib: number) => [{
    path: "blob",
    kind: "file" as const,
    data: new Uint8Array(mib * MIB),
  }];
  try {
    // More seed than budget: refused in one line before anything runs.
    await assert.rejects(
      runJob({
        module: example("hello"),
        memoryMb: 16,
        scratch: "/s",
        scratchSeed: seed(17),
      }, { sandbox: pool, key }),
      (error: Error) =>
        error instanceof JobRefused &&
        /^memory limit: the scratch seed \(\d+ bytes with its entries\) and standard input do not fit the job's 16 MiB memory budget$/
          .test(error.message),
    );
    // Entries are bounded in number as well as in bytes.
    const many = Array.from({ length: 4097 }, (_, i) => ({
      path: `f${i}`,
      kind: "file" as const,
    }));
    await assert.rejects(
      runJob({
        module: example("hello"),
        memoryMb: 16,
        scratch: "/s",
        scratchSeed: many,
      }, { sandbox: pool, key }),
      /scratch seed: a seed holds at most 4096 entries/,
    );
    // A 24 MiB seed in a 32 MiB budget: the guest's heap gets what is left,
    // and the peak stays within the budget.
    const { receipt } = await runJob({
      module: example("memory_bomb"),
      memoryMb: 32,
      scratch: "/s",
      scratchSeed: seed(24),
    }, { sandbox: pool, key });
    assert.equal(receipt.execution.status, "memory_limit", receipt.stdout);
    const got = Number(/after (\d+) MiB/.exec(receipt.stderr)?.[1]);
    assert.ok(got > 0 && got < 8, receipt.stderr);
    assert.ok(receipt.execution.memory_peak_mb <= 32);
    // scratch_bomb stops at ENOSPC sooner with most of its budget seeded.
    const bomb = await runJob({
      module: example("scratch_bomb"),
      args: ["/s"],
      memoryMb: 16,
      scratch: "/s",
      scratchSeed: seed(15),
    }, { sandbox: pool, key });
    assert.match(
      bomb.receipt.stdout,
      /^made \d{1,4} directories, stopped by No space left on device\n$/,
    );
    assert.ok(bomb.receipt.execution.memory_peak_mb <= 16);
  } finally {
    await pool.close();
  }
});
