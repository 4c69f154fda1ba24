/**
 * Deno's own caches baked into the initramfs. Deno analyses a module's
 * imports (a parse of the whole 4 MB bundle) and compiles it before it runs
 * a line; it keeps both results in DENO_DIR, keyed by the file's URL and a
 * hash of its text, and skips the work when they are there. In a fresh VM
 * under emulation that work costs seconds at each of the boot's Deno starts
 * (the boot program in both stages, the sandbox process of the hello job).
 *
 * At build time the staged tree's own deno runs the bundle once (a hello
 * job through `execute-job`, which starts the sandbox process too) inside
 * the tree (chroot), so the caches hold the very paths the VM uses. It runs
 * twice, and only the entries both runs wrote byte for byte are kept,
 * written into fresh SQLite files in a fixed order: the image stays
 * reproducible. A cache entry whose hash does not match its file is ignored
 * by Deno, so a stale or altered cache can only cost time, never change
 * what runs.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { writeHelloJob } from "../provider/mod.ts";
import { BuildError } from "./tool.ts";

/** Where the baked DENO_DIR sits inside the initramfs. */
export const IMAGE_DENO_DIR = "/phase/deno";

/**
 * The sandbox process's script: its two threads race to write its code
 * cache entry, so the entry differs from build to build; it is left out.
 */
const UNSTABLE_SPECIFIERS = ["file:///phase/sandbox_worker.js"];

/** The cache files of DENO_DIR that are worth shipping. */
const CACHE_FILES = [
  "dep_analysis_cache_v2",
  "node_analysis_cache_v2",
  "v8_code_cache_v2",
];

/** What {@link bakeDenoCache} needs. */
export interface BakeOptions {
  /** The staged initramfs tree (holds /bin/deno and the bundle). */
  stage: string;
  /** Deno permission flags of the boot program. */
  permissions: string[];
  /** The bundle's entry inside the tree. */
  program: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/**
 * Fills `<stage>/phase/deno` with the entries of Deno's caches that two
 * warm-up runs of the bundle agree on. Needs root (unshare, chroot) and a tree for
 * this machine's architecture; returns false (nothing baked) otherwise.
 */
export async function bakeDenoCache(options: BakeOptions): Promise<boolean> {
  const { stage } = options;
  if (Deno.uid() !== 0) return false;
  const work = "/tmp/phase-warm";
  await Deno.mkdir(`${stage}${work}/job`, { recursive: true });
  try {
    await writeHelloJob(`${stage}${work}/job`);
    const runs: string[] = [];
    for (const name of ["a", "b"]) {
      const denoDir = `${work}/deno-${name}`;
      const home = `${work}/home-${name}`;
      // What the image runs: a hello job (the CLI, the runner and the
      // sandbox process), the boot program up to its first network step
      // (no pinned key: it stops there, having loaded its modules), and
      // libp2p.
      const commands: [string[], number][] = [
        [[
          "execute-job",
          "--ephemeral",
          "--data-dir",
          home,
          "--wasm",
          `${work}/job/hello.wasm`,
        ], 0],
        [["boot", "run", "--cmdline", "phase.stage=2"], 1],
        // libp2p's chunks (provider discovery in local and internet mode,
        // and announcing after the receipt): loaded, then a usage error.
        [["discover", "--timeout", "1", "--json"], 2],
      ];
      for (const [args, expected] of commands) {
        // A mount namespace of its own with /proc (Deno needs it), gone
        // when the run ends.
        const out = await new Deno.Command("unshare", {
          args: [
            "--mount",
            "--pid",
            "--fork",
            `--mount-proc=${stage}/proc`,
            "chroot",
            stage,
            "/bin/deno",
            "run",
            ...options.permissions.map((flag) =>
              flag.startsWith("--allow-write") ? `--allow-write=${work}` : flag
            ),
            options.program,
            ...args,
          ],
          clearEnv: true,
          env: {
            PATH: "/bin:/sbin",
            HOME: home,
            DENO_DIR: denoDir,
            NO_COLOR: "1",
          },
          stdout: "piped",
          stderr: "piped",
        }).output();
        if (out.code !== expected) {
          throw new BuildError(
            `the bundle does not run inside the initramfs (${
              args[0]
            }, exit ${out.code}): ${
              new TextDecoder().decode(out.stderr).trim().slice(-1500)
            }${new TextDecoder().decode(out.stdout).trim().slice(-500)}`,
          );
        }
      }
      runs.push(`${stage}${denoDir}`);
    }
    const target = `${stage}${IMAGE_DENO_DIR}`;
    await Deno.mkdir(target, { recursive: true });
    let kept = 0;
    let dropped = 0;
    for (const file of CACHE_FILES) {
      const counts = agreedCache(
        runs.map((dir) => `${dir}/${file}`),
        `${target}/${file}`,
      );
      kept += counts.kept;
      dropped += counts.dropped;
    }
    options.log?.(
      `baked Deno's module and code caches: ${kept} entries (${dropped} differed between runs)`,
    );
    return true;
  } finally {
    await Deno.remove(`${stage}${work}`, { recursive: true }).catch(() => {});
  }
}

type Row = Record<string, unknown>;

function rowKey(row: Row): string {
  return JSON.stringify(
    Object.values(row),
    (_, v) =>
      v instanceof Uint8Array
        ? Array.from(v).join(",")
        : typeof v === "bigint"
        ? String(v)
        : v,
  );
}

/**
 * Writes `output`, a new SQLite file with the tables of the sources and
 * only the rows every source holds identically, in sorted order (so the
 * same inputs give the same bytes).
 */
function agreedCache(
  sources: string[],
  output: string,
): { kept: number; dropped: number } {
  const schema = new Map<string, string>();
  const perSource: Map<string, Map<string, Row>>[] = [];
  for (const source of sources) {
    try {
      Deno.statSync(source);
    } catch {
      return { kept: 0, dropped: 0 };
    }
    const db = new DatabaseSync(source, { readOnly: true });
    try {
      const tables = new Map<string, Map<string, Row>>();
      const listed = db.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      ).all() as { name: string; sql: string }[];
      for (const { name, sql } of listed) {
        if (!/^[a-z_0-9]+$/.test(name)) continue;
        schema.set(name, sql);
        const statement = db.prepare(`SELECT * FROM "${name}"`);
        statement.setReadBigInts(true);
        tables.set(
          name,
          new Map((statement.all() as Row[]).map((row) => [rowKey(row), row])),
        );
      }
      perSource.push(tables);
    } finally {
      db.close();
    }
  }
  const out = new DatabaseSync(output);
  let kept = 0;
  let dropped = 0;
  try {
    out.exec("BEGIN");
    for (const [name, sql] of [...schema].sort(([a], [b]) => a < b ? -1 : 1)) {
      out.exec(sql);
      const [first, ...others] = perSource.map((t) => t.get(name) ?? new Map());
      for (const key of [...first.keys()].sort()) {
        if (
          !others.every((rows) => rows.has(key)) ||
          UNSTABLE_SPECIFIERS.includes(first.get(key)!.specifier as string)
        ) {
          dropped++;
          continue;
        }
        const row = first.get(key)!;
        const columns = Object.keys(row);
        out.prepare(
          `INSERT INTO "${name}" (${
            columns.map((c) => `"${c}"`).join(", ")
          }) VALUES (${columns.map(() => "?").join(", ")})`,
        ).run(
          ...(Object.values(
            row,
          ) as (string | number | bigint | Uint8Array | null)[]),
        );
        kept++;
      }
    }
    out.exec("COMMIT");
  } finally {
    out.close();
  }
  return { kept, dropped };
}
