import assert from "node:assert/strict";
import { cli, examplePath, tempDir } from "./helpers.ts";

function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, `stack trace in: ${stderr}`);
  assert.ok(
    stderr.trim().split("\n").length <= 2,
    `more than one line: ${stderr}`,
  );
}

Deno.test("phase run: stdin hello, receipt file, verify, tamper", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const hello = await cli(["run", examplePath("hello"), "--data-dir", dir], {
      stdin: "Hello, World!\n",
    });
    assert.equal(hello.code, 0, hello.stderr);
    assert.equal(hello.stdout, "!dlroW ,olleH\n");
    const receiptPath = `${dir}/r.json`;
    const run = await cli([
      "run",
      examplePath("hello"),
      "--data-dir",
      dir,
      "--receipt",
      receiptPath,
      "--",
      "Hello, World!",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const ok = await cli(["receipt", "verify", receiptPath]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Receipt:\s+✓ Verified/);
    // Receipts are logged in the data directory.
    const logged = [...Deno.readDirSync(`${dir}/receipts`)];
    assert.equal(logged.length, 2);
    // Flip one byte of the signed content.
    const receipt = JSON.parse(await Deno.readTextFile(receiptPath));
    receipt.stdout = receipt.stdout.replace("!", "?");
    await Deno.writeTextFile(receiptPath, JSON.stringify(receipt));
    const bad = await cli(["receipt", "verify", receiptPath]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is invalid: invalid signature/);
    noStackTrace(bad.stderr);
    await Deno.writeTextFile(receiptPath, "{");
    const broken = await cli(["receipt", "verify", receiptPath]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /not a JSON document/);
  } finally {
    await cleanup();
  }
});

Deno.test("phase run --json prints the receipt; exit codes follow the guest", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const json = await cli([
      "run",
      examplePath("hello"),
      "--data-dir",
      dir,
      "--json",
      "--",
      "abc",
    ]);
    assert.equal(json.code, 0, json.stderr);
    const receipt = JSON.parse(json.stdout);
    assert.equal(receipt.stdout, "cba\n");
    const failing = await cli([
      "run",
      examplePath("fs_probe"),
      "--data-dir",
      dir,
      "--",
      "read",
      "/nope",
    ]);
    assert.equal(failing.code, 2);
    assert.equal(failing.stdout, "error ENOTCAPABLE\n");
  } finally {
    await cleanup();
  }
});

Deno.test("phase run: limits give clear results and exit codes", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const loop = await cli([
      "run",
      examplePath("infinite_loop"),
      "--data-dir",
      dir,
      "--timeout",
      "0.5",
      // Enough fuel that the wall clock stops the guest first.
      "--fuel",
      "1000000000000",
    ]);
    assert.equal(loop.code, 124);
    assert.equal(
      loop.stderr,
      "phase: timeout: the guest ran longer than 0.5 s\n",
    );
    const bomb = await cli([
      "run",
      examplePath("memory_bomb"),
      "--data-dir",
      dir,
      "--memory",
      "16",
    ]);
    assert.equal(bomb.code, 125);
    assert.match(
      bomb.stderr,
      /phase: memory limit: the guest reached the job's 16 MiB memory budget/,
    );
    const deep = await cli([
      "run",
      examplePath("deep_recursion"),
      "--data-dir",
      dir,
    ]);
    assert.equal(deep.code, 134);
    assert.equal(deep.stderr, "phase: trap: stack overflow\n");
    const big = await cli([
      "run",
      examplePath("huge_output"),
      "--data-dir",
      dir,
      "--output-limit",
      "1000",
      "--",
      "1",
    ]);
    assert.equal(big.code, 0);
    assert.equal(big.stdout.length, 1000);
    assert.match(big.stderr, /output cut at 1000 bytes per stream/);
  } finally {
    await cleanup();
  }
});

Deno.test("phase run --dir gives the guest a read-only view", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/share`);
    await Deno.writeTextFile(`${dir}/share/a.txt`, "shared");
    const read = await cli([
      "run",
      examplePath("fs_probe"),
      "--data-dir",
      dir,
      "--dir",
      `${dir}/share:/share`,
      "--",
      "read",
      "/share/a.txt",
    ]);
    assert.equal(read.stdout, "ok 6 shared\n", read.stderr);
    const write = await cli([
      "run",
      examplePath("fs_probe"),
      "--data-dir",
      dir,
      "--dir",
      `${dir}/share:/share`,
      "--",
      "write",
      "/share/b.txt",
    ]);
    assert.equal(write.stdout, "error EROFS\n");
  } finally {
    await cleanup();
  }
});

Deno.test("bad input gives one line and a non-zero exit", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const cases: [string[], RegExp, number][] = [
      [
        ["run", `${dir}/missing.wasm`, "--data-dir", dir],
        /^phase: cannot read module .*: no such file$/,
        1,
      ],
      [
        ["run", examplePath("hello"), "--data-dir", dir, "--memory", "lots"],
        /^phase: --memory wants a whole number from 1 to 4096 MiB, got lots$/,
        2,
      ],
      [["run"], /^phase: usage: phase run/, 2],
      [
        ["run", examplePath("hello"), "--bogus"],
        /^phase: unknown option --bogus \(see: phase run --help\)$/,
        2,
      ],
      [["frobnicate"], /^phase: unknown command frobnicate/, 2],
      [
        ["run", `${dir}/m.json`, "--data-dir", dir],
        /^phase: not a WebAssembly module/,
        1,
      ],
      [
        [
          "run",
          examplePath("hello"),
          "--data-dir",
          dir,
          "--manifest",
          `${dir}/m.json`,
        ],
        /^phase: job manifest .* is not JSON$/,
        1,
      ],
    ];
    await Deno.writeTextFile(`${dir}/m.json`, "{nope");
    for (const [args, pattern, code] of cases) {
      const out = await cli(args);
      assert.equal(out.code, code, `${args.join(" ")}: ${out.stderr}`);
      assert.match(out.stderr.trim(), pattern);
      noStackTrace(out.stderr);
    }
    await Deno.writeTextFile(
      `${dir}/m.json`,
      JSON.stringify({ version: 1, module_hash: `sha256:${"0".repeat(64)}` }),
    );
    const mismatch = await cli([
      "run",
      examplePath("hello"),
      "--data-dir",
      dir,
      "--manifest",
      `${dir}/m.json`,
    ]);
    assert.equal(mismatch.code, 1);
    assert.match(
      mismatch.stderr,
      /^phase: module hash mismatch: the manifest wants sha256:0{64}/,
    );
    await Deno.writeTextFile(`${dir}/node.key`, "garbage", { mode: 0o600 });
    const badKey = await cli(["run", examplePath("hello"), "--data-dir", dir]);
    assert.equal(badKey.code, 1);
    assert.match(
      badKey.stderr.trim(),
      /^phase: key file .*node.key is corrupt: not JSON$/,
    );
  } finally {
    await cleanup();
  }
});

Deno.test("private mode refuses write permission and writes nothing", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const refused = await cli([
      "run",
      examplePath("hello"),
      "--private",
      "--",
      "x",
    ], {
      env: { PHASE_HOME: `${dir}/home` },
    });
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^phase: private mode needs write permission denied/,
    );
    const ok = await cli([
      "run",
      examplePath("hello"),
      "--private",
      "--json",
      "--",
      "x",
    ], {
      flags: ["--no-prompt", "--allow-read", "--allow-run", "--allow-env"],
      env: { PHASE_HOME: `${dir}/home` },
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).stdout, "x\n");
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await cleanup();
  }
});

Deno.test("execute-job prints the verified receipt box; keygen and version work", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const out = await cli([
      "execute-job",
      "--wasm",
      examplePath("hello"),
      "--args",
      "Hello, World!",
      "--data-dir",
      dir,
    ]);
    assert.equal(out.code, 0, out.stderr);
    for (
      const label of [
        "Job ID:",
        "Module Hash:",
        "Exit Code:",
        "Wall Time:",
        "Output:",
      ]
    ) {
      assert.match(out.stdout, new RegExp(label));
    }
    assert.match(out.stdout, /Fuel:\s+\d+ of 300000000000000\n/);
    assert.match(out.stdout, /Output:\s+!dlroW ,olleH/);
    assert.match(out.stdout, /Receipt:\s+✓ Verified/);
    const key = await cli([
      "keygen",
      "--output",
      `${dir}/release.key`,
      "--json",
    ]);
    assert.equal(key.code, 0, key.stderr);
    assert.match(JSON.parse(key.stdout).peer_id, /^12D3KooW/);
    const again = await cli(["keygen", "--output", `${dir}/release.key`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    const version = await cli(["version", "--json"]);
    assert.equal(JSON.parse(version.stdout).name, "phase");
  } finally {
    await cleanup();
  }
});

Deno.test("--receipt never overwrites a file that is not a receipt (the node key, the module)", async () => {
  const [dir, cleanup] = await tempDir();
  const run = (module: string, receipt: string, arg: string) =>
    cli([
      "run",
      module,
      "--data-dir",
      dir,
      "--receipt",
      receipt,
      "--",
      arg,
    ]);
  try {
    const first = await run(examplePath("hello"), `${dir}/r.json`, "a");
    assert.equal(first.code, 0, first.stderr);
    const key = await Deno.readFile(`${dir}/node.key`);
    await Deno.copyFile(examplePath("hello"), `${dir}/m.wasm`);
    for (const target of [`${dir}/node.key`, `${dir}/m.wasm`]) {
      const out = await run(`${dir}/m.wasm`, target, "b");
      assert.equal(out.code, 1);
      assert.match(
        out.stderr.trim(),
        /^phase: --receipt .* exists and is not a receipt; refusing to overwrite it$/,
      );
    }
    assert.deepEqual(await Deno.readFile(`${dir}/node.key`), key);
    assert.deepEqual(
      await Deno.readFile(`${dir}/m.wasm`),
      await Deno.readFile(examplePath("hello")),
    );
    // An older receipt may be replaced.
    const again = await run(examplePath("hello"), `${dir}/r.json`, "c");
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      JSON.parse(await Deno.readTextFile(`${dir}/r.json`)).stdout,
      "c\n",
    );
  } finally {
    await cleanup();
  }
});
