/**
 * The programs an initramfs for another architecture ships, fetched with
 * the ordinary package clients instead of taken from this machine: Debian's
 * packages for that architecture (`apt-get download pkg:arm64`, unpacked
 * into a folder of its own, never installed) and Deno's build for it (the
 * npm package of the same version as this Deno). Shared libraries are
 * found by reading the executables' ELF headers, since `ldd` cannot run a
 * foreign executable.
 * @module
 */
import { ElfError, elfInterpreter, elfMachine, elfNeeded } from "./elf.ts";
import type { BootTarget } from "./target.ts";
import { BuildError, runTool as run } from "./tool.ts";

/** Debian packages whose programs the initramfs ships, before their libraries. */
export const USERLAND_PACKAGES = [
  "busybox-static",
  "kexec-tools",
  "libc6",
  "libgcc-s1",
];

/** Where a userland's programs live inside its root. */
export const USERLAND_PROGRAMS = {
  busybox: "/bin/busybox",
  kexec: "/sbin/kexec",
} as const;

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/**
 * The packages `names` need, following `Depends` through shared library
 * packages only (Debian names them lib…, and zlib1g): what their
 * executables load, without debconf and the rest of a system.
 */
async function libraryClosure(
  names: string[],
  debianArch: string,
): Promise<string[]> {
  const seen = new Set(names);
  let next = [...names];
  while (next.length > 0) {
    const out = decode(
      await run("apt-cache", [
        "depends",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
        ...next.map((n) => `${n}:${debianArch}`),
      ]),
    );
    next = [];
    for (const [, dependency] of out.matchAll(/^\s+\|?Depends: ([^\s<]+)/gm)) {
      const name = dependency.replace(/:[a-z0-9]+$/, "");
      if (/^(lib|zlib)/.test(name) && !seen.has(name)) {
        seen.add(name);
        next.push(name);
      }
    }
  }
  return [...seen].sort();
}

/**
 * Downloads Debian's `USERLAND_PACKAGES` and their libraries for the target
 * and unpacks them into one folder under `cacheDir` (once per set of
 * package versions); returns that folder.
 */
export async function debianUserland(
  target: BootTarget,
  cacheDir: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  const names = await libraryClosure(USERLAND_PACKAGES, target.debianArch);
  const qualified = names.map((n) => `${n}:${target.debianArch}`);
  // The file names carry the versions: a new version is a new folder.
  const files = [
    ...decode(await run("apt-get", ["download", "--print-uris", ...qualified]))
      .matchAll(/^'[^']+' (\S+\.deb) /gm),
  ].map((m) => m[1]).sort();
  if (files.length !== names.length) {
    throw new BuildError(
      `apt-get knows ${files.length} of ${names.length} ${target.debianArch} packages (dpkg --add-architecture ${target.debianArch}; apt-get update)`,
    );
  }
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(files.join("\n")),
    ),
  );
  const id = [...digest.subarray(0, 8)].map((b) =>
    b.toString(16).padStart(2, "0")
  ).join("");
  const root = `${cacheDir}/userland-${target.debianArch}-${id}`;
  try {
    await Deno.stat(`${root}/.complete`);
    return root;
  } catch {
    // not unpacked yet
  }
  await Deno.remove(root, { recursive: true }).catch(() => {});
  const debs = `${root}.debs`;
  await Deno.mkdir(debs, { recursive: true });
  log(`downloading ${names.length} ${target.debianArch} packages`);
  await run("apt-get", ["download", ...qualified], { cwd: debs });
  for (const deb of [...Deno.readDirSync(debs)].map((e) => e.name).sort()) {
    await run("dpkg-deb", ["-x", `${debs}/${deb}`, root]);
  }
  await Deno.remove(debs, { recursive: true });
  await Deno.writeTextFile(`${root}/.complete`, files.join("\n") + "\n");
  return root;
}

/**
 * The Deno executable for the target: this one when the target is this
 * machine, else the npm package of the same Deno version for the target,
 * fetched with `npm pack` into `cacheDir` once.
 */
export async function targetDeno(
  target: BootTarget,
  cacheDir: string,
  log: (line: string) => void = () => {},
): Promise<string> {
  if (target.arch === (Deno.build.arch as string)) return Deno.execPath();
  const version = Deno.version.deno;
  const dir = `${cacheDir}/deno-${target.debianArch}-${version}`;
  const binary = `${dir}/deno`;
  try {
    await Deno.stat(`${dir}/.complete`);
    return binary;
  } catch {
    // not fetched yet
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  log(`fetching ${target.denoPackage}@${version} with npm`);
  const packed = decode(
    await run("npm", [
      "pack",
      "--silent",
      `${target.denoPackage}@${version}`,
    ], { cwd: dir }),
  ).trim().split("\n").pop()!;
  await run("tar", ["-xzf", packed, "--strip-components=1", "package/deno"], {
    cwd: dir,
  });
  await Deno.remove(`${dir}/${packed}`);
  await Deno.chmod(binary, 0o755);
  await checkMachine(binary, target);
  await Deno.writeTextFile(`${dir}/.complete`, "");
  return binary;
}

/** Fails the build when `path` is not an executable for the target. */
export async function checkMachine(
  path: string,
  target: BootTarget,
): Promise<void> {
  let machine;
  try {
    machine = elfMachine(await Deno.readFile(path));
  } catch (error) {
    if (error instanceof ElfError || error instanceof Deno.errors.NotFound) {
      throw new BuildError(`${path}: ${error.message}`);
    }
    throw error;
  }
  if (machine !== target.elfMachine) {
    throw new BuildError(
      `${path} is not built for ${target.arch} (ELF machine ${machine})`,
    );
  }
}

/**
 * Follows symbolic links inside `root` as if it were `/` (an absolute link
 * target stays inside it); returns the host path of the file, or null.
 */
async function resolveIn(root: string, path: string): Promise<string | null> {
  const parts = path.split("/").filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; parts.length > 0;) {
    const part = parts.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop();
      continue;
    }
    const here = `${root}/${[...done, part].join("/")}`;
    let info;
    try {
      info = await Deno.lstat(here);
    } catch {
      return null;
    }
    if (!info.isSymlink) {
      done.push(part);
      continue;
    }
    if (++hops > 40) return null;
    const link = await Deno.readLink(here);
    if (link.startsWith("/")) done.length = 0;
    parts.unshift(...link.split("/").filter(Boolean));
  }
  return `${root}/${done.join("/")}`;
}

/**
 * The files the dynamic loader needs to start `programs` (host paths of
 * executables built for the target), looked up inside `root` (a target
 * userland): their interpreter and every shared library they load, directly
 * or through another library. Each comes as the path it must have in the
 * initramfs and the host file holding its bytes. A library that cannot be
 * found is a build error naming it.
 */
export async function neededLibraries(
  root: string,
  programs: string[],
  target: BootTarget,
): Promise<{ path: string; source: string }[]> {
  const dirs = [
    `/lib/${target.multiarch}`,
    `/usr/lib/${target.multiarch}`,
    "/lib",
    "/usr/lib",
  ];
  const found = new Map<string, string>();
  const queue = programs.map((source) => ({ name: source, source }));
  while (queue.length > 0) {
    const { name, source } = queue.shift()!;
    const bytes = await Deno.readFile(source);
    const interpreter = elfInterpreter(bytes);
    if (interpreter && !found.has(interpreter)) {
      const at = await resolveIn(root, interpreter);
      if (!at) throw new BuildError(`${name} needs ${interpreter}, missing`);
      found.set(interpreter, at);
    }
    for (const soname of elfNeeded(bytes)) {
      if ([...found.keys()].some((p) => p.endsWith(`/${soname}`))) continue;
      let hit = false;
      for (const dir of dirs) {
        const at = await resolveIn(root, `${dir}/${soname}`);
        if (!at) continue;
        found.set(`${dir}/${soname}`, at);
        queue.push({ name: soname, source: at });
        hit = true;
        break;
      }
      if (!hit) {
        throw new BuildError(
          `${name} needs ${soname}, which no ${target.debianArch} package gave`,
        );
      }
    }
  }
  return [...found].map(([path, source]) => ({ path, source })).sort((a, b) =>
    a.path < b.path ? -1 : 1
  );
}
