/**
 * Every entrypoint the way users run it: each deno task and the `./phase`
 * launcher with their own permission flags (never -A), a fresh HOME, and —
 * for the launcher — no deno on PATH at all.
 */
import assert from "node:assert/strict";
import {
  denoDir,
  ROOT,
  runTask,
  serveTask,
  stopAnnounced,
  tempDir,
  text,
} from "./helpers.ts";

const HELLO = `${ROOT}/examples/wasm/hello.wasm`;

/** Runs `deno task <name> <args>` as a user would, in a fresh HOME. */
const task = (home: string, name: string, args: string[]) =>
  runTask(home, name, args);

Deno.test({
  name:
    "every deno task runs with its own permissions in a fresh HOME (run, run:private, execute-job, verify, keygen, manifest, serve, provider, fetch)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [home, cleanup] = await tempDir();
    try {
      const run = await task(home, "run", [
        HELLO,
        "--receipt",
        `${home}/receipt.json`,
        "--",
        "Hello, World!",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, "!dlroW ,olleH\n");
      const private_ = await task(home, "run:private", [HELLO, "--", "quiet"]);
      assert.equal(private_.code, 0, private_.stderr);
      assert.equal(private_.stdout, "teiuq\n");
      const job = await task(home, "execute-job", [
        "--wasm",
        HELLO,
        "--args",
        "job",
      ]);
      assert.equal(job.code, 0, job.stderr);
      assert.match(job.stdout, /Receipt:\s+✓ Verified/);
      const verify = await task(home, "verify", [`${home}/receipt.json`]);
      assert.equal(verify.code, 0, verify.stderr);
      const keygen = await task(home, "keygen", [
        "--output",
        `${home}/release.key`,
      ]);
      assert.equal(keygen.code, 0, keygen.stderr);
      assert.match(keygen.stdout, /peer id:\s+12D3KooW/);
      await Deno.mkdir(`${home}/art/stable/x86_64`, { recursive: true });
      await Deno.copyFile(HELLO, `${home}/art/stable/x86_64/hello.wasm`);
      const generated = await task(home, "manifest", [
        "generate",
        "--artifacts",
        `${home}/art`,
        "--output",
        `${home}/art/stable/x86_64/manifest.json`,
      ]);
      assert.equal(generated.code, 0, generated.stderr);
      assert.match(generated.stderr, /^wrote .*manifest\.json: stable\/x86_64/);
      const signed = await task(home, "manifest", [
        "sign",
        `${home}/art/stable/x86_64/manifest.json`,
        "--key",
        `${home}/release.key`,
      ]);
      assert.equal(signed.code, 0, signed.stderr);
      // The node, its status and a download from it.
      const node = await serveTask(home);
      try {
        const status = await task(home, "provider", [
          "status",
          "--url",
          node.info.url,
        ]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /^health:\s+ok$/m);
        const hash = await crypto.subtle.digest(
          "SHA-256",
          await Deno.readFile(HELLO),
        );
        const hex = Array.from(
          new Uint8Array(hash),
          (b) => b.toString(16).padStart(2, "0"),
        ).join("");
        const fetched = await task(home, "fetch", [
          "--url",
          `${node.info.url}/stable/x86_64/hello.wasm`,
          "--sha256",
          hex,
          "--output",
          `${home}/downloads/new/hello.wasm`,
        ]);
        assert.equal(fetched.code, 0, fetched.stderr);
        assert.deepEqual(
          await Deno.readFile(`${home}/downloads/new/hello.wasm`),
          await Deno.readFile(HELLO),
        );
      } finally {
        const { status } = await stopAnnounced(node);
        assert.equal(status.code, 0);
      }
    } finally {
      await cleanup();
    }
  },
});

/** A PATH holding the tools the launcher may use, and no deno. */
async function pathWithoutDeno(dir: string): Promise<string> {
  const bin = `${dir}/bin`;
  await Deno.mkdir(bin);
  const tools = [
    "bash",
    "env",
    "head",
    "cut",
    "tr",
    "cat",
    "readlink",
    "dirname",
    "mkdir",
    "node",
    "npm",
    "npx",
    "sh",
  ];
  for (const tool of tools) {
    const found = await new Deno.Command("sh", {
      args: ["-c", `command -v ${tool}`],
      stdout: "piped",
    }).output();
    assert.equal(found.code, 0, `${tool} is needed for this test`);
    await Deno.symlink(text(found.stdout).trim(), `${bin}/${tool}`);
  }
  return bin;
}

Deno.test({
  name:
    "./phase works right after clone with no deno on PATH: help, run, and a refused comma path",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const [home, cleanup] = await tempDir();
    try {
      const path = await pathWithoutDeno(home);
      const cache = await denoDir();
      const launcher = (args: string[]) =>
        new Deno.Command(`${ROOT}/phase`, {
          args,
          cwd: home,
          env: {
            PATH: path,
            HOME: home,
            DENO_DIR: cache,
            // npm's own cache, so the pinned Deno is not downloaded again.
            npm_config_cache: Deno.env.get("npm_config_cache") ??
              `${Deno.env.get("HOME")}/.npm`,
            NO_COLOR: "1",
          },
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output();
      const which = await new Deno.Command("env", {
        args: ["PATH=" + path, "sh", "-c", "command -v deno"],
        stdout: "piped",
      }).output();
      assert.notEqual(which.code, 0, "deno must not be on the test's PATH");
      const help = await launcher(["--help"]);
      assert.equal(help.code, 0, text(help.stderr));
      assert.match(text(help.stdout), /usage: phase <command>/);
      const run = await launcher(["run", HELLO, "--", "Hello, World!"]);
      assert.equal(run.code, 0, text(run.stderr));
      assert.equal(text(run.stdout), "!dlroW ,olleH\n");
      // The second start finds the Deno it installed without npm.
      const again = await launcher(["version"]);
      assert.equal(again.code, 0, text(again.stderr));
      assert.doesNotMatch(text(again.stderr), /installing/);
      const comma = await launcher(["run", HELLO, "--data-dir", `${home}/a,b`]);
      assert.equal(comma.code, 2);
      assert.equal(
        text(comma.stderr),
        `phase: paths with a comma cannot be granted: ${home}/a,b\n`,
      );
    } finally {
      await cleanup();
    }
  },
});
