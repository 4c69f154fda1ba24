/**
 * Builds the Phase Boot initramfs: busybox, the virtio-net (and e1000)
 * modules, kexec, the deno runtime and the bundled, permission-scoped Phase
 * entrypoints, plus a small /init. The offline equivalent of `deno compile`.
 * The archive is reproducible: sorted entries, fixed mtimes and owners, zstd.
 * For this machine's architecture the programs come from this machine; for
 * another (aarch64 on x86_64) from that architecture's Debian packages and
 * Deno build (`userland.ts`), with the same bundled Phase program.
 * @module
 */
import {
  canonicalArch,
  type Channel,
  type NodeKey,
  signManifest,
} from "../schemas/mod.ts";
import {
  ArtifactStore,
  buildManifest,
  sha256File,
  writeHelloJob,
} from "../provider/mod.ts";
import { RUNTIME_VERSION } from "../runner/mod.ts";
import { ElfError, elfInterpreter } from "./elf.ts";
import { bakeDenoCache, IMAGE_DENO_DIR } from "./deno_cache.ts";
import { BuildError, runTool as run } from "./tool.ts";
import { type BootTarget, bootTarget, hostTarget } from "./target.ts";
import {
  checkMachine,
  neededLibraries,
  USERLAND_PROGRAMS,
} from "./userland.ts";

/** Kernel modules loaded by /init, in order (none are built into Debian's kernel): NICs, and virtio_blk so attached disks show up (Phase never mounts them). */
export const NIC_MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_pci",
  "failover",
  "net_failover",
  "virtio_net",
  "e1000",
  "e1000e",
  "virtio_blk",
];

/**
 * The permissions Phase Boot runs with inside the initramfs: it writes only
 * to /run, a tmpfs (and, with phase.cache, to the block device nodes /init
 * makes there).
 */
export const BOOT_PERMISSIONS = [
  "--no-prompt",
  "--allow-net",
  "--allow-read",
  "--allow-write=/run,/handover",
  "--allow-env",
  "--allow-sys",
  "--allow-run=/bin/deno",
];

/**
 * Downloads and unpacks the Debian kernel that `linux-image-amd64` (or the
 * target's `linux-image-arm64`) depends on into `cacheDir` (once); returns
 * the unpacked package root.
 */
export async function debianKernel(
  cacheDir: string,
  log: (line: string) => void = () => {},
  target: BootTarget = hostTarget(),
): Promise<string> {
  const meta = `${target.kernelMeta}:${target.debianArch}`;
  const depends = new TextDecoder().decode(
    await run("apt-cache", ["depends", meta]),
  );
  const name = depends.match(/Depends: (linux-image-[^\s:]+)/)?.[1];
  if (!name) {
    throw new BuildError(
      `cannot resolve the kernel package of ${meta} (run apt-get update${
        target.arch === hostTarget().arch
          ? ""
          : ` after dpkg --add-architecture ${target.debianArch}`
      })`,
    );
  }
  const root = `${cacheDir}/${name}`;
  try {
    await Deno.stat(`${root}/.complete`);
    return root;
  } catch {
    // not unpacked yet
  }
  await Deno.mkdir(root, { recursive: true });
  log(`downloading ${name}`);
  await run("apt-get", ["download", `${name}:${target.debianArch}`], {
    cwd: cacheDir,
  });
  const deb = [...Deno.readDirSync(cacheDir)].find((e) =>
    e.name.startsWith(`${name}_`) && e.name.endsWith(".deb")
  );
  if (!deb) throw new BuildError(`apt-get download ${name} left no package`);
  await run("dpkg-deb", ["-x", `${cacheDir}/${deb.name}`, root]);
  await Deno.writeTextFile(`${root}/.complete`, "");
  return root;
}

/** The kernel image and module directory inside an unpacked kernel package. */
export function kernelFiles(
  packageRoot: string,
): { kernel: string; modules: string } {
  const kernel = [...Deno.readDirSync(`${packageRoot}/boot`)].find((e) =>
    e.name.startsWith("vmlinuz-")
  );
  const version = [...Deno.readDirSync(`${packageRoot}/lib/modules`)][0];
  if (!kernel || !version) {
    throw new BuildError(`${packageRoot} holds no kernel`);
  }
  return {
    kernel: `${packageRoot}/boot/${kernel.name}`,
    modules: `${packageRoot}/lib/modules/${version.name}`,
  };
}

/**
 * The interpreter of an executable, or null when it is static; a file that
 * is not an executable is a build error naming it.
 */
async function interpreterOf(binary: string): Promise<string | null> {
  try {
    return elfInterpreter(await Deno.readFile(binary));
  } catch (error) {
    if (error instanceof ElfError || error instanceof Deno.errors.NotFound) {
      throw new BuildError(`${binary}: ${error.message}`);
    }
    throw error;
  }
}

/** The shared libraries a dynamic executable loads (none for a static one). */
async function sharedLibraries(binary: string): Promise<string[]> {
  if (await interpreterOf(binary) === null) return [];
  const text = new TextDecoder().decode(await run("ldd", [binary]));
  return [...text.matchAll(/(\/[^\s]+) \(0x/g)].map((m) => m[1]);
}

/**
 * Runs each shipped program inside the staged tree (chroot, as root) so a
 * missing library fails the build here instead of panicking the booted
 * kernel. Without root, the library lists from ldd are all there is.
 */
async function checkRunnable(stage: string, log: (line: string) => void) {
  if (Deno.uid() !== 0) return;
  for (
    const [program, args] of [
      ["/bin/busybox", ["true"]],
      ["/sbin/kexec", ["--version"]],
      ["/bin/deno", ["--version"]],
    ] as const
  ) {
    const out = await new Deno.Command("chroot", {
      args: [stage, program, ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      throw new BuildError(
        `the initramfs cannot run ${program}: ${
          new TextDecoder().decode(out.stderr).trim().split("\n")[0]
        }`,
      );
    }
  }
  log("checked: busybox, kexec and deno run inside the initramfs");
}

async function copyInto(
  stage: string,
  source: string,
  target = source,
): Promise<void> {
  const destination = `${stage}${target}`;
  await Deno.mkdir(destination.slice(0, destination.lastIndexOf("/")), {
    recursive: true,
  });
  await Deno.copyFile(await Deno.realPath(source), destination);
}

/** The bundled Phase entrypoint in the image (its chunks beside it). */
export const BOOT_PROGRAM = "/phase/main.js";

/** The list of the image's own paths, which /init checks the root against. */
export const IMAGE_FILE_LIST = "/etc/phase-files";

/** The /init script. */
export function initScript(): string {
  return `#!/bin/sh
# Phase Boot /init: mount, modules, network, then the Phase boot program.
export PATH=/bin:/sbin
# Stage 1 may put a hand-over archive in front of this image (the verified
# manifest and files, checked again by the boot program before use; see
# boot/handover.ts). This image's files overwrite anything of the same name
# in it; anything else it brought outside /handover is refused, first thing,
# before this script makes files of its own (busybox by its full path: an
# image for another architecture has no applet links yet).
bb=/bin/busybox
extra=$($bb find / -xdev | $bb grep -v '^/handover' | $bb grep -vxF -f ${IMAGE_FILE_LIST} | $bb head -5)
if [ -n "$extra" ]; then
  echo "phase-boot: files this image does not hold: $extra"
  echo "phase-boot: refusing them: the initrd was altered"
  $bb mount -t proc proc /proc
  case " $($bb cat /proc/cmdline) " in *" phase.poweroff=1 "*) $bb poweroff -f;; esac
  exec $bb sh
fi
# An image built for another architecture could not list busybox's applets.
[ -e /bin/mount ] || /bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/phase /run/home /tmp ${IMAGE_DENO_DIR}
for m in ${NIC_MODULES.join(" ")}; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
cmdline=$(cat /proc/cmdline)
opt() { for w in $cmdline; do case "$w" in "phase.$1="*) echo "\${w#*=}";; esac; done; }
fail() {
  echo "phase-boot: $1"
  case " $cmdline " in *" phase.poweroff=1 "*) poweroff -f;; esac
  echo "phase-boot: dropping to a rescue shell"
  exec setsid sh -c 'exec sh </dev/console >/dev/console 2>&1'
}
echo "phase-boot: [$(cut -d' ' -f1 /proc/uptime)] /init: modules loaded"
ip link set lo up
nic=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  for n in /sys/class/net/*; do
    n=\${n##*/}; [ "$n" = lo ] || { nic=$n; break; }
  done
  [ -n "$nic" ] && break
  sleep 0.2
done
[ -n "$nic" ] || fail "network: no network interface found (no driver for this NIC?)"
ip link set "$nic" up
# mDNS (local mode) sends to 224.0.0.251 even without a default route.
ip route add 224.0.0.0/4 dev "$nic" 2>/dev/null
static=$(opt ip)
if [ -n "$static" ]; then
  ip addr add "\${static%%,*}" dev "$nic" || fail "network: cannot set address \${static%%,*}"
  case "$static" in *,*) ip route add default via "\${static#*,}" || fail "network: cannot add the route";; esac
  echo "phase-boot: [$(cut -d' ' -f1 /proc/uptime)] network $nic \${static%%,*}"
else
  udhcpc -i "$nic" -n -q -t 8 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1 || fail "network: no DHCP lease on $nic"
  echo "phase-boot: [$(cut -d' ' -f1 /proc/uptime)] network $nic $(ip -4 -o addr show dev $nic | awk '{print $4}')"
fi
# DENO_DIR: Deno's module and code caches, filled at build time (a tree
# in memory, so Deno may add to it).
export HOME=/run/home DENO_DIR=${IMAGE_DENO_DIR} NO_COLOR=1
if [ -n "$(opt cache)" ]; then
  # Deno opens a block device under /dev only with every permission; nodes
  # of the same devices here, under /run, need only the write permission the
  # boot program has. Made only when phase.cache asks for a boot cache.
  mkdir -p /run/phase/blk
  for d in /sys/class/block/*; do
    [ -f "$d/dev" ] || continue
    mm=$(cat "$d/dev")
    mknod "/run/phase/blk/\${d##*/}" b "\${mm%%:*}" "\${mm##*:}"
  done
fi
PHASE_BOOT_UPTIME=$(cut -d' ' -f1 /proc/uptime) /bin/deno run ${
    BOOT_PERMISSIONS.join(" ")
  } ${BOOT_PROGRAM} boot run --cmdline "$cmdline" || fail "boot program failed (exit $?)"
plan=/run/phase/kexec
if [ -f $plan/cmdline ]; then
  # The boot program verified these files and has exited; nothing else runs.
  kexec -c -i -l "$(cat $plan/kernel)" --initrd="$(cat $plan/initrd)" --command-line="$(cat $plan/cmdline)" 2>/dev/null ||
  kexec -s -l "$(cat $plan/kernel)" --initrd="$(cat $plan/initrd)" --command-line="$(cat $plan/cmdline)" 2>/dev/null ||
    kexec -c -l "$(cat $plan/kernel)" --initrd="$(cat $plan/initrd)" --command-line="$(cat $plan/cmdline)" ||
    fail "kexec could not load the verified kernel"
  echo "phase-boot: [$(cut -d' ' -f1 /proc/uptime)] kexec loaded"
  kexec -e
  fail "kexec -e failed"
fi
case " $cmdline " in *" phase.poweroff=1 "*) poweroff -f;; esac
exec setsid sh -c 'exec sh </dev/console >/dev/console 2>&1'
`;
}

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "\${router%% *}" dev "$interface"
    ;;
esac
exit 0
`;

/** What {@link buildInitramfs} needs. */
export interface BuildOptions {
  /** Module directory of the kernel (lib/modules/VERSION). */
  modules: string;
  /** Where to write `initramfs.img`. */
  output: string;
  /** The repository root (for bundling). */
  root: string;
  /** The machine the image is for (default this one). */
  target?: BootTarget;
  /**
   * For another architecture than this machine's: the unpacked Debian
   * userland of that architecture (`debianUserland`), which gives busybox,
   * kexec and every shared library.
   */
  userland?: string;
  /** The deno binary to ship (default this one; for another arch, required). */
  deno?: string;
  /**
   * The busybox to ship (default `/bin/busybox`). A static one (Debian's
   * busybox-static) is copied alone; a dynamic one with its libraries.
   */
  busybox?: string;
  /** zstd level (default 9: 10% smaller than 3 for 2 s more). */
  level?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Builds the initramfs; returns its path, size and sha256. */
export async function buildInitramfs(
  options: BuildOptions,
): Promise<{ path: string; size: number; sha256: string; seconds: number }> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const stage = await Deno.makeTempDir({ prefix: "phase-initramfs-" });
  try {
    for (
      const dir of [
        "bin",
        "sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "phase",
        "lib/modules",
      ]
    ) {
      await Deno.mkdir(`${stage}/${dir}`, { recursive: true });
    }
    const target = options.target ?? hostTarget();
    const foreign = target.arch !== hostTarget().arch;
    if (foreign && (!options.userland || !options.deno)) {
      throw new BuildError(
        `an image for ${target.arch} needs that architecture's userland and deno`,
      );
    }
    log("bundling the Phase entrypoints");
    // The bundle is the same JavaScript for every architecture; this
    // machine's deno writes it.
    const deno = options.deno ?? Deno.execPath();
    // Split at the lazy imports: a command loads only its own chunks (the
    // boot program's stage 1 never parses libp2p, the DHT or the CLI's
    // other commands), which is seconds per Deno start under emulation.
    await run(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--code-splitting",
      "--outdir",
      `${stage}/phase`,
      `${options.root}/main.ts`,
    ], { cwd: options.root });
    await run(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "-o",
      `${stage}/phase/sandbox_worker.js`,
      `${options.root}/runner/sandbox_worker.ts`,
    ], { cwd: options.root });
    log("copying busybox, kexec, deno and their libraries");
    const busybox = options.busybox ??
      (foreign
        ? `${options.userland}${USERLAND_PROGRAMS.busybox}`
        : "/bin/busybox");
    const kexec = foreign
      ? `${options.userland}${USERLAND_PROGRAMS.kexec}`
      : "/usr/sbin/kexec";
    if (await interpreterOf(busybox) !== null) {
      log(`${busybox} is dynamically linked; copying its libraries too`);
    }
    await copyInto(stage, busybox, "/bin/busybox");
    if (foreign) {
      // This machine cannot run it to list its applets; /init installs them.
      await Deno.symlink("busybox", `${stage}/bin/sh`);
    } else {
      const applets = new TextDecoder().decode(
        await run(busybox, ["--list"]),
      ).split("\n").filter(Boolean);
      for (const applet of applets.sort()) {
        if (applet === "busybox") continue;
        await Deno.symlink("busybox", `${stage}/bin/${applet}`).catch(
          () => {},
        );
      }
    }
    await copyInto(stage, kexec, "/sbin/kexec");
    await Deno.mkdir(`${stage}/usr/sbin`, { recursive: true });
    await copyInto(stage, deno, "/bin/deno");
    if (foreign) {
      const programs = [busybox, kexec, deno];
      for (const program of programs) await checkMachine(program, target);
      for (
        const { path, source } of await neededLibraries(
          options.userland!,
          programs,
          target,
        )
      ) {
        await copyInto(stage, source, path);
      }
      log(
        `checked: busybox, kexec and deno are ${target.arch} executables and the image holds every library they load`,
      );
    } else {
      const libraries = new Set([
        ...await sharedLibraries(busybox),
        ...await sharedLibraries(kexec),
        ...await sharedLibraries(deno),
      ]);
      for (const library of [...libraries].sort()) {
        await copyInto(stage, library);
      }
      await checkRunnable(stage, log);
      await bakeDenoCache({
        stage,
        permissions: BOOT_PERMISSIONS,
        program: BOOT_PROGRAM,
        log,
      });
    }
    for (const module of NIC_MODULES) {
      const found = new TextDecoder().decode(
        await run("find", [
          options.modules,
          "-name",
          `${module}.ko`,
          "-o",
          "-name",
          `${module}.ko.xz`,
        ]),
      )
        .split("\n").filter(Boolean)[0];
      if (!found) continue;
      if (found.endsWith(".xz")) {
        await Deno.writeFile(
          `${stage}/lib/modules/${module}.ko`,
          await run("xz", ["-dc", found]),
        );
      } else await Deno.copyFile(found, `${stage}/lib/modules/${module}.ko`);
    }
    await Deno.writeTextFile(`${stage}/init`, initScript(), { mode: 0o755 });
    await Deno.chmod(`${stage}/init`, 0o755);
    await Deno.writeTextFile(`${stage}/etc/udhcpc.script`, UDHCPC_SCRIPT);
    // Every path of the image, for /init to tell a hand-over's extra files.
    const paths = new TextDecoder().decode(
      await run("find", [".", "-mindepth", "1"], { cwd: stage }),
    ).split("\n").filter(Boolean).map((p) => p.slice(1));
    await Deno.writeTextFile(
      `${stage}${IMAGE_FILE_LIST}`,
      // "/root" and "/dev/console": the kernel makes them in every
      // initramfs root.
      ["/", "/root", "/dev/console", IMAGE_FILE_LIST, ...paths].sort().join(
        "\n",
      ) + "\n",
    );
    await Deno.chmod(`${stage}/etc/udhcpc.script`, 0o755);
    log("packing (sorted, fixed mtimes and owners, zstd)");
    await run("find", [stage, "-exec", "touch", "-h", "-d", "@0", "{}", "+"]);
    const list = new TextDecoder().decode(
      await run("find", [".", "-mindepth", "1"], { cwd: stage }),
    )
      .split("\n").filter(Boolean).sort();
    const cpio = await run("cpio", [
      "-o",
      "-H",
      "newc",
      "-R",
      "0:0",
      "--reproducible",
      "--quiet",
    ], {
      cwd: stage,
      stdin: new TextEncoder().encode(list.join("\n") + "\n"),
    });
    const compressed = await run("zstd", [
      `-${options.level ?? 9}`,
      "-q",
      "-c",
      "-T1",
    ], { stdin: cpio });
    await Deno.mkdir(options.output, { recursive: true });
    const path = `${options.output}/initramfs.img`;
    await Deno.writeFile(path, compressed);
    return {
      path,
      size: compressed.length,
      sha256: await sha256File(path),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** What {@link writeArtifacts} needs. */
export interface ArtifactsOptions {
  /** The artifacts directory to fill (`<dir>/<channel>/<arch>/`). */
  dir: string;
  /** Channel. */
  channel: Channel;
  /** Architecture. */
  arch: string;
  /** Kernel image. */
  kernel: string;
  /** Initramfs. */
  initramfs: string;
  /** Kernel command line for the manifest. */
  cmdline: string;
  /** Key that signs the manifest (a release key), or none (provider signs). */
  releaseKey?: NodeKey;
  /** manifest_version (default: seconds since the epoch). */
  manifestVersion?: number;
  /** Days the manifest stays valid (default 30; negative makes it expired, for tests). */
  validityDays?: number;
}

/**
 * Lays out boot artifacts (kernel, initramfs, the hello job) under
 * `<dir>/<channel>/<arch>/` and signs that folder's manifest; each
 * architecture has its own folder and manifest in the same directory.
 */
export async function writeArtifacts(
  options: ArtifactsOptions,
): Promise<string> {
  const arch = canonicalArch(options.arch) ?? options.arch;
  const target = `${options.dir}/${options.channel}/${arch}`;
  await Deno.mkdir(target, { recursive: true });
  // Named as the architecture's boot loaders expect: vmlinuz, or Image on aarch64.
  const kernelFile = canonicalArch(options.arch)
    ? bootTarget(options.arch).kernelFile
    : "vmlinuz";
  await Deno.copyFile(options.kernel, `${target}/${kernelFile}`);
  await Deno.copyFile(options.initramfs, `${target}/initramfs.img`);
  await writeHelloJob(target);
  await Deno.remove(`${target}/manifest.json`).catch(() => {});
  if (!options.releaseKey) return target;
  const manifest = await buildManifest({
    store: new ArtifactStore({ root: options.dir }),
    channel: options.channel,
    arch,
    manifestVersion: options.manifestVersion ?? Math.floor(Date.now() / 1000),
    version: RUNTIME_VERSION,
    cmdline: options.cmdline,
    validityDays: options.validityDays ?? 30,
  });
  const signed = await signManifest(manifest, options.releaseKey);
  await Deno.writeTextFile(
    `${target}/manifest.json`,
    JSON.stringify(signed, null, 2) + "\n",
  );
  return target;
}

/**
 * Extracts the uncompressed ELF `vmlinux` from a bzImage (xz, zstd or gzip
 * payload). QEMU boots it directly through its PVH entry, skipping the
 * firmware and the decompressor (about 7 s less under TCG).
 */
export async function extractVmlinux(
  bzImage: string,
  output: string,
): Promise<string> {
  const image = await Deno.readFile(bzImage);
  const payloads: [Uint8Array, string[]][] = [
    [Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00), ["xz", "-dc"]],
    [Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd), ["zstd", "-dcq"]],
    [Uint8Array.of(0x1f, 0x8b, 0x08), ["gzip", "-dc"]],
  ];
  for (const [magic, [program, ...args]] of payloads) {
    for (let at = 0; at + magic.length <= image.length; at++) {
      if (!magic.every((b, i) => image[at + i] === b)) continue;
      const child = new Deno.Command(program, {
        args,
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const feeding = (async () => {
        const writer = child.stdin.getWriter();
        await writer.write(image.subarray(at)).catch(() => {});
        await writer.close().catch(() => {});
      })();
      const [out] = await Promise.all([child.output(), feeding]);
      // Trailing data after the payload makes the decompressor complain; the
      // ELF magic says whether what came out is the kernel.
      if (
        out.stdout[0] === 0x7f && out.stdout[1] === 0x45 &&
        out.stdout[2] === 0x4c
      ) {
        await Deno.writeFile(output, out.stdout);
        return output;
      }
      break;
    }
  }
  throw new BuildError(`no compressed ELF kernel found in ${bzImage}`);
}
