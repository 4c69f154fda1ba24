import assert from "node:assert/strict";
import { HELLO_WASM_BASE64 } from "../provider/embedded_hello.ts";
import { fromBase64 } from "../schemas/mod.ts";
import {
  cli,
  example,
  freshHomeEnv,
  ROOT,
  serveTask,
  serveTaskArgs,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";

Deno.test("the embedded hello module is examples/wasm/hello.wasm", () => {
  assert.deepEqual(fromBase64(HELLO_WASM_BASE64), example("hello"));
});

Deno.test("zero-configuration serve: key, seeded artifacts, health, clean stop", async () => {
  const [home, cleanup] = await tempDir();
  const served = await serveTask(home);
  const { info } = served;
  try {
    assert.match(info.peer_id, /^12D3KooW/);
    const health = await fetch(`${info.url}/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).disk_space_ok, true);
    const manifest = await (await fetch(`${info.url}/manifest.json`)).json();
    assert.ok(manifest.artifacts["hello.wasm"]);
    const job = await fetch(`${info.url}/jobs?arg=zero`, {
      method: "POST",
      headers: { "content-type": "application/wasm" },
      body: example("hello") as Uint8Array<ArrayBuffer>,
    });
    assert.equal((await job.json()).stdout, "orez\n");
    const status = await cli(["provider", "status", "--url", info.url]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^health:\s+ok$/m);
    assert.match(status.stdout, /1 jobs/);
    const data = `${home}/.local/share/phase`;
    assert.equal((await Deno.stat(`${data}/node.key`)).mode! & 0o777, 0o600);
    assert.equal([...Deno.readDirSync(`${data}/receipts`)].length, 1);
    // The data directory, and the launcher's note of the Deno it checked.
    assert.deepEqual([...Deno.readDirSync(home)].map((e) => e.name).sort(), [
      ".cache",
      ".local",
    ]);
    assert.deepEqual(
      [...Deno.readDirSync(`${home}/.cache/phase`)].map((e) => e.name),
      ["deno-2.9.6"],
    );
  } finally {
    const { status } = await stopAnnounced(served);
    await cleanup();
    assert.ok(
      status.code === 0 || status.signal === "SIGTERM",
      JSON.stringify(status),
    );
  }
});

Deno.test("serve reads but never writes an artifacts folder outside its data directory, refuses comma paths, and reports a busy port", async () => {
  const [home, cleanup] = await tempDir();
  const outside = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${outside}/stable/x86_64`, { recursive: true });
    await Deno.writeFile(
      `${outside}/stable/x86_64/hello.wasm`,
      await Deno.readFile(`${ROOT}/examples/wasm/hello.wasm`),
    );
    // An artifacts folder outside the data directory is granted read only:
    // it is served, and nothing is ever written into it.
    const outsider = await serveTask(home, ["--artifacts", outside]);
    try {
      const served = await fetch(
        `${outsider.info.url}/stable/x86_64/hello.wasm`,
      );
      assert.equal(served.status, 200);
      await served.body?.cancel();
      const manifest = await fetch(`${outsider.info.url}/manifest.json`);
      assert.equal(manifest.status, 200);
      await manifest.body?.cancel();
    } finally {
      await stopAnnounced(outsider);
    }
    const written: string[] = [];
    for await (const entry of Deno.readDir(`${outside}/stable/x86_64`)) {
      written.push(entry.name);
    }
    assert.deepEqual(written, ["hello.wasm"]);
    const denied = await new Deno.Command(Deno.execPath(), {
      args: serveTaskArgs(["--artifacts", "a,b"]),
      cwd: ROOT,
      env: await freshHomeEnv(home),
      stdout: "piped",
      stderr: "piped",
    }).output();
    // A path that would split a permission list is refused, in one line.
    assert.notEqual(denied.code, 0);
    const err = new TextDecoder().decode(denied.stderr).trim();
    assert.match(err, /^phase: paths with a comma cannot be granted: a,b$/);
    const first = await serveTask(home);
    try {
      const busy = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${ROOT}/main.ts`,
          "serve",
          "--port",
          String(first.info.port),
          "--no-dht",
          "--bind",
          "127.0.0.1",
          "--data-dir",
          `${home}/d2`,
        ],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(busy.code, 1);
      assert.match(
        new TextDecoder().decode(busy.stderr),
        /^phase: port \d+ on 127.0.0.1 is in use; pick another with --port\n$/,
      );
    } finally {
      await stopAnnounced(first);
    }
  } finally {
    await Deno.remove(outside, { recursive: true });
    await cleanup();
  }
});
