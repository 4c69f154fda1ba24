/**
 * Builds the npm package of the SDK into `build/sdk/` (and, with `--pack`,
 * `build/sdk/phase-sdk-<version>.tgz` with `npm pack`): ESM and `.d.ts`
 * files made by `deno bundle` from the same sources as the Deno module, and
 * a package.json carrying Phase's version (deno.json's).
 *
 * - `dist/mod.js`: the core (client, HTTP transport, verification,
 *   comparison), bundled for browsers; it loads nothing platform-specific,
 *   so it runs in Node and Deno too.
 * - `dist/p2p.js`, `dist/local.js`: the libp2p and local transports, bundled
 *   for Node (libp2p inside). They import their error classes from
 *   `./mod.js`, so `instanceof` works across the entry points.
 *
 * Usage: deno task build:sdk [--pack]
 * @module
 */
import config from "../deno.json" with { type: "json" };
import { RUNTIME_VERSION } from "../runner/version.ts";

/** The package's name on npm. */
export const NPM_NAME = "@phase/sdk";

const ROOT = new URL("../", import.meta.url).pathname;
const OUT = `${ROOT}build/sdk`;

async function run(program: string, args: string[], cwd = ROOT) {
  const out = await new Deno.Command(program, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

function bundle(args: string[]) {
  return run(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--format",
    "esm",
    ...args,
  ]);
}

/** The package.json of the SDK. */
export function packageJson(): Record<string, unknown> {
  const entry = (name: string) => ({
    types: `./dist/${name}.d.ts`,
    default: `./dist/${name}.js`,
  });
  return {
    name: NPM_NAME,
    version: config.version,
    description:
      "Run WebAssembly jobs on Phase nodes and verify their signed receipts (Node, Deno, browsers)",
    license: "Apache-2.0",
    type: "module",
    exports: {
      ".": entry("mod"),
      "./p2p": entry("p2p"),
      "./local": entry("local"),
      "./package.json": "./package.json",
    },
    types: "./dist/mod.d.ts",
    files: ["dist/", "README.md"],
    engines: { node: ">=20" },
    // The p2p entry fills in what libp2p needs of the runtime when loaded.
    sideEffects: ["./dist/p2p.js"],
  };
}

/** Builds the package; returns its folder. */
export async function buildSdk(): Promise<string> {
  if (config.version !== RUNTIME_VERSION) {
    throw new Error(
      `deno.json's version ${config.version} is not the runtime's ${RUNTIME_VERSION}`,
    );
  }
  await Deno.remove(OUT, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${OUT}/dist`, { recursive: true });
  const scratch = await Deno.makeTempDir({ prefix: "phase-sdk-build-" });
  try {
    await bundle([
      "--platform",
      "browser",
      "--declaration",
      "-o",
      `${OUT}/dist/mod.js`,
      "sdk/mod.ts",
    ]);
    await bundle([
      "--platform",
      "deno",
      "--code-splitting",
      "--external",
      "./errors.ts",
      "--outdir",
      `${OUT}/dist`,
      "sdk/p2p.ts",
      "sdk/local.ts",
    ]);
    for (const name of ["p2p", "local"]) {
      const path = `${OUT}/dist/${name}.js`;
      const text = await Deno.readTextFile(path);
      if (!text.includes(`from "./errors.ts"`)) {
        throw new Error(`${name}.js does not import the SDK's errors`);
      }
      await Deno.writeTextFile(
        path,
        text.replaceAll(`from "./errors.ts"`, `from "./mod.js"`),
      );
    }
    // Declarations: the transports' types come from files that load no
    // libp2p types (whose declarations do not check against Deno's).
    await bundle([
      "--platform",
      "deno",
      "--declaration",
      "-o",
      `${scratch}/local.js`,
      "sdk/local.ts",
    ]);
    await Deno.copyFile(`${scratch}/local.d.ts`, `${OUT}/dist/local.d.ts`);
    await bundle([
      "--platform",
      "deno",
      "--declaration",
      "-o",
      `${scratch}/p2p_options.js`,
      "sdk/p2p_options.ts",
    ]);
    await Deno.writeTextFile(
      `${OUT}/dist/p2p.d.ts`,
      `${await Deno.readTextFile(`${scratch}/p2p_options.d.ts`)}
/** A transport over libp2p's \`/phase/job/1.0.0\`, with its own client node. */
export declare function p2pTransport(options: P2pTransportOptions): Transport;
`,
    );
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  await dropBuilderPaths(`${OUT}/dist`);
  await Deno.copyFile(`${ROOT}sdk/README.md`, `${OUT}/README.md`);
  await Deno.copyFile(`${ROOT}LICENSE`, `${OUT}/LICENSE`);
  await Deno.writeTextFile(
    `${OUT}/package.json`,
    JSON.stringify(packageJson(), null, 2) + "\n",
  );
  return OUT;
}

/**
 * The bundler names each npm module by its path in the builder's Deno cache
 * (its home folder and the registry it came from): renamed to `npm/…`, so
 * the package says nothing of the machine that built it and builds the same
 * from any.
 */
async function dropBuilderPaths(dist: string): Promise<void> {
  const cachePath = /(?:\.\.\/)*[^\s"'`]*?\/deno\/npm\/[^/\s"'`]+\//g;
  for await (const entry of Deno.readDir(dist)) {
    if (!entry.name.endsWith(".js")) continue;
    const path = `${dist}/${entry.name}`;
    const text = (await Deno.readTextFile(path)).replace(cachePath, "npm/");
    if (text.includes("/.cache/") || text.includes("/deno/npm/")) {
      throw new Error(`${entry.name} still names the builder's Deno cache`);
    }
    await Deno.writeTextFile(path, text);
  }
}

/** Packs the built folder with `npm pack`; returns the tarball's path. */
export async function packSdk(folder: string): Promise<string> {
  const out = await run("npm", ["pack", "--json", "--quiet"], folder);
  const [{ filename }] = JSON.parse(out) as { filename: string }[];
  return `${folder}/${filename}`;
}

if (import.meta.main) {
  const folder = await buildSdk();
  console.log(folder);
  if (Deno.args.includes("--pack")) console.log(await packSdk(folder));
}
