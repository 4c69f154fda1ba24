/**
 * `phase boot build` (the initramfs and the artifacts directory) and
 * `phase boot run` (what /init starts inside the initramfs).
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  BootError,
  bootTarget,
  buildDiskImage,
  buildInitramfs,
  debianKernel,
  debianUserland,
  defaultCmdline,
  HANDOVER_DIR,
  hostTarget,
  imageCmdline,
  kernelFiles,
  parseBootOptions,
  planKexec,
  RUN_DIR,
  stageOne,
  stageTwo,
  targetDeno,
  writeArtifacts,
} from "../boot/mod.ts";
import { loadIdentity } from "../runner/mod.ts";
import { type Channel, parsePublicKey } from "../schemas/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { envVar } from "./paths.ts";
import { parseCommandLine } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

/** `phase boot build [options]`: the initramfs and the artifacts directory. */
export async function buildCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.boot.subcommands.build, argv);
  const log = (line: string) =>
    values.json || console.error(`phase boot build: ${line}`);
  let target;
  try {
    target = bootTarget(values.arch);
  } catch (error) {
    throw new CliError(`--arch: ${(error as Error).message}`, 2);
  }
  const foreign = target.arch !== hostTarget().arch;
  const output = values.output ??
    (target.arch === "x86_64" ? "build/boot" : `build/boot/${target.arch}`);
  const cache = values.cache ?? `${envVar("HOME") ?? "/tmp"}/.cache/phase-boot`;
  await Deno.mkdir(cache, { recursive: true });
  const packageRoot = values["kernel-package"] ??
    await debianKernel(cache, log, target);
  const { kernel, modules } = kernelFiles(packageRoot);
  const root = fileURLToPath(new URL("../", import.meta.url));
  const built = await buildInitramfs({
    modules,
    output,
    root,
    target,
    ...(foreign
      ? {
        userland: await debianUserland(target, cache, log),
        deno: await targetDeno(target, cache, log),
      }
      : {}),
    busybox: values.busybox,
    log,
  });
  const kernelPath = `${output}/${target.kernelFile}`;
  await Deno.copyFile(kernel, kernelPath);
  log(
    `initramfs ${built.path}: ${
      (built.size / 1024 / 1024).toFixed(1)
    } MiB, sha256 ${built.sha256}, ${built.seconds.toFixed(1)} s`,
  );
  let artifacts: string | null = null;
  if (values.artifacts) {
    const releaseKey = values["sign-key"]
      ? await loadIdentity({ path: values["sign-key"] })
      : undefined;
    artifacts = await writeArtifacts({
      dir: values.artifacts,
      channel: values.channel as Channel,
      arch: target.arch,
      kernel: kernelPath,
      initramfs: built.path,
      cmdline: values.cmdline ?? defaultCmdline(target),
      releaseKey,
      manifestVersion: values["manifest-version"]
        ? Number(values["manifest-version"])
        : undefined,
    });
    log(
      `artifacts in ${artifacts}${
        releaseKey ? `, manifest signed by ${releaseKey.peerId}` : ""
      }`,
    );
  }
  if (values.json) {
    console.log(
      JSON.stringify({
        ...built,
        arch: target.arch,
        kernel: kernelPath,
        artifacts,
      }),
    );
  }
  return 0;
}

/** `phase boot run [--cmdline TEXT]`: what /init starts in the initramfs. */
export async function bootRunCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.boot.subcommands.run, argv);
  const cmdline = values.cmdline ?? await Deno.readTextFile("/proc/cmdline");
  // Seconds since the kernel started, as the kernel's own messages count
  // them, so a console shows where a boot's time goes.
  const log = (line: string) =>
    console.log(`phase-boot: [${uptimeSeconds()}] ${line}`);
  let options;
  try {
    options = parseBootOptions(cmdline);
  } catch (error) {
    throw new CliError(`bad kernel command line: ${(error as Error).message}`);
  }
  const env = {
    runDir: RUN_DIR,
    log,
    kexec: planKexec(RUN_DIR),
    handoverDir: HANDOVER_DIR,
  };
  try {
    if (options.stage === 1) {
      log(`stage 1, ${options.mode} mode, ${options.channel}/${options.arch}`);
      await stageOne(options, env);
      return 0; // /init runs the planned kexec
    }
    log(`stage 2 (booted by Phase), ${options.mode} mode`);
    await stageTwo(options, env);
    // Serve until the machine is turned off.
    await new Promise(() => {});
  } catch (error) {
    if (error instanceof BootError) {
      console.log(`phase-boot: FAILED: ${error.message}`);
      return 1;
    }
    throw error;
  }
  return 0;
}

/**
 * Seconds since the kernel started: /init's reading of /proc/uptime when it
 * started this program (PHASE_BOOT_UPTIME), plus the time since. Deno reads
 * /proc only with every permission granted, so /init reads it.
 */
function uptimeSeconds(): string {
  const atStart = Number(Deno.env.get("PHASE_BOOT_UPTIME"));
  if (!Number.isFinite(atStart) || atStart <= 0) return "?";
  return (atStart + performance.now() / 1000).toFixed(2);
}

/** `phase boot image --pubkey KEY [options]`: the BIOS + UEFI disk image. */
export async function imageCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.boot.subcommands.image, argv);
  const pubkeys = (values.pubkey ?? []).flatMap((k) => k.split(","));
  for (const key of pubkeys) {
    try {
      parsePublicKey(key);
    } catch (error) {
      throw new UsageError(`--pubkey: ${(error as Error).message}`);
    }
  }
  const cmdline = imageCmdline({
    base: values.cmdline,
    pubkeys,
    mode: values.mode,
    provider: values.provider,
  });
  const dir = values.output.replace(/\/$/, "");
  const built = await buildDiskImage({
    kernel: values.kernel,
    initramfs: values.initramfs,
    cmdline,
    output: `${dir}/phase-boot-x86_64.img`,
    qcow2: values["no-qcow2"] ? undefined : `${dir}/phase-boot-x86_64.qcow2`,
    log: (line) =>
      values.json || values.quiet ||
      console.error(`phase boot image: ${line}`),
  });
  if (values.json) {
    console.log(JSON.stringify({
      ...built,
      cmdline,
      seconds: Number(built.seconds.toFixed(1)),
    }));
  } else if (!values.quiet) {
    console.log(
      `${built.path}${built.qcow2 ? ` and ${built.qcow2}` : ""}: ${
        (built.size / 1024 / 1024).toFixed(0)
      } MiB, boots with: ${cmdline}`,
    );
  }
  return 0;
}
