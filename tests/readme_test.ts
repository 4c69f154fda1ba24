/**
 * The README's examples, as written: every `./phase` line of its shell blocks
 * that runs on its own (jobs, receipts, keys, manifests) runs in a fresh
 * folder and HOME, the way a user copies it after cloning. Placeholders
 * (`DIR`) become a prepared artifacts folder; lines that need a server, a
 * network or root are the other tests' job.
 */
import assert from "node:assert/strict";
import { freshHomeEnv, ROOT, tempDir } from "./helpers.ts";

/** The README's shell lines, continuation lines joined, comments kept apart. */
async function readmeLines(): Promise<{ command: string; comment: string }[]> {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((block) => block[1].replace(/\\\n\s*/g, " ").split("\n"))
    .map((line) => {
      const hash = line.search(/\s#\s/);
      return hash < 0 ? { command: line.trim(), comment: "" } : {
        command: line.slice(0, hash).trim(),
        comment: line.slice(hash).replace(/^\s*#\s*/, "").trim(),
      };
    })
    .filter((line) => line.command !== "");
}

const STANDALONE =
  /^(echo "[^"]*" \| )?\.\/phase (run|receipt verify|keygen|manifest (generate|sign)) /;

Deno.test("the README's standalone examples run as written, after a clone, in a fresh HOME", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    await Deno.symlink(`${ROOT}/phase`, `${dir}/phase`);
    await Deno.symlink(`${ROOT}/examples`, `${dir}/examples`);
    await Deno.mkdir(`${dir}/art/stable/x86_64`, { recursive: true });
    await Deno.copyFile(
      `${ROOT}/examples/wasm/hello.wasm`,
      `${dir}/art/stable/x86_64/hello.wasm`,
    );
    // Each distinct command once: the README shows keygen in two sections,
    // and a second keygen rightly refuses to overwrite the key.
    const seen = new Set<string>();
    const lines = (await readmeLines()).filter((l) =>
      STANDALONE.test(l.command) && !seen.has(l.command) &&
      seen.add(l.command)
    );
    // The README must keep showing these, or this test shows nothing.
    for (const needed of ["run", "receipt verify", "keygen", "manifest sign"]) {
      assert.ok(
        lines.some((l) => l.command.includes(`./phase ${needed} `)),
        `the README no longer shows ./phase ${needed}`,
      );
    }
    for (const { command, comment } of lines) {
      const out = await new Deno.Command("bash", {
        args: ["-c", command.replaceAll("DIR", `${dir}/art`)],
        cwd: dir,
        env: await freshHomeEnv(dir),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `${command}\n${stderr}`);
      // A comment that is the expected output (the README shows it so).
      if (comment.startsWith("!")) assert.equal(stdout.trim(), comment);
    }
  } finally {
    await cleanup();
  }
});
