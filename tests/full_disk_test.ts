/**
 * Operator mistakes, played with the ./phase launcher the way the README
 * runs it: a node started on a full disk.
 */
import assert from "node:assert/strict";
import {
  freshHomeEnv,
  loopbackServeArgs,
  ROOT,
  runOk,
  tempDir,
} from "./helpers.ts";

/** A full 1 MiB tmpfs mounted at a fresh folder; unmounted and removed after. */
async function fullDisk(): Promise<[string, () => Promise<void>]> {
  if (Deno.uid() !== 0) {
    throw new Error(
      "this test needs root to mount a small tmpfs (mount -t tmpfs)",
    );
  }
  const [dir, cleanup] = await tempDir();
  await runOk("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
  // Fill it: the write stops at ENOSPC.
  await new Deno.Command("sh", {
    args: ["-c", `head -c 2000000 /dev/zero > ${dir}/fill`],
    stderr: "null",
  }).output();
  return [dir, async () => {
    await runOk("umount", [dir]);
    await cleanup();
  }];
}

Deno.test("operator mistake: serve on a full disk leaves no empty hello.wasm to be served as an artifact", async () => {
  const [disk, unmount] = await fullDisk();
  const [home, cleanup] = await tempDir();
  try {
    const data = `${disk}/data`;
    const child = new Deno.Command(`${ROOT}/phase`, {
      args: [...loopbackServeArgs(data), "--key", `${home}/node.key`],
      cwd: ROOT,
      env: await freshHomeEnv(home),
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderrText = new Response(child.stderr).text();
    // Starting anyway (its /health then says "disk full") is fine too.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = await Promise.race([
      child.status.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), 30_000);
      }),
    ]);
    clearTimeout(timer);
    if (started) child.kill("SIGTERM");
    const status = await child.status;
    const stderr = await stderrText;
    // It never leaves a truncated file: "Every file Phase writes is
    // written to a temporary file in the same folder and renamed into
    // place". A zero-byte hello.wasm is served by the next start, with a
    // manifest naming the empty file's sha256.
    const seeded = `${data}/artifacts/stable/x86_64/hello.wasm`;
    const size = await Deno.stat(seeded).then((s) => s.size, () => null);
    assert.ok(size === null || size > 0, "an empty hello.wasm was left");
    // It may refuse to start, but as a one-line operational error (exit 1,
    // the README's rule; 70 is for bugs), not an "internal error".
    if (!started) {
      assert.equal(status.code, 1, `exit ${status.code}: ${stderr}`);
      assert.doesNotMatch(stderr, /internal error/);
    }
  } finally {
    await cleanup();
    await unmount();
  }
});
