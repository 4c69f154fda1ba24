/**
 * A host process (or a second guest sharing the folder) swaps a path
 * component for a link out of the preopen in the middle of a WASI call,
 * after Phase walked the path and before it touched the host: read-only
 * and writable directories must still never read, write, create, move or
 * remove anything outside (runner/host_fs.ts says how; the threat model
 * says what remains).
 */
import assert from "node:assert/strict";
import { wasi } from "@bjorn3/browser_wasi_shim";
import { HostDirFd, hostFsHooks } from "../runner/host_fs.ts";
import { FILE_RIGHTS, READ_FILE_RIGHTS } from "../runner/wasi_rights.ts";
import { tempDir } from "./helpers.ts";

const FOLLOW = 1;

/**
 * root/dir (the preopen: a.txt, hello.txt, sub/inner.txt) and root/outside
 * (inner.txt holding a secret); `swap()` replaces dir/sub (or `name`) with
 * a link to root/outside.
 */
async function world(): Promise<{
  dir: string;
  outside: string;
  swap: (name?: string, target?: string) => void;
  cleanup: () => Promise<void>;
}> {
  const [root, cleanup] = await tempDir();
  const dir = `${root}/dir`;
  const outside = `${root}/outside`;
  await Deno.mkdir(`${dir}/sub`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${dir}/a.txt`, "inside a\n");
  await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
  await Deno.writeTextFile(`${dir}/sub/inner.txt`, "inside\n");
  await Deno.writeTextFile(`${outside}/inner.txt`, "secret\n");
  await Deno.writeTextFile(`${root}/outside.txt`, "secret file\n");
  const swap = (name = "sub", target = outside) => {
    Deno.renameSync(`${dir}/${name}`, `${dir}/${name}.before`);
    Deno.symlinkSync(target, `${dir}/${name}`);
  };
  return {
    dir,
    outside,
    swap,
    cleanup: async () => {
      hostFsHooks.afterWalk = undefined;
      await cleanup();
    },
  };
}

/** Swaps once, on the `nth` host operation of the next call. */
function swapOn(nth: number, swap: () => void): void {
  let calls = 0;
  hostFsHooks.afterWalk = () => {
    if (++calls === nth) swap();
  };
}

for (const writable of [false, true]) {
  const kind = writable ? "writable" : "read-only";

  Deno.test(`${kind}: a directory swapped for a link out after the walk is not read through`, async () => {
    const w = await world();
    try {
      const root = HostDirFd.preopen(w.dir, "/d", writable);
      swapOn(1, () => w.swap());
      const rights = writable ? FILE_RIGHTS : READ_FILE_RIGHTS;
      const opened = root.path_open(FOLLOW, "sub/inner.txt", 0, rights, 0n, 0);
      assert.equal(opened.ret, wasi.ERRNO_NOTCAPABLE);
      assert.equal(opened.fd_obj, null);
      swapOn(1, () => {});
      const stat = root.path_filestat_get(FOLLOW, "sub/inner.txt");
      // Now sub is a link out, seen by the walk itself.
      assert.equal(stat.ret, wasi.ERRNO_NOTCAPABLE);
    } finally {
      await w.cleanup();
    }
  });

  Deno.test(`${kind}: a file swapped for a link out after the walk is not opened`, async () => {
    const w = await world();
    try {
      const root = HostDirFd.preopen(w.dir, "/d", writable);
      swapOn(1, () => w.swap("hello.txt", "../outside.txt"));
      const rights = writable ? FILE_RIGHTS : READ_FILE_RIGHTS;
      const opened = root.path_open(FOLLOW, "hello.txt", 0, rights, 0n, 0);
      assert.equal(opened.ret, wasi.ERRNO_NOTCAPABLE);
      // A truncating open leaves the outside file whole.
      if (writable) {
        Deno.removeSync(`${w.dir}/hello.txt`);
        Deno.renameSync(`${w.dir}/hello.txt.before`, `${w.dir}/hello.txt`);
        swapOn(1, () => w.swap("hello.txt", "../outside.txt"));
        const truncating = root.path_open(
          FOLLOW,
          "hello.txt",
          wasi.OFLAGS_TRUNC,
          FILE_RIGHTS,
          0n,
          0,
        );
        assert.equal(truncating.ret, wasi.ERRNO_NOTCAPABLE);
      }
      const outside = `${w.dir}/../outside.txt`;
      assert.equal(Deno.readTextFileSync(outside), "secret file\n");
    } finally {
      await w.cleanup();
    }
  });
}

Deno.test("writable: creating, making, removing and moving under a swapped directory stay inside", async () => {
  const w = await world();
  try {
    const root = HostDirFd.preopen(w.dir, "/d", true);
    const created = () =>
      root.path_open(
        FOLLOW,
        "sub/new.txt",
        wasi.OFLAGS_CREAT,
        FILE_RIGHTS,
        0n,
        0,
      );
    swapOn(1, () => w.swap());
    assert.equal(created().ret, wasi.ERRNO_NOTCAPABLE);
    // Put sub back for each next call, and swap again during it.
    const again = () => {
      Deno.removeSync(`${w.dir}/sub`);
      Deno.renameSync(`${w.dir}/sub.before`, `${w.dir}/sub`);
      swapOn(1, () => w.swap());
    };
    again();
    assert.equal(
      root.path_create_directory("sub/made"),
      wasi.ERRNO_NOTCAPABLE,
    );
    again();
    assert.equal(
      root.path_unlink_file("sub/inner.txt"),
      wasi.ERRNO_NOTCAPABLE,
    );
    again();
    assert.equal(
      root.path_filestat_set_times(FOLLOW, "sub/inner.txt", 0n, 0n, 8),
      wasi.ERRNO_NOTCAPABLE,
    );
    again();
    // Into the swapped directory: refused where it lands.
    assert.equal(
      root.move("rename", "a.txt", false, root, "sub/stolen.txt"),
      wasi.ERRNO_NOTCAPABLE,
    );
    again();
    assert.equal(
      root.move("link", "a.txt", false, root, "sub/stolen.txt"),
      wasi.ERRNO_NOTCAPABLE,
    );
    // Out of it, swapped after the source was looked at (the second host
    // step): what arrives is not what was looked at, and is put back.
    for (const [kind, name] of [["rename", "moved"], ["link", "linked"]]) {
      Deno.removeSync(`${w.dir}/sub`);
      Deno.renameSync(`${w.dir}/sub.before`, `${w.dir}/sub`);
      swapOn(2, () => w.swap());
      assert.equal(
        root.move(
          kind as "rename" | "link",
          "sub/inner.txt",
          false,
          root,
          `${name}.txt`,
        ),
        wasi.ERRNO_NOTCAPABLE,
        kind,
      );
    }
    hostFsHooks.afterWalk = undefined;
    // Outside: untouched. Inside: nothing arrived.
    assert.deepEqual(
      [...Deno.readDirSync(w.outside)].map((e) => e.name),
      ["inner.txt"],
    );
    assert.equal(Deno.readTextFileSync(`${w.outside}/inner.txt`), "secret\n");
    assert.equal(Deno.readTextFileSync(`${w.dir}/a.txt`), "inside a\n");
    for (const name of ["moved.txt", "linked.txt"]) {
      assert.throws(() => Deno.lstatSync(`${w.dir}/${name}`));
    }
  } finally {
    await w.cleanup();
  }
});

Deno.test("a FIFO in a host directory is refused, never opened (opening one blocks)", async () => {
  const w = await world();
  try {
    const made = await new Deno.Command("mkfifo", { args: [`${w.dir}/fifo`] })
      .output();
    assert.equal(made.code, 0, "mkfifo is needed");
    for (const writable of [false, true]) {
      const root = HostDirFd.preopen(w.dir, "/d", writable);
      const opened = root.path_open(FOLLOW, "fifo", 0, READ_FILE_RIGHTS, 0n, 0);
      assert.equal(opened.ret, wasi.ERRNO_NOTSUP);
    }
  } finally {
    await w.cleanup();
  }
});
