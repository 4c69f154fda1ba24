import assert from "node:assert/strict";
import {
  defaultSandboxCommand,
  instrumentFuel,
  JobRefused,
  MIB,
  prestartSandbox,
  QueueFullError,
  runJob,
  SandboxError,
  type SandboxJob,
  SandboxPool,
} from "../runner/mod.ts";
import { generateKey, sha256Ref, verifyReceipt } from "../schemas/mod.ts";
import { alive, example, ROOT, tempDir, text } from "./helpers.ts";

async function job(
  name: string,
  options: Partial<SandboxJob> = {},
): Promise<SandboxJob> {
  // Sandboxes run metered modules only (their wall clock needs the checks).
  const module = instrumentFuel(example(name)).bytes;
  return {
    module,
    moduleKey: await sha256Ref(module),
    programName: name,
    args: [],
    env: {},
    stdin: new Uint8Array(),
    memoryBytes: 64 * MIB,
    outputLimit: MIB,
    timeoutMs: 10_000,
    ...options,
  };
}

Deno.test("sandbox process holds no write, net, env, run, ffi or sys permission", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/in`);
    await Deno.writeTextFile(`${dir}/in/file.txt`, "x");
    await Deno.writeTextFile(`${dir}/secret.txt`, "y");
    const { program, args } = defaultSandboxCommand([`${dir}/in`]);
    args[args.length - 1] = `${ROOT}/tests/fixtures/permission_probe.ts`;
    const out = await new Deno.Command(program, {
      args: [...args, `${dir}/in`, `${dir}/secret.txt`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, text(out.stderr));
    assert.deepEqual(text(out.stdout).trim().split("\n"), [
      "read-inside: allowed",
      "read-outside: NotCapable",
      "write-inside: NotCapable",
      "write-tmp: NotCapable",
      "listen: NotCapable",
      "connect: NotCapable",
      "env: NotCapable",
      "run: NotCapable",
      "ffi: NotCapable",
      "sys: NotCapable",
    ]);
  } finally {
    await cleanup();
  }
});

Deno.test("a sandbox started with forbidden permissions is refused", async () => {
  const pool = new SandboxPool({
    size: 1,
    command: (dirs) => {
      const command = defaultSandboxCommand(dirs);
      command.args.splice(1, 0, "--allow-write");
      return command;
    },
  });
  try {
    await assert.rejects(pool.run(await job("hello")), (error: Error) => {
      assert.ok(error instanceof SandboxError);
      assert.match(error.message, /forbidden permissions: write/);
      return true;
    });
  } finally {
    await pool.close();
  }
});

Deno.test("a sandbox that cannot load the code that runs guests answers its jobs with why, in one line", async () => {
  // A copy of the sandbox's entry and what it imports statically, without
  // the code that runs guests: the process starts and says it is ready,
  // but cannot load that code.
  const [dir, cleanup] = await tempDir();
  const files = [
    "sandbox_worker",
    "sandbox_command",
    "frames",
    "scratch_seed",
    "wasm_binary",
  ];
  for (const name of files) {
    await Deno.copyFile(`${ROOT}/runner/${name}.ts`, `${dir}/${name}.ts`);
  }
  const pool = new SandboxPool({
    size: 1,
    command: (dirs) => {
      const command = defaultSandboxCommand(dirs);
      command.args = command.args.map((arg) =>
        arg.startsWith("--allow-read=")
          ? `--allow-read=${dir}`
          : arg.endsWith("/sandbox_worker.ts")
          ? `file://${dir}/sandbox_worker.ts`
          : arg
      );
      return command;
    },
  });
  try {
    for (let i = 0; i < 2; i++) {
      await assert.rejects(pool.run(await job("hello")), (error: Error) => {
        assert.ok(error instanceof SandboxError, String(error));
        assert.match(
          error.message,
          /^sandbox cannot load the code that runs guests: .*execute\.ts/,
        );
        assert.equal(error.message.includes("\n"), false);
        return true;
      });
    }
  } finally {
    await pool.close();
    await cleanup();
  }
});

Deno.test("a sandbox process that ends before it is ready is reported with its last error line", async () => {
  const pool = new SandboxPool({
    size: 1,
    command: (dirs) => {
      const command = defaultSandboxCommand(dirs);
      command.args[command.args.length - 1] = "file:///nonexistent/entry.ts";
      return command;
    },
  });
  try {
    await assert.rejects(pool.run(await job("hello")), (error: Error) => {
      assert.ok(error instanceof SandboxError, String(error));
      assert.match(error.message, /^sandbox process did not start: .+/);
      assert.match(error.message, /nonexistent/);
      return true;
    });
  } finally {
    await pool.close();
  }
});

Deno.test("a prestarted sandbox process joins the next pool with the default command", async () => {
  prestartSandbox();
  const custom = new SandboxPool({ size: 1, command: defaultSandboxCommand });
  const pool = new SandboxPool({ size: 1 });
  let prestarted: number | undefined;
  try {
    assert.equal(custom.pids.length, 0, "a pool with its own command took it");
    [prestarted] = pool.pids;
    assert.ok(prestarted !== undefined && alive(prestarted));
    const out = await pool.run(await job("hello", { args: ["ok"] }));
    assert.equal(text(out.stdout), "ko\n");
    assert.deepEqual(pool.pids, [prestarted]);
  } finally {
    await pool.close();
    await custom.close();
  }
  assert.equal(alive(prestarted!), false, "close left the process running");
});

Deno.test("a runaway guest is stopped at its timeout by its own sandbox, which serves the next job", async () => {
  const pool = new SandboxPool({ size: 1 });
  try {
    await pool.warm();
    const [before] = pool.pids;
    for (const name of ["infinite_loop", "sleep_long"]) {
      const started = performance.now();
      const outcome = await pool.run(await job(name, { timeoutMs: 300 }));
      const elapsed = performance.now() - started;
      assert.equal(outcome.status, "timeout", name);
      assert.equal(outcome.exitCode, null);
      assert.match(
        outcome.error!,
        /^timeout: the guest ran longer than 0.3 s$/,
      );
      // Stopped by the sandbox itself, not by the pool's kill a second on.
      assert.ok(elapsed < 1000, `${name} took ${elapsed} ms`);
    }
    const next = await pool.run(await job("hello", { args: ["ok"] }));
    assert.equal(text(next.stdout), "ko\n");
    assert.deepEqual(pool.pids, [before], "the sandbox was replaced");
  } finally {
    await pool.close();
  }
});

Deno.test("a module without metering is refused by the sandbox", async () => {
  const pool = new SandboxPool({ size: 1 });
  try {
    const plain = example("hello");
    await assert.rejects(
      pool.run({ ...await job("hello"), module: plain, moduleKey: "plain" }),
      /^ModuleError: a wall-clock limit needs a metered module$/,
    );
  } finally {
    await pool.close();
  }
});

Deno.test("partial output written before a timeout is kept", async () => {
  const pool = new SandboxPool({ size: 1 });
  try {
    const outcome = await pool.run(
      await job("print_then_loop", { timeoutMs: 300 }),
    );
    assert.equal(outcome.status, "timeout");
    assert.equal(text(outcome.stdout), "hi\n");
  } finally {
    await pool.close();
  }
});

Deno.test("a full queue rejects with queue full", async () => {
  const pool = new SandboxPool({ size: 1, queueLimit: 1 });
  try {
    await pool.warm();
    const running = pool.run(await job("infinite_loop", { timeoutMs: 1500 }));
    await new Promise((r) => setTimeout(r, 50));
    const waiting = pool.run(await job("hello"));
    await assert.rejects(pool.run(await job("hello")), QueueFullError);
    assert.equal((await running).status, "timeout");
    assert.equal((await waiting).status, "exited");
  } finally {
    await pool.close();
  }
});

Deno.test("runJob signs a receipt that binds module, input and node", async () => {
  const pool = new SandboxPool({ size: 1 });
  const key = await generateKey();
  try {
    const stdin = new TextEncoder().encode("Hello, World!\n");
    const { receipt } = await runJob(
      { module: example("hello"), stdin, nonce: "ab".repeat(16) },
      { sandbox: pool, key },
    );
    assert.equal(receipt.stdout, "!dlroW ,olleH\n");
    assert.equal(receipt.node_peer_id, key.peerId);
    assert.equal(receipt.execution.status, "exited");
    assert.equal(receipt.limits.memory_mb, 128);
    const verdict = await verifyReceipt(receipt, {
      peerId: key.peerId,
      moduleHash: await sha256Ref(example("hello")),
      nonce: "ab".repeat(16),
    });
    assert.equal(verdict.valid, true);
    const tampered = { ...receipt, stdout: "forged\n" };
    assert.equal((await verifyReceipt(tampered)).valid, false);
  } finally {
    await pool.close();
  }
});

Deno.test("a module whose hash differs from its manifest is refused before running", async () => {
  const pool = new SandboxPool({ size: 1 });
  try {
    await assert.rejects(
      runJob({
        module: example("hello"),
        manifest: { version: 1, module_hash: `sha256:${"0".repeat(64)}` },
      }, { sandbox: pool, key: await generateKey() }),
      (error: Error) => {
        assert.ok(error instanceof JobRefused);
        assert.match(
          error.message,
          /^module hash mismatch: the manifest wants sha256:0{64}, the module is sha256:[0-9a-f]{64}$/,
        );
        return true;
      },
    );
    assert.equal(
      pool.pids.length,
      0,
      "a sandbox was started for a refused job",
    );
  } finally {
    await pool.close();
  }
});

Deno.test("binary output is carried as base64", async () => {
  const pool = new SandboxPool({ size: 1 });
  try {
    const { receipt } = await runJob(
      { module: example("hello"), stdin: new Uint8Array([0xff, 0xfe, 0x41]) },
      { sandbox: pool, key: await generateKey() },
    );
    assert.equal(receipt.output_encoding, "base64");
    assert.deepEqual(
      Uint8Array.from(atob(receipt.stdout), (c) => c.charCodeAt(0)),
      new Uint8Array([0x41, 0xfe, 0xff]),
    );
  } finally {
    await pool.close();
  }
});
