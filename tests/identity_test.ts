import assert from "node:assert/strict";
import { IdentityError, loadIdentity } from "../runner/mod.ts";
import { tempDir } from "./helpers.ts";

Deno.test("a node key is created once with mode 0600 and reloaded; a missing folder is an error unless asked for", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const path = `${dir}/nested/node.key`;
    await assert.rejects(
      loadIdentity({ path }),
      (error: Error) =>
        error instanceof IdentityError &&
        error.message ===
          `cannot write key file ${path}: the folder ${dir}/nested does not exist`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "a folder was created");
    const first = await loadIdentity({ path, createFolder: true });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(
      [...Deno.readDirSync(`${dir}/nested`)].map((e) => e.name),
      ["node.key"],
      "the key was not written whole by a rename, or a temporary stayed",
    );
    const again = await loadIdentity({ path });
    assert.equal(again.peerId, first.peerId);
    assert.match(first.peerId, /^12D3KooW/);
  } finally {
    await cleanup();
  }
});

Deno.test("corrupt, unreadable or exposed key files give one clear error", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const path = `${dir}/node.key`;
    await Deno.writeTextFile(path, "not json", { mode: 0o600 });
    await assert.rejects(
      loadIdentity({ path }),
      /key file .* is corrupt: not JSON/,
    );
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        type: "phase-node-key",
        version: 1,
        algorithm: "ed25519",
        seed: btoa("short"),
      }),
    );
    await assert.rejects(loadIdentity({ path }), /seed is not 32 bytes/);
    const good = await loadIdentity({ path: `${dir}/good.key` });
    const text = JSON.parse(await Deno.readTextFile(`${dir}/good.key`));
    text.peer_id = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB";
    await Deno.writeTextFile(path, JSON.stringify(text));
    await assert.rejects(
      loadIdentity({ path }),
      /peer_id does not match the seed/,
    );
    assert.ok(good.peerId);
    await Deno.chmod(`${dir}/good.key`, 0o644);
    await assert.rejects(
      loadIdentity({ path: `${dir}/good.key` }),
      (e: Error) => {
        assert.ok(e instanceof IdentityError);
        assert.match(
          e.message,
          /readable by others \(mode 644\); run: chmod 600/,
        );
        return true;
      },
    );
    await Deno.mkdir(`${dir}/adir`);
    await assert.rejects(
      loadIdentity({ path: `${dir}/adir` }),
      /is not a file/,
    );
  } finally {
    await cleanup();
  }
});

Deno.test("an ephemeral key writes nothing", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const a = await loadIdentity({ path: `${dir}/node.key`, ephemeral: true });
    const b = await loadIdentity({ path: `${dir}/node.key`, ephemeral: true });
    assert.notEqual(a.peerId, b.peerId);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await cleanup();
  }
});
