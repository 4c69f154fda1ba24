/**
 * The WASI suite's directories (examples/src/wasi_suite.c): a read-only
 * /data, a writable /rw (a fresh copy per call) and the seed of /tmp.
 */
import type { SeedEntry } from "../runner/scratch_seed.ts";
import { tempDir } from "./helpers.ts";

/** What the suite's scratch directory starts with. */
export const SUITE_SEED: SeedEntry[] = [
  { path: "seed", kind: "dir" },
  {
    path: "seed/a.txt",
    kind: "file",
    data: new TextEncoder().encode("seeded\n"),
  },
  { path: "seed/link", kind: "symlink", target: "a.txt" },
];

/** The suite's host directories: read-only `data` and writable `rw`. */
export async function fixture(): Promise<
  [{ data: string; rw: string; root: string }, () => Promise<void>]
> {
  const [root, cleanup] = await tempDir();
  await Deno.writeTextFile(`${root}/outside.txt`, "secret\n");
  for (const name of ["data", "rw"]) {
    const dir = `${root}/${name}`;
    await Deno.mkdir(`${dir}/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/hello.txt`, "hello, phase\n");
    await Deno.writeTextFile(`${dir}/sub/inner.txt`, "inner\n");
    await Deno.symlink("hello.txt", `${dir}/link_in`);
    await Deno.symlink("../outside.txt", `${dir}/link_out`);
  }
  await Deno.symlink("..", `${root}/rw/dir_out`);
  return [{ data: `${root}/data`, rw: `${root}/rw`, root }, cleanup];
}

/** The suite's preopens: /data read-only, /rw writable. */
export const suitePreopens = (dirs: { data: string; rw: string }) => [
  { host: dirs.data, guest: "/data" },
  { host: dirs.rw, guest: "/rw", writable: true },
];
