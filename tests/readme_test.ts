/**
 * The README's examples, as written: every `./phase` line of its shell blocks
 * that runs on its own (jobs, receipts, keys, manifests) runs in a fresh
 * folder and HOME, the way a user copies it after cloning. Placeholders
 * (`DIR`) become a prepared artifacts folder. The network examples run as
 * written too, in a network namespace of their own; the boot examples
 * (root, QEMU) are the boot tests' job.
 */
import assert from "node:assert/strict";
import { freshHomeEnv, netns, ROOT, tempDir } from "./helpers.ts";

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

/**
 * A long-running README line started in the network namespace `ns`; its
 * stdout is read until `ready` matches, which is returned with the process.
 */
async function startReadmeLine(
  ns: string,
  command: string,
  options: { cwd: string; env: Record<string, string>; ready: RegExp },
): Promise<{ child: Deno.ChildProcess; match: RegExpMatchArray }> {
  // `ip netns exec` and `bash -c` both exec, and so does ./phase: the PID
  // is the node's own, so SIGTERM reaches it.
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, "bash", "-c", `exec ${command}`],
    cwd: options.cwd,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  for (;;) {
    const match = seen.match(options.ready);
    if (match) {
      reader.releaseLock();
      return { child, match };
    }
    const { done, value } = await reader.read();
    if (done) {
      throw new Error(
        `${command} ended before it was ready:\n${seen}\n${await new Response(
          child.stderr,
        ).text()}`,
      );
    }
    seen += value;
  }
}

async function stopReadmeLine(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.status;
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
}

Deno.test({
  name:
    "the README's network examples run as written: two nodes on the ports it names, discover, submit, manifest verify, provider status",
  sanitizeResources: false,
  fn: async () => {
    // The README names fixed ports (8080, 4001, ...): a network namespace of
    // this test's own keeps them from meeting any other process's.
    const [ns, removeNs] = await netns();
    const [dir, cleanup] = await tempDir();
    const started: Deno.ChildProcess[] = [];
    try {
      await Deno.symlink(`${ROOT}/phase`, `${dir}/phase`);
      await Deno.symlink(`${ROOT}/examples`, `${dir}/examples`);
      const env = await freshHomeEnv(dir);
      const commands = await readmeLines();
      const find = (pattern: RegExp) => {
        const line = commands.find((l) => pattern.test(l.command));
        assert.ok(line, `the README no longer shows a line like ${pattern}`);
        return line;
      };
      // Placeholders: the README's /tmp/a and /tmp/b become this test's.
      const local = (command: string) =>
        command.replaceAll("/tmp/a", `${dir}/a`).replaceAll(
          "/tmp/b",
          `${dir}/b`,
        );
      const first = find(
        /^\.\/phase node .*--listen \/ip4\/127\.0\.0\.1\/tcp\/4001 /,
      );
      const second = find(/^\.\/phase node .*--bootstrap /);
      const discover = find(/^\.\/phase discover /);
      const submit = find(/^\.\/phase submit /);
      const verify = find(/^\.\/phase manifest verify http:\/\/HOST:8080\//);
      const status = find(/^\.\/phase provider status /);

      const peerId = /\/ip4\/127\.0\.0\.1\/tcp\/4001\/p2p\/(12D3KooW\w+)/;
      const one = await startReadmeLine(ns, local(first.command), {
        cwd: dir,
        env,
        ready: peerId,
      });
      started.push(one.child);
      const two = await startReadmeLine(ns, local(second.command), {
        cwd: dir,
        env,
        ready: /\/tcp\/4002\/p2p\/12D3KooW\w+/,
      });
      started.push(two.child);

      const inNs = async (command: string) => {
        const out = await new Deno.Command("ip", {
          args: ["netns", "exec", ns, "bash", "-c", command],
          cwd: dir,
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(out.stdout);
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, `${command}\n${stdout}\n${stderr}`);
        return { stdout, stderr };
      };
      // "lists both": the second node may need a moment to be found.
      let listed = "";
      for (let attempt = 0; attempt < 10; attempt++) {
        listed = (await inNs(discover.command)).stdout;
        if ((listed.match(/12D3KooW\w+/g) ?? []).length >= 2) break;
      }
      assert.ok(
        listed.includes(one.match[1]),
        `discover did not list the first node:\n${listed}`,
      );
      assert.equal(
        new Set(listed.match(/12D3KooW\w+/g)).size,
        2,
        `discover did not list both nodes:\n${listed}`,
      );

      const ran = await inNs(submit.command);
      assert.equal(ran.stdout.trim(), "!dlroW ,olleH");
      assert.match(ran.stderr, /receipt ✓ verified, signed by 12D3KooW/);

      // The first node serves its seeded artifacts, signed by its own key.
      await inNs(
        verify.command.replace("HOST", "127.0.0.1").replace(
          "12D3KooW…",
          one.match[1],
        ),
      );
      const health = await inNs(status.command.replace("VM1", "127.0.0.1"));
      assert.match(health.stdout, new RegExp(one.match[1]));
    } finally {
      for (const child of started) await stopReadmeLine(child);
      await removeNs();
      await cleanup();
    }
  },
});
