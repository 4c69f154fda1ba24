/**
 * Builds `phase_<version>_amd64.deb`: the pinned deno runtime, the bundled
 * Phase program and the repository's own `phase` launcher in
 * /usr/lib/phase (the launcher sees the bundle beside it and runs it with
 * each command's permissions), /usr/bin/phase linking to it, the hardened
 * phase.service, the conffile /etc/phase/phase.conf and the maintainer
 * scripts of packaging/deb/. Reproducible: every file's mtime is
 * SOURCE_DATE_EPOCH, owners are root, gzip is single-threaded and
 * timestamp-free, so two builds with the same epoch are the same bytes.
 * @module
 */
import { BuildError, runTool } from "../boot/mod.ts";
import { sha256File } from "../provider/mod.ts";
import { RUNTIME_VERSION } from "../runner/mod.ts";

/** The package's name. */
export const DEB_PACKAGE = "phase";

/** Where the package keeps its runtime, program and launcher. */
export const DEB_LIB_DIR = "/usr/lib/phase";

/** What {@link buildDeb} needs. */
export interface DebOptions {
  /** The repository root (sources, launcher, packaging/deb). */
  root: string;
  /** Folder the .deb is written to (created). */
  output: string;
  /** The deno binary to ship; must be the launcher's pinned version (default: this one). */
  deno?: string;
  /** Timestamp of every file (default $SOURCE_DATE_EPOCH, else the last commit's time). */
  sourceDateEpoch?: number;
  /** Package version (default the runtime's). */
  version?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link buildDeb} made. */
export interface BuiltDeb {
  /** Path of the .deb. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its sha256 (hex). */
  sha256: string;
  /** The SOURCE_DATE_EPOCH it was built with. */
  sourceDateEpoch: number;
  /** Seconds the build took. */
  seconds: number;
}

const TOOLS = "dpkg gzip git";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The Deno version the launcher pins (its `version=` line): the one source of it. */
export async function pinnedDenoVersion(root: string): Promise<string> {
  const launcher = await Deno.readTextFile(`${root}/phase`);
  const version = launcher.match(/^version=([0-9.]+)$/m)?.[1];
  if (!version) throw new BuildError(`${root}/phase pins no Deno version`);
  return version;
}

/** SOURCE_DATE_EPOCH from the environment, else the time of the last commit. */
export async function sourceDateEpoch(root: string): Promise<number> {
  const fromEnv = Deno.env.get("SOURCE_DATE_EPOCH");
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!/^\d{1,12}$/.test(fromEnv)) {
      throw new BuildError(
        `SOURCE_DATE_EPOCH must be whole seconds, not ${
          JSON.stringify(fromEnv)
        }`,
      );
    }
    return Number(fromEnv);
  }
  try {
    const out = text(
      await runTool("git", ["log", "-1", "--format=%ct"], {
        cwd: root,
        packages: TOOLS,
      }),
    ).trim();
    if (/^\d+$/.test(out)) return Number(out);
  } catch {
    // not a git checkout
  }
  throw new BuildError(
    "set SOURCE_DATE_EPOCH (no git history to take the time from)",
  );
}

/** RFC 2822 date, as Debian changelogs write it. */
function changelogDate(epoch: number): string {
  const d = new Date(epoch * 1000);
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
  ];
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${
    months[d.getUTCMonth()]
  } ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${
    pad(d.getUTCSeconds())
  } +0000`;
}

const MAINTAINER = "Phase developers <maintainers@phase.invalid>";

function controlFile(version: string, installedKib: number): string {
  return [
    `Package: ${DEB_PACKAGE}`,
    `Version: ${version}`,
    "Architecture: amd64",
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${installedKib}`,
    "Depends: libc6 (>= 2.27), libgcc-s1 (>= 3.3), init-system-helpers (>= 1.54~)",
    "Section: net",
    "Priority: optional",
    "Description: open compute and netboot node (sandboxed WebAssembly jobs)",
    " Phase runs sandboxed WebAssembly (WASI preview1) jobs for others and",
    " returns receipts signed with the node's Ed25519 key, and serves signed",
    " boot manifests and artifacts to machines that boot from the network.",
    " .",
    " This package ships the phase command (a pinned Deno runtime, the bundled",
    " program and a launcher that gives each command only the permissions it",
    " needs) and phase.service, a hardened systemd service running the node.",
    "",
  ].join("\n");
}

function copyrightFile(): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: phase

Files: *
Copyright: 2025-2026 Phase developers
License: Apache-2.0

Files: usr/lib/phase/deno
Copyright: 2018-2026 the Deno authors
License: Expat

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.
`;
}

/** A man page holding `phase help`'s text as it is (roff's no-fill mode). */
function manualPage(version: string, overview: string): string {
  const escaped = overview.replaceAll("\\", "\\e").split("\n").map((line) =>
    /^[.']/.test(line) ? `\\&${line}` : line
  ).join("\n");
  return [
    `.TH PHASE 1 "" "phase ${version}" "User Commands"`,
    ".SH NAME",
    "phase \\- open compute and netboot node",
    ".SH DESCRIPTION",
    ".nf",
    escaped.trimEnd(),
    ".fi",
    ".SH FILES",
    "/etc/phase/phase.conf (phase.service), /var/lib/phase (its state)",
    "",
  ].join("\n");
}

async function gzipNoName(data: Uint8Array): Promise<Uint8Array> {
  return await runTool("gzip", ["-9nc"], { stdin: data, packages: TOOLS });
}

async function copy(source: string, target: string, mode: number) {
  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), {
    recursive: true,
  });
  await Deno.copyFile(source, target);
  await Deno.chmod(target, mode);
}

async function write(target: string, data: string | Uint8Array, mode = 0o644) {
  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), {
    recursive: true,
  });
  if (typeof data === "string") await Deno.writeTextFile(target, data);
  else await Deno.writeFile(target, data);
  await Deno.chmod(target, mode);
}

/** Sizes (KiB, each file rounded up) and md5sums of the staged files. */
async function inventory(
  stage: string,
): Promise<{ kib: number; md5sums: string }> {
  const files: string[] = [];
  let kib = 0;
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) {
        if (path !== `${stage}/DEBIAN`) await walk(path);
        kib += 4;
      } else if (entry.isFile) {
        // dpkg checks conffiles itself; md5sums lists the other files.
        const name = path.slice(stage.length + 1);
        if (name !== "etc/phase/phase.conf") files.push(name);
        kib += Math.ceil((await Deno.stat(path)).size / 1024);
      } else kib += 1;
    }
  };
  await walk(stage);
  files.sort();
  const sums = text(
    await runTool("md5sum", files, { cwd: stage, packages: "coreutils" }),
  );
  return { kib, md5sums: sums };
}

/**
 * Builds the .deb into `options.output`; returns its path and sha256. Needs
 * dpkg-deb and gzip (Debian); no root, no fakeroot.
 */
export async function buildDeb(options: DebOptions): Promise<BuiltDeb> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const root = options.root.replace(/\/$/, "");
  const version = options.version ?? RUNTIME_VERSION;
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(version)) {
    throw new BuildError(`not a Debian version: ${JSON.stringify(version)}`);
  }
  const epoch = options.sourceDateEpoch ?? await sourceDateEpoch(root);
  const deno = options.deno ?? Deno.execPath();
  const pinned = await pinnedDenoVersion(root);
  const denoVersion = text(
    await runTool(deno, ["--version"], { packages: "deno (npm)" }),
  ).split(/\s+/)[1];
  if (denoVersion !== pinned) {
    throw new BuildError(
      `${deno} is Deno ${denoVersion}; the launcher pins ${pinned}`,
    );
  }
  const stage = await Deno.makeTempDir({ prefix: "phase-deb-" });
  try {
    const lib = `${stage}${DEB_LIB_DIR}`;
    await Deno.mkdir(lib, { recursive: true });
    log("bundling the Phase program");
    for (
      const [entry, bundle] of [
        ["main.ts", "phase.js"],
        ["runner/sandbox_worker.ts", "sandbox_worker.js"],
      ]
    ) {
      await runTool(deno, [
        "bundle",
        "--quiet",
        "--platform",
        "deno",
        "-o",
        `${lib}/${bundle}`,
        `${root}/${entry}`,
      ], { cwd: root });
      await Deno.chmod(`${lib}/${bundle}`, 0o644);
    }
    // The manual page is the program's own overview, as `phase help` prints it.
    const overview = text(
      await runTool(deno, [
        "run",
        "--quiet",
        "--no-prompt",
        `${lib}/phase.js`,
        "help",
      ], { env: { NO_COLOR: "1" } }),
    );
    await write(
      `${stage}/usr/share/man/man1/phase.1.gz`,
      await gzipNoName(new TextEncoder().encode(manualPage(version, overview))),
    );
    log(`copying Deno ${denoVersion} and the launcher`);
    await copy(await Deno.realPath(deno), `${lib}/deno`, 0o755);
    await copy(`${root}/phase`, `${lib}/phase`, 0o755);
    await Deno.mkdir(`${stage}/usr/bin`, { recursive: true });
    await Deno.symlink("../lib/phase/phase", `${stage}/usr/bin/phase`);
    const packaging = `${root}/packaging/deb`;
    await copy(
      `${packaging}/phase.service`,
      `${stage}/lib/systemd/system/phase.service`,
      0o644,
    );
    await copy(
      `${packaging}/phase.conf`,
      `${stage}/etc/phase/phase.conf`,
      0o644,
    );
    const doc = `${stage}/usr/share/doc/${DEB_PACKAGE}`;
    await write(`${doc}/copyright`, copyrightFile());
    await write(`${doc}/README.md`, await Deno.readFile(`${root}/README.md`));
    await write(
      `${doc}/changelog.gz`,
      await gzipNoName(
        new TextEncoder().encode(
          `${DEB_PACKAGE} (${version}) unstable; urgency=medium\n\n` +
            `  * Release ${version} (what it brings: CHANGELOG.md of the sources).\n\n` +
            ` -- ${MAINTAINER}  ${changelogDate(epoch)}\n`,
        ),
      ),
    );
    await write(
      `${stage}/usr/share/lintian/overrides/${DEB_PACKAGE}`,
      await Deno.readFile(`${packaging}/lintian-overrides`),
    );
    const control = `${stage}/DEBIAN`;
    await Deno.mkdir(control);
    for (const script of ["postinst", "prerm", "postrm"]) {
      await copy(`${packaging}/${script}`, `${control}/${script}`, 0o755);
    }
    await write(`${control}/conffiles`, "/etc/phase/phase.conf\n");
    const { kib, md5sums } = await inventory(stage);
    await write(`${control}/md5sums`, md5sums);
    await write(`${control}/control`, controlFile(version, kib));
    // Directories 0755; one timestamp for everything (links included).
    await runTool("find", [
      stage,
      "-type",
      "d",
      "-exec",
      "chmod",
      "0755",
      "{}",
      "+",
    ]);
    await runTool("find", [
      stage,
      "-exec",
      "touch",
      "-h",
      "-d",
      `@${epoch}`,
      "{}",
      "+",
    ]);
    await Deno.mkdir(options.output, { recursive: true });
    const path = `${
      options.output.replace(/\/$/, "")
    }/${DEB_PACKAGE}_${version}_amd64.deb`;
    log(`packing ${path} (gzip -9, one thread)`);
    await runTool("dpkg-deb", [
      "--root-owner-group",
      "-Zgzip",
      "-z9",
      "--threads-max=1",
      "--build",
      stage,
      path,
    ], {
      env: { SOURCE_DATE_EPOCH: String(epoch) },
      packages: TOOLS,
    });
    return {
      path,
      size: (await Deno.stat(path)).size,
      sha256: await sha256File(path),
      sourceDateEpoch: epoch,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}
