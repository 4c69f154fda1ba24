/**
 * A whole release in one folder: the .deb, the boot artifacts laid out for
 * `phase serve --artifacts` (kernel, initramfs, hello job, a boot manifest
 * signed by the release key), the disk images, and SHA256SUMS with its
 * signature by the same key.
 * @module
 */
import {
  buildDiskImage,
  BuildError,
  buildInitramfs,
  debianKernel,
  imageCmdline,
  kernelFiles,
  writeArtifacts,
} from "../boot/mod.ts";
import { RUNTIME_VERSION } from "../runner/mod.ts";
import type { NodeKey } from "../schemas/mod.ts";
import { buildDeb } from "./deb.ts";
import { signRelease, SUMS_FILE } from "./sums.ts";

/** What {@link buildRelease} needs. */
export interface ReleaseOptions {
  /** The repository root. */
  root: string;
  /** The release folder (must be empty, absent, or an earlier release). */
  output: string;
  /** The release key: signs the boot manifest and SHA256SUMS. */
  key: NodeKey;
  /** Kernel command line of the manifest and the disk image. */
  cmdline: string;
  /** The disk image's phase.mode. */
  mode: string;
  /** The disk image's phase.provider. */
  provider?: string;
  /** Where downloads are kept. */
  cache: string;
  /** An unpacked Debian kernel package (default: downloaded). */
  kernelPackage?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link buildRelease} made (paths relative to the folder). */
export interface BuiltRelease {
  /** The release folder. */
  dir: string;
  /** Release version. */
  version: string;
  /** The release key's peer id. */
  signer: string;
  /** Files listed in SHA256SUMS. */
  files: number;
  /** The .deb's name. */
  deb: string;
  /** The raw disk image's name. */
  image: string;
  /** Seconds the build took. */
  seconds: number;
}

/** Empties `dir` if it holds an earlier release; refuses any other content. */
async function prepareFolder(dir: string): Promise<void> {
  const entries: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) entries.push(entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      await Deno.mkdir(dir, { recursive: true });
      return;
    }
    throw error;
  }
  if (entries.length === 0) return;
  if (!entries.includes(SUMS_FILE)) {
    throw new BuildError(
      `${dir} holds files that are not a release; give an empty or new folder`,
    );
  }
  for (const name of entries) {
    await Deno.remove(`${dir}/${name}`, { recursive: true });
  }
}

/** Builds and signs a release into `options.output`. */
export async function buildRelease(
  options: ReleaseOptions,
): Promise<BuiltRelease> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const dir = options.output.replace(/\/$/, "");
  const imageLine = imageCmdline({
    base: options.cmdline,
    pubkeys: [options.key.peerId],
    mode: options.mode,
    provider: options.provider,
  });
  await prepareFolder(dir);
  const deb = await buildDeb({ root: options.root, output: dir, log });
  const packageRoot = options.kernelPackage ??
    await debianKernel(options.cache, log);
  const { kernel, modules } = kernelFiles(packageRoot);
  const work = await Deno.makeTempDir({ prefix: "phase-release-" });
  try {
    const initramfs = await buildInitramfs({
      modules,
      output: work,
      root: options.root,
      log,
    });
    log("laying out the boot artifacts and signing their manifest");
    const target = await writeArtifacts({
      dir,
      channel: "stable",
      arch: "x86_64",
      kernel,
      initramfs: initramfs.path,
      cmdline: options.cmdline,
      releaseKey: options.key,
    });
    const image = await buildDiskImage({
      kernel: `${target}/vmlinuz`,
      initramfs: `${target}/initramfs.img`,
      cmdline: imageLine,
      output: `${dir}/phase-boot-x86_64.img`,
      qcow2: `${dir}/phase-boot-x86_64.qcow2`,
      log,
    });
    log(`signing ${SUMS_FILE}`);
    const signed = await signRelease(dir, options.key, {
      version: RUNTIME_VERSION,
    });
    return {
      dir,
      version: RUNTIME_VERSION,
      signer: options.key.peerId,
      files: signed.files,
      deb: deb.path.slice(dir.length + 1),
      image: image.path.slice(dir.length + 1),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
