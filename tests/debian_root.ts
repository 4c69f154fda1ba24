/**
 * A Debian root with systemd for package tests: built once with debootstrap
 * (minbase + systemd-sysv, the host's own release) from the mirror the
 * host's apt configuration names, and cached in ~/.cache/phase-boot. Tests
 * copy it before changing anything.
 */
import assert from "node:assert/strict";
import { aptInstall, hasCommand, runOk, runTask } from "./helpers.ts";

/** The host's Debian release name (VERSION_CODENAME of /etc/os-release). */
export async function hostCodename(): Promise<string> {
  const release = await Deno.readTextFile("/etc/os-release");
  const name = release.match(/^VERSION_CODENAME=(\S+)$/m)?.[1];
  if (!name) throw new Error("/etc/os-release names no VERSION_CODENAME");
  return name;
}

/**
 * The archive URL of the host's apt sources for `codename`'s main
 * component (as `apt-get indextargets` reports it), so no test names a host.
 */
export async function aptMirror(codename: string): Promise<string> {
  const read = () =>
    runOk("apt-get", [
      "indextargets",
      "--format",
      "$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER)",
    ]);
  let targets = await read();
  if (!targets.trim()) {
    await runOk("apt-get", ["update", "-qq"]);
    targets = await read();
  }
  for (const line of targets.split("\n")) {
    const [uri, release, component, identifier] = line.split(" ");
    if (
      release === codename && component === "main" && identifier === "Packages"
    ) return uri;
  }
  throw new Error(
    `the host's apt sources have no ${codename} main archive for debootstrap`,
  );
}

/** Builds (once) and returns the cached Debian root with systemd. */
export async function debianRoot(
  log: (line: string) => void = () => {},
): Promise<string> {
  const missing = [];
  if (!await hasCommand("debootstrap")) missing.push("debootstrap");
  await aptInstall(missing, "Debian root tests");
  const codename = await hostCodename();
  const cache = `${Deno.env.get("HOME") ?? "/tmp"}/.cache/phase-boot`;
  const root = `${cache}/debian-${codename}-systemd`;
  try {
    await Deno.stat(`${root}/.complete`);
    return root;
  } catch {
    // not built yet
  }
  const mirror = await aptMirror(codename);
  const partial = `${root}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  await Deno.remove(root, { recursive: true }).catch(() => {});
  await Deno.mkdir(cache, { recursive: true });
  log(`debootstrap ${codename} (minbase + systemd-sysv) from ${mirror}`);
  const started = performance.now();
  await runOk("debootstrap", [
    "--variant=minbase",
    "--include=systemd-sysv",
    codename,
    partial,
    mirror,
  ]);
  await Deno.rename(partial, root);
  await Deno.writeTextFile(`${root}/.complete`, "");
  log(
    `Debian root built in ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s`,
  );
  return root;
}

/** A copy of the cached root in `dir` (cp -a), to change freely. */
export async function copyRoot(source: string, dir: string): Promise<string> {
  await runOk("cp", ["-a", source, dir]);
  await Deno.remove(`${dir}/.complete`).catch(() => {});
  return dir;
}

const EPOCH = "1767225600"; // 2026-01-01

/** `deno task package:deb` into `output` with a fixed epoch; the .deb's path and sha256. */
export async function packageDeb(
  home: string,
  output: string,
): Promise<{ path: string; sha256: string }> {
  const out = await runTask(
    home,
    "package:deb",
    ["--output", output, "--json"],
    { SOURCE_DATE_EPOCH: EPOCH },
  );
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, "", "--json prints no progress");
  const built = JSON.parse(out.stdout);
  assert.equal(built.source_date_epoch, Number(EPOCH));
  return { path: built.path, sha256: built.sha256 };
}
