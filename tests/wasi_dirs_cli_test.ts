/**
 * Writable and seeded directories the way users run them: `./phase run`
 * with its launcher's permission flags and a fresh HOME.
 */
import assert from "node:assert/strict";
import { examplePath, freshHomeEnv, ROOT, tempDir, text } from "./helpers.ts";
import { fixture } from "./wasi_fixture.ts";

async function phase(
  args: string[],
  home: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(`${ROOT}/phase`, {
    args,
    cwd: ROOT,
    env: await freshHomeEnv(home),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Every file and link under `dir` with its content or target. */
function snapshot(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (
    const entry of [...Deno.readDirSync(dir)].sort((a, b) =>
      a.name < b.name ? -1 : 1
    )
  ) {
    const path = `${dir}/${entry.name}`;
    const name = prefix + entry.name;
    if (entry.isSymlink) out.push(`${name}->${Deno.readLinkSync(path)}`);
    else if (entry.isDirectory) {
      out.push(`${name}/`, ...snapshot(path, `${name}/`));
    } else out.push(`${name}=${Deno.readTextFileSync(path)}`);
  }
  return out;
}

Deno.test("phase run: a Rust program edits its --dir :rw folder and a seeded --scratch; the seed's folder is untouched", async () => {
  const [home, cleanupHome] = await tempDir();
  const [dirs, cleanup] = await fixture();
  try {
    // Named through a symbolic link: the sandbox is granted the real folder.
    Deno.symlinkSync(dirs.rw, `${dirs.root}/rw_link`);
    const rust = await phase([
      "run",
      examplePath("rust_fs"),
      "--dir",
      `${dirs.root}/rw_link:/work:rw`,
      "--",
      "/work",
      "--no-symlink",
    ], home);
    assert.equal(rust.code, 0, rust.stderr);
    assert.equal(rust.stdout, "rust_fs: ok\n");
    // The suite's writable case changes the host folder for real.
    const suite = await phase([
      "run",
      examplePath("wasi_suite"),
      "--dir",
      `${dirs.data}:/data`,
      "--dir",
      `${dirs.rw}:/rw:rw`,
      "--scratch",
      "/tmp",
      "--",
      "rw_dir",
    ], home);
    assert.equal(suite.code, 0, suite.stdout);
    assert.equal(
      Deno.readTextFileSync(`${dirs.rw}/hello.txt`),
      "rewritten\nmore\n",
    );
    assert.equal(Deno.readTextFileSync(`${dirs.rw}/back.txt`).length, 8);
    assert.equal(Deno.readTextFileSync(`${dirs.root}/outside.txt`), "secret\n");
    // A seeded scratch: the guest changes its copy, the folder stays.
    const seed = `${dirs.root}/seed_src`;
    Deno.mkdirSync(`${seed}/seed`, { recursive: true });
    Deno.writeTextFileSync(`${seed}/seed/a.txt`, "seeded\n");
    Deno.symlinkSync("a.txt", `${seed}/seed/link`);
    const before = snapshot(seed);
    const seeded = await phase([
      "run",
      examplePath("wasi_suite"),
      "--dir",
      `${dirs.data}:/data`,
      "--dir",
      `${dirs.rw}:/rw`,
      "--scratch",
      `/tmp=${seed}`,
      "--json",
      "--",
      "seeded",
    ], home);
    assert.equal(seeded.code, 0, seeded.stderr);
    const receipt = JSON.parse(seeded.stdout);
    assert.match(receipt.stdout, /^ok seeded$/m);
    assert.deepEqual(
      receipt.limits.preopens.map((p: { access: string }) => p.access),
      [
        "read-only",
        "read-only",
        "scratch",
      ],
    );
    assert.match(
      receipt.limits.preopens[2].seed_sha256,
      /^sha256:[0-9a-f]{64}$/,
    );
    assert.ok(
      !seeded.stdout.includes(dirs.root),
      "a host path is in the receipt",
    );
    assert.deepEqual(snapshot(seed), before);
    // The Rust program in a seeded scratch, symbolic links included.
    const inMemory = await phase([
      "run",
      examplePath("rust_fs"),
      "--scratch",
      `/work=${seed}`,
    ], home);
    assert.equal(inMemory.code, 0, inMemory.stderr);
    assert.deepEqual(snapshot(seed), before);
  } finally {
    await cleanup();
    await cleanupHome();
  }
});

Deno.test("phase run: :rw with --private, a missing or oversized seed folder are one line each", async () => {
  const [home, cleanupHome] = await tempDir();
  const [dirs, cleanup] = await fixture();
  try {
    const cases: [string[], RegExp][] = [
      [
        ["--dir", `${dirs.rw}:/rw:rw`, "--private"],
        /^phase: --dir …:rw is refused in private mode: .*--scratch GUEST=HOSTDIR/,
      ],
      [
        ["--scratch", `/tmp=${dirs.root}/missing`],
        /^phase: --scratch .*\/missing: /,
      ],
      [
        ["--scratch", `/tmp=${dirs.root}/big`, "--memory", "1"],
        /^phase: --scratch .*\/big does not fit the job's memory budget of 1048576 bytes$/,
      ],
      [["--dir", `${dirs.rw}:`], /^phase: --dir wants HOST:GUEST\[:rw\|:ro\]/],
    ];
    Deno.mkdirSync(`${dirs.root}/big`);
    Deno.writeFileSync(
      `${dirs.root}/big/blob`,
      new Uint8Array(2 * 1024 * 1024),
    );
    for (const [flags, message] of cases) {
      const out = await phase(["run", examplePath("hello"), ...flags], home);
      assert.notEqual(out.code, 0, flags.join(" "));
      assert.match(out.stderr.trim(), message, flags.join(" "));
      assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
    }
    // A remote job's scratch must be seeded from a folder.
    const submit = await phase([
      "submit",
      examplePath("hello"),
      "--peer",
      "12D3KooWKeY6XF88BtCGVS9wiR4SoXoYJC4dMVkVCPryHRN9tcWu",
      "--scratch",
      "/w",
    ], home);
    assert.equal(submit.code, 2, submit.stderr);
    assert.match(
      submit.stderr.trim(),
      /^phase: --scratch for a remote job wants GUEST=HOSTDIR/,
    );
    // Nothing was written into the folder the private run named.
    assert.deepEqual(
      [...Deno.readDirSync(dirs.rw)].map((e) => e.name).sort(),
      ["dir_out", "hello.txt", "link_in", "link_out", "sub"],
    );
  } finally {
    await cleanup();
    await cleanupHome();
  }
});

Deno.test("--dir and --scratch refuse mistyped modes and guest paths the guest could not use, in one line", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const refused: [string[], RegExp][] = [
      [["--dir", `${dir}:/g:RW`], /--dir mode must be rw or ro, got RW/],
      [["--dir", `${dir}:/g:rx`], /--dir mode must be rw or ro, got rx/],
      [["--dir", `${dir}:/g:rw:rw`], /--dir wants HOST:GUEST\[:rw\|:ro\]/],
      [
        ["--dir", `${dir}:/g/../x`],
        /--dir the guest path "\/g\/..\/x" must be absolute/,
      ],
      [
        ["--dir", `${dir}:data`],
        /--dir the guest path "data" must be absolute/,
      ],
      [
        ["--scratch", "/.."],
        /--scratch the guest path "\/.." must be absolute/,
      ],
      [["--scratch", "/w//x"], /--scratch the guest path/],
    ];
    for (const [args, expected] of refused) {
      const out = await phase(
        ["run", examplePath("hello"), "--ephemeral", ...args],
        dir,
      );
      assert.equal(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
      assert.match(out.stderr, expected);
      assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
    }
    const ok = await phase(
      ["run", examplePath("hello"), "--ephemeral", "--dir", `${dir}:/g:ro`],
      dir,
    );
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await cleanup();
  }
});
