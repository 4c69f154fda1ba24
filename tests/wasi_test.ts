/**
 * WASI preview1 behaviour, function by function: examples/src/wasi_suite.c
 * runs one case per guest run against a read-only host directory, a
 * writable one and a seeded scratch tree; this file runs every case and
 * proves that together they call every preview1 function.
 */
import assert from "node:assert/strict";
import { execute } from "../runner/execute.ts";
import { instrumentFuel, MIB, runJob, SandboxPool } from "../runner/mod.ts";
import { generateKey } from "../schemas/mod.ts";
import { example, text } from "./helpers.ts";
import { fixture, SUITE_SEED, suitePreopens } from "./wasi_fixture.ts";

/** Every function of wasi_snapshot_preview1. */
const PREVIEW1 = [
  "args_get",
  "args_sizes_get",
  "environ_get",
  "environ_sizes_get",
  "clock_res_get",
  "clock_time_get",
  "fd_advise",
  "fd_allocate",
  "fd_close",
  "fd_datasync",
  "fd_fdstat_get",
  "fd_fdstat_set_flags",
  "fd_fdstat_set_rights",
  "fd_filestat_get",
  "fd_filestat_set_size",
  "fd_filestat_set_times",
  "fd_pread",
  "fd_prestat_get",
  "fd_prestat_dir_name",
  "fd_pwrite",
  "fd_read",
  "fd_readdir",
  "fd_renumber",
  "fd_seek",
  "fd_sync",
  "fd_tell",
  "fd_write",
  "path_create_directory",
  "path_filestat_get",
  "path_filestat_set_times",
  "path_link",
  "path_open",
  "path_readlink",
  "path_remove_directory",
  "path_rename",
  "path_symlink",
  "path_unlink_file",
  "poll_oneoff",
  "proc_exit",
  "proc_raise",
  "sched_yield",
  "random_get",
  "sock_accept",
  "sock_recv",
  "sock_send",
  "sock_shutdown",
];

/** Each case of the suite and the functions whose behaviour it checks. */
const CASES: Record<string, string[]> = {
  args: ["args_get", "args_sizes_get"],
  environ: ["environ_get", "environ_sizes_get"],
  clocks: ["clock_res_get", "clock_time_get"],
  random: ["random_get"],
  poll: ["poll_oneoff"],
  proc_exit: ["proc_exit"],
  proc_raise: ["proc_raise"],
  sched_yield: ["sched_yield"],
  sockets: ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"],
  stdio: ["fd_read", "fd_write", "fd_fdstat_get", "fd_seek", "fd_tell"],
  prestat: ["fd_prestat_get", "fd_prestat_dir_name"],
  ro_read: [
    "path_open",
    "fd_read",
    "fd_seek",
    "fd_tell",
    "fd_pread",
    "fd_filestat_get",
    "fd_fdstat_get",
    "fd_advise",
    "fd_fdstat_set_rights",
    "fd_close",
  ],
  ro_refusals: [
    "path_open",
    "path_create_directory",
    "path_unlink_file",
    "path_remove_directory",
    "path_rename",
    "path_link",
    "path_symlink",
    "path_filestat_set_times",
    "fd_filestat_set_times",
    "fd_write",
    "fd_pwrite",
    "fd_filestat_set_size",
    "fd_allocate",
    "fd_fdstat_set_flags",
  ],
  ro_stat: ["path_filestat_get", "path_readlink", "fd_readdir"],
  scratch_file: [
    "path_open",
    "fd_filestat_set_size",
    "fd_allocate",
    "fd_pwrite",
    "fd_pread",
    "fd_sync",
    "fd_datasync",
    "fd_filestat_set_times",
    "path_filestat_set_times",
    "fd_fdstat_set_rights",
  ],
  scratch_append: ["fd_fdstat_set_flags", "fd_fdstat_get", "fd_write"],
  scratch_dirs: [
    "path_create_directory",
    "path_remove_directory",
    "path_unlink_file",
    "fd_readdir",
  ],
  scratch_links: ["path_link", "path_rename", "path_symlink", "path_readlink"],
  renumber: ["fd_renumber"],
  scratch_cap: ["fd_pwrite", "fd_filestat_set_size"],
  symlinks: [
    "path_symlink",
    "path_readlink",
    "path_filestat_get",
    "path_open",
    "path_unlink_file",
    "path_rename",
    "path_link",
    "path_remove_directory",
    "fd_readdir",
  ],
  rights: [
    "fd_fdstat_set_rights",
    "path_open",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_unlink_file",
    "path_remove_directory",
    "path_symlink",
    "path_readlink",
    "path_rename",
    "path_link",
  ],
  dir_fds: [
    "fd_read",
    "fd_pread",
    "fd_write",
    "fd_pwrite",
    "fd_tell",
    "fd_seek",
    "fd_allocate",
    "fd_filestat_set_size",
    "fd_filestat_get",
  ],
  seeded: ["path_open", "fd_pwrite", "path_readlink", "path_rename"],
  rw_dir: [
    "path_open",
    "fd_write",
    "fd_filestat_set_size",
    "fd_allocate",
    "fd_sync",
    "fd_filestat_set_times",
    "path_create_directory",
    "path_rename",
    "path_link",
    "path_filestat_set_times",
    "path_remove_directory",
    "path_unlink_file",
    "path_readlink",
    "path_symlink",
  ],
};

const suite = instrumentFuel(example("wasi_suite")).bytes;

function runSuite(args: string[], dirs: { data: string; rw: string }) {
  return execute({
    module: suite,
    moduleKey: "wasi_suite",
    fuel: 1e12,
    programName: "wasi_suite",
    args,
    env: { A: "1", UTF: "ü" },
    stdin: new TextEncoder().encode("stdin-data"),
    memoryBytes: 32 * MIB,
    outputLimit: MIB,
    preopens: suitePreopens(dirs),
    scratch: "/tmp",
    scratchSeed: SUITE_SEED,
  });
}

Deno.test("the WASI suite's cases call every preview1 function", () => {
  const imported = WebAssembly.Module.imports(
    new WebAssembly.Module(suite as Uint8Array<ArrayBuffer>),
  )
    .filter((i) => i.module === "wasi_snapshot_preview1")
    .map((i) => i.name);
  assert.deepEqual([...imported].sort(), [...PREVIEW1].sort());
  const covered = new Set(Object.values(CASES).flat());
  assert.deepEqual([...covered].sort(), [...PREVIEW1].sort());
});

Deno.test("the suite lists exactly the cases this file runs", async () => {
  const [data, cleanup] = await fixture();
  try {
    const out = runSuite([], data);
    assert.equal(out.exitCode, 0);
    assert.deepEqual(text(out.stdout).trim().split("\n"), Object.keys(CASES));
  } finally {
    await cleanup();
  }
});

for (const [name, functions] of Object.entries(CASES)) {
  Deno.test(`wasi ${name}: ${functions.join(", ")}`, async () => {
    const [data, cleanup] = await fixture();
    try {
      const out = runSuite([name, "héllo", "✓"], data);
      const stdout = text(out.stdout);
      assert.equal(out.status, "exited", `${out.error}\n${stdout}`);
      assert.equal(out.exitCode, name === "proc_exit" ? 7 : 0, stdout);
      assert.match(stdout, new RegExp(`^ok ${name}$`, "m"));
      if (name === "stdio") {
        assert.match(stdout, /to stdout/);
        assert.equal(text(out.stderr), "to stderr\n");
      }
    } finally {
      await cleanup();
    }
  });
}

Deno.test("the same cases pass inside a permission-less sandbox process", async () => {
  const [data, cleanup] = await fixture();
  const pool = new SandboxPool({ size: 1 });
  const key = await generateKey();
  try {
    // The sandbox may read only `data` and `rw`, and write only `rw`:
    // escapes must still be ENOTCAPABLE, never a permission error from the
    // host.
    for (
      const name of [
        "ro_refusals",
        "ro_stat",
        "scratch_links",
        "poll",
        "rw_dir",
        "seeded",
        "symlinks",
      ]
    ) {
      const { receipt } = await runJob({
        module: example("wasi_suite"),
        programName: "wasi_suite",
        args: [name, "héllo", "✓"],
        env: { A: "1", UTF: "ü" },
        stdin: new TextEncoder().encode("stdin-data"),
        memoryMb: 32,
        preopens: suitePreopens(data),
        scratch: "/tmp",
        scratchSeed: SUITE_SEED,
      }, { sandbox: pool, key });
      assert.equal(receipt.execution.exit_code, 0, receipt.stdout);
      assert.match(receipt.stdout, new RegExp(`^ok ${name}$`, "m"));
    }
  } finally {
    await pool.close();
    await cleanup();
  }
});
