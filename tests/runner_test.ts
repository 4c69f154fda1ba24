import assert from "node:assert/strict";
import { execute, type ExecuteRequest } from "../runner/execute.ts";
import { capMemory, instrumentFuel, MIB, ModuleError } from "../runner/mod.ts";
import { sha256Ref } from "../schemas/mod.ts";
import { example, tempDir, text } from "./helpers.ts";

async function run(
  name: string,
  options: Partial<ExecuteRequest> = {},
) {
  // Jobs always run metered modules; so do these tests.
  const module = instrumentFuel(options.module ?? example(name)).bytes;
  return execute({
    module,
    moduleKey: await sha256Ref(module),
    programName: name,
    args: [],
    env: {},
    stdin: new Uint8Array(),
    memoryBytes: 64 * MIB,
    outputLimit: MIB,
    preopens: [],
    ...options,
  });
}

Deno.test("hello reverses its arguments and its stdin", async () => {
  const fromArgs = await run("hello", { args: ["Hello, World!"] });
  assert.equal(fromArgs.status, "exited");
  assert.equal(fromArgs.exitCode, 0);
  assert.equal(text(fromArgs.stdout), "!dlroW ,olleH\n");
  const fromStdin = await run("hello", {
    stdin: new TextEncoder().encode("Hello, World!\n"),
  });
  assert.equal(text(fromStdin.stdout), "!dlroW ,olleH\n");
});

Deno.test("CPU time is the guest's work: a spinning guest reports most of its wall time", async () => {
  const outcome = await run("cpu_heavy", { args: ["4"] });
  assert.equal(outcome.status, "exited");
  assert.ok(outcome.wallTimeMs > 20, `wall ${outcome.wallTimeMs} ms`);
  // CPU time is the process's, measured around the run: near the wall time
  // of a guest that only computes (less on a busy machine), never far above.
  assert.ok(
    outcome.cpuTimeMs > outcome.wallTimeMs / 10 &&
      outcome.cpuTimeMs < outcome.wallTimeMs * 2 + 5,
    `cpu ${outcome.cpuTimeMs} ms for wall ${outcome.wallTimeMs} ms`,
  );
});

Deno.test("UTF-8 arguments and environment reach the guest intact", async () => {
  const out = await run("echo_env", {
    args: ["héllo wörld ✓", "日本"],
    env: { GREETING: "grüße 🌍" },
  });
  assert.equal(
    text(out.stdout),
    "arg echo_env\narg héllo wörld ✓\narg 日本\nenv GREETING=grüße 🌍\n",
  );
  const reversed = await run("hello", { args: ["héllo ✓"] });
  assert.equal(text(reversed.stdout), "✓ olléh\n");
});

Deno.test("socket calls return ENOTSOCK instead of killing the guest", async () => {
  const out = await run("sock_probe");
  assert.equal(out.status, "exited");
  assert.equal(out.exitCode, 57);
});

Deno.test("memory cap: a memory bomb ends with a memory limit, host intact", async () => {
  const out = await run("memory_bomb", { memoryBytes: 32 * MIB });
  assert.equal(out.status, "memory_limit");
  assert.match(
    out.error!,
    /memory limit: the guest reached the job's 32 MiB memory budget/,
  );
  assert.ok(out.memoryPeakBytes <= 32 * MIB);
  assert.match(text(out.stderr), /malloc failed after 3\d MiB/);
});

Deno.test("deep recursion is a trap, not a host crash", async () => {
  const out = await run("deep_recursion");
  assert.equal(out.status, "trap");
  assert.equal(out.error, "trap: stack overflow");
});

Deno.test("output past the cap is dropped and flagged", async () => {
  const out = await run("huge_output", { args: ["4"], outputLimit: 10_000 });
  assert.equal(out.status, "exited");
  assert.equal(out.stdout.length, 10_000);
  assert.equal(out.stdoutTruncated, true);
  assert.equal(out.stderrTruncated, false);
  assert.equal(text(out.stderr), "done\n");
});

Deno.test("capMemory writes a maximum and refuses a too-large minimum", async () => {
  const hello = example("hello");
  const capped = capMemory(hello, 8 * MIB);
  assert.equal(capped.maxPages, 128);
  assert.ok(capped.initialPages >= 1);
  const module = new WebAssembly.Module(
    capped.bytes as Uint8Array<ArrayBuffer>,
  );
  assert.ok(
    WebAssembly.Module.exports(module).some((e) => e.name === "_start"),
  );
  assert.throws(
    () => capMemory(hello, 64 * 1024),
    /memory limit: the module needs/,
  );
  assert.throws(() => capMemory(new Uint8Array([1, 2, 3]), MIB), ModuleError);
  await assert.rejects(
    async () =>
      await run("x", {
        module: new TextEncoder().encode("\0asm\x01\0\0\0garbage"),
      }),
    ModuleError,
  );
});

Deno.test("an imported memory is capped too", () => {
  // (module (import "wasi_snapshot_preview1" "memory" (memory 1)))
  const bytes = new Uint8Array([
    0,
    97,
    115,
    109,
    1,
    0,
    0,
    0,
    2,
    34,
    1,
    22,
    ...new TextEncoder().encode("wasi_snapshot_preview1"),
    6,
    ...new TextEncoder().encode("memory"),
    2,
    0,
    1,
  ]);
  const capped = capMemory(bytes, 2 * MIB);
  assert.equal(capped.maxPages, 32);
  assert.equal(capped.initialPages, 1);
  new WebAssembly.Module(capped.bytes as Uint8Array<ArrayBuffer>);
});

Deno.test("read-only preopen: reads work, escapes and writes are refused", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/data/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/data/hello.txt`, "inside");
    await Deno.writeTextFile(`${dir}/secret.txt`, "outside");
    await Deno.symlink(`${dir}/secret.txt`, `${dir}/data/link-out`);
    await Deno.symlink("hello.txt", `${dir}/data/link-in`);
    const preopens = [{ host: `${dir}/data`, guest: "/data" }];
    const probe = async (...args: string[]) => {
      const out = await run("fs_probe", { args, preopens });
      return text(out.stdout).trim();
    };
    assert.equal(await probe("read", "/data/hello.txt"), "ok 6 inside");
    assert.equal(await probe("read", "/data/link-in"), "ok 6 inside");
    assert.equal(await probe("read", "/data/sub/../hello.txt"), "ok 6 inside");
    assert.equal(
      await probe("ls", "/data"),
      "ok . .. hello.txt link-in link-out sub",
    );
    assert.equal(
      await probe("stat", "/data/sub"),
      "ok size=" + Deno.statSync(`${dir}/data/sub`).size + " dir=1",
    );
    // Escapes.
    assert.equal(
      await probe("read", "/data/../secret.txt"),
      "error ENOTCAPABLE",
    );
    assert.equal(
      await probe("read", "/data/sub/../../secret.txt"),
      "error ENOTCAPABLE",
    );
    assert.equal(await probe("read", "/data/link-out"), "error ENOTCAPABLE");
    assert.match(
      await probe("read", `${dir}/secret.txt`),
      /^error (ENOENT|ENOTCAPABLE)$/,
    );
    assert.match(
      await probe("read", "/etc/passwd"),
      /^error (ENOENT|ENOTCAPABLE)$/,
    );
    // Mutations.
    assert.equal(await probe("write", "/data/new.txt"), "error EROFS");
    assert.equal(await probe("write", "/data/hello.txt"), "error EROFS");
    assert.equal(await probe("append", "/data/hello.txt"), "error EROFS");
    assert.equal(await probe("trunc", "/data/hello.txt"), "error EROFS");
    assert.equal(await probe("unlink", "/data/hello.txt"), "error EROFS");
    assert.equal(
      await probe("rename", "/data/hello.txt", "/data/moved.txt"),
      "error EROFS",
    );
    assert.equal(await probe("mkdir", "/data/newdir"), "error EROFS");
    assert.equal(await probe("rmdir", "/data/sub"), "error EROFS");
    assert.equal(Deno.readTextFileSync(`${dir}/data/hello.txt`), "inside");
    assert.deepEqual(
      [...Deno.readDirSync(`${dir}/data`)].map((e) => e.name).sort(),
      ["hello.txt", "link-in", "link-out", "sub"],
    );
  } finally {
    await cleanup();
  }
});

Deno.test("scratch directory is writable in memory and leaves no trace", async () => {
  const before = [...Deno.readDirSync(".")].length;
  const write = await run("fs_probe", {
    args: ["write", "/scratch/a.txt", "temporary"],
    scratch: "/scratch",
  });
  assert.equal(text(write.stdout), "ok wrote\n");
  const fresh = await run("fs_probe", {
    args: ["read", "/scratch/a.txt"],
    scratch: "/scratch",
  });
  assert.equal(text(fresh.stdout), "error ENOENT\n");
  assert.equal([...Deno.readDirSync(".")].length, before);
});
