/**
 * A QEMU lab for boot tests: a network namespace with a bridge and tap
 * devices, providers started inside it, and VMs (TCG, serial console on
 * stdout) booted with the Phase initramfs, x86_64 (`-cpu max`, PVH) or
 * aarch64 (`-M virt -cpu max`, the arm64 Image). Everything is removed by
 * close().
 */
import {
  type ArtifactsOptions,
  type BootTarget,
  bootTarget,
  buildInitramfs,
  debianKernel,
  debianUserland,
  defaultCmdline,
  extractVmlinux,
  hostTarget,
  kernelFiles,
  targetDeno,
  writeArtifacts,
} from "../boot/mod.ts";
import type { NodeKey } from "../schemas/mod.ts";
import {
  type Announced,
  aptInstall,
  hasCommand,
  ROOT,
  runOk,
  spawnAnnounced,
  stopAnnounced,
  text,
} from "./helpers.ts";

/** Where Debian's ovmf package puts the UEFI firmware. */
export const OVMF_DIR = "/usr/share/OVMF";
/** Debian's UEFI firmware for QEMU's aarch64 `virt` machine (qemu-efi-aarch64). */
export const UEFI_FIRMWARE = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";

const TOOLS: [string, string][] = [
  ["qemu-system-x86_64", "qemu-system-x86"],
  ["busybox", "busybox-static"],
  ["cpio", "cpio"],
  ["kexec", "kexec-tools"],
  ["zstd", "zstd"],
  ["ip", "iproute2"],
  ["curl", "curl"],
  ["xz", "xz-utils"],
  ["dpkg-deb", "dpkg"],
  ["apt-get", "apt"],
];

/**
 * Installs the boot tools with apt-get when root; fails saying what is
 * missing otherwise. With `aarch64`, also QEMU for aarch64, its UEFI
 * firmware and Debian's arm64 package lists (`dpkg --add-architecture arm64`).
 */
export async function ensureBootTools(arch = "x86_64"): Promise<void> {
  const target = bootTarget(arch);
  const missing: string[] = [];
  const tools = target.arch === "aarch64"
    ? [...TOOLS, ["qemu-system-aarch64", "qemu-system-arm"], ["npm", "npm"]]
    : TOOLS;
  for (const [command, pkg] of tools) {
    if (!await hasCommand(command)) missing.push(pkg);
  }
  if (!await hasCommand("/bin/busybox")) missing.push("busybox-static");
  if (
    target.arch === "aarch64" &&
    !await Deno.stat(UEFI_FIRMWARE).then(() => true, () => false)
  ) {
    missing.push("qemu-efi-aarch64");
  }
  await aptInstall(missing, "boot tests");
  if (target.arch === hostTarget().arch) return;
  const known = await new Deno.Command("dpkg", {
    args: ["--print-foreign-architectures"],
    stdout: "piped",
  }).output();
  if (!text(known.stdout).split("\n").includes(target.debianArch)) {
    if (Deno.uid() !== 0) {
      throw new Error(
        `boot tests for ${target.arch} need root to run dpkg --add-architecture ${target.debianArch}`,
      );
    }
    await runOk("dpkg", ["--add-architecture", target.debianArch]);
    await runOk("apt-get", ["update", "-qq"]);
  }
}

/**
 * Installs what disk images need (GRUB for BIOS and UEFI, gdisk, dosfstools,
 * mtools, qemu-img) and, to boot them with UEFI, OVMF.
 */
export async function ensureImageTools(options: { ovmf: boolean }) {
  const missing: string[] = [];
  for (
    const [command, pkg] of [
      ["grub-mkimage", "grub-pc-bin"],
      ["sgdisk", "gdisk"],
      ["mkfs.fat", "dosfstools"],
      ["mcopy", "mtools"],
      ["qemu-img", "qemu-utils"],
    ]
  ) {
    if (!await hasCommand(command)) missing.push(pkg);
  }
  const files = [
    ["/usr/lib/grub/i386-pc/boot.img", "grub-pc-bin"],
    ["/usr/lib/grub/x86_64-efi/linux.mod", "grub-efi-amd64-bin"],
    ...(options.ovmf ? [[`${OVMF_DIR}/OVMF_CODE_4M.fd`, "ovmf"]] : []),
  ];
  for (const [path, pkg] of files) {
    try {
      await Deno.stat(path);
    } catch {
      missing.push(pkg);
    }
  }
  await aptInstall(missing, "disk image tests");
}

/** Kernel and initramfs built for the tests. */
export interface BootImages {
  /** The machine they are for. */
  target: BootTarget;
  /** The bzImage or arm64 Image (what manifests carry and kexec loads). */
  kernel: string;
  /** The kernel QEMU boots directly: the bzImage's vmlinux (PVH), or the arm64 Image itself. */
  vmlinux: string;
  initramfs: string;
  /** The kernel's module directory the initramfs took its drivers from. */
  modules: string;
  buildSeconds: number;
  initramfsBytes: number;
}

/**
 * Downloads the Debian kernel (cached) and builds the initramfs into `dir`,
 * for this machine or for `arch` (its Debian packages and Deno build).
 */
export async function buildImages(
  dir: string,
  arch = "x86_64",
): Promise<BootImages> {
  const target = bootTarget(arch);
  const cache = `${Deno.env.get("HOME") ?? "/tmp"}/.cache/phase-boot`;
  await Deno.mkdir(cache, { recursive: true });
  let packageRoot: string;
  try {
    packageRoot = await debianKernel(cache, undefined, target);
  } catch {
    await new Deno.Command("apt-get", {
      args: ["update", "-qq"],
      stdout: "null",
    }).output();
    packageRoot = await debianKernel(cache, undefined, target);
  }
  const { kernel, modules } = kernelFiles(packageRoot);
  const foreign = target.arch !== hostTarget().arch;
  const built = await buildInitramfs({
    modules,
    output: dir,
    root: ROOT,
    target,
    ...(foreign
      ? {
        userland: await debianUserland(target, cache),
        deno: await targetDeno(target, cache),
      }
      : {}),
  });
  const vmlinux = target.arch === "x86_64"
    ? await extractVmlinux(kernel, `${dir}/vmlinux`)
    : kernel;
  return {
    target,
    kernel,
    vmlinux,
    initramfs: built.path,
    modules,
    buildSeconds: built.seconds,
    initramfsBytes: built.size,
  };
}

/** Lays out `dir` as a provider's artifacts with a manifest signed by `release`. */
export async function releaseArtifacts(
  dir: string,
  images: BootImages,
  release: NodeKey,
  extra: Partial<ArtifactsOptions> = {},
): Promise<string> {
  await writeArtifacts({
    dir,
    channel: "stable",
    arch: images.target.arch,
    kernel: images.kernel,
    initramfs: images.initramfs,
    cmdline: `${defaultCmdline(images.target)} quiet`,
    releaseKey: release,
    ...extra,
  });
  return dir;
}

/** What a VM printed. */
export interface VmRun {
  /** Console output. */
  output: string;
  /** Host seconds from QEMU start to the match (or to the end). */
  seconds: number;
  /** True when `until` matched. */
  matched: boolean;
}

/** A disk image to boot through the machine's firmware. */
export interface DiskBoot {
  /** The raw image, attached as the first disk (`-drive file=…,format=raw`). */
  image: string;
  /** SeaBIOS (QEMU's default BIOS) or OVMF (UEFI, Debian's ovmf). */
  firmware: "seabios" | "ovmf";
}

/** How to boot one VM. */
export interface BootOptions {
  /** Kernel and initramfs (unused when booting a disk image). */
  images?: BootImages;
  /** Boot this disk image through firmware instead of -kernel. */
  diskBoot?: DiskBoot;
  /** phase.* options (console and panic settings are added; direct boots only). */
  cmdline: string;
  /** Console text to wait for. */
  until: RegExp;
  /** Hard limit; the VM is killed after it. */
  timeoutMs: number;
  /** Raw disk image to attach (virtio). */
  disk?: string;
  /** Boot through the NIC's iPXE firmware (DHCP + boot file) instead of -kernel. */
  firmware?: boolean;
  /**
   * aarch64: start the kernel through UEFI firmware (Debian's
   * qemu-efi-aarch64) and the Image's EFI stub, instead of QEMU's own loader.
   */
  uefi?: boolean;
  /** Sees console output as it arrives. */
  onOutput?: (chunk: string) => void;
}

/** A network namespace with a bridge (10.77.0.1/24) and tap devices. */
export class Lab {
  readonly ns = `phase-boot-${crypto.randomUUID().slice(0, 8)}`;
  #taps = 0;
  #providers: Announced<
    { url: string; peer_id: string; multiaddrs: string[] }
  >[] = [];

  async #ip(...args: string[]): Promise<void> {
    const out = await new Deno.Command("ip", { args, stderr: "piped" })
      .output();
    if (out.code !== 0) {
      throw new Error(`ip ${args.join(" ")}: ${text(out.stderr)}`);
    }
  }

  /** Creates the namespace and bridge. */
  async open(): Promise<void> {
    await this.#ip("netns", "add", this.ns);
    await this.#ip("-n", this.ns, "link", "set", "lo", "up");
    // Flood multicast (mDNS) to every port instead of relying on IGMP snooping.
    await this.#ip(
      "-n",
      this.ns,
      "link",
      "add",
      "br0",
      "type",
      "bridge",
      "mcast_snooping",
      "0",
    );
    await this.#ip("-n", this.ns, "addr", "add", "10.77.0.1/24", "dev", "br0");
    await this.#ip("-n", this.ns, "link", "set", "br0", "up");
    await this.#ip("-n", this.ns, "route", "add", "224.0.0.0/4", "dev", "br0");
  }

  /** A new tap device on the bridge. */
  async tap(): Promise<string> {
    const name = `tap${this.#taps++}`;
    await this.#ip("-n", this.ns, "tuntap", "add", "dev", name, "mode", "tap");
    await this.#ip("-n", this.ns, "link", "set", name, "master", "br0");
    await this.#ip("-n", this.ns, "link", "set", name, "up");
    return name;
  }

  /** Starts `phase serve` inside the namespace. */
  async provider(
    args: string[],
  ): Promise<
    Announced<{ url: string; peer_id: string; multiaddrs: string[] }>
  > {
    const provider = await spawnAnnounced<
      { url: string; peer_id: string; multiaddrs: string[] }
    >("ip", {
      args: this.#phaseArgs([
        "serve",
        "--bind",
        "10.77.0.1",
        "--json",
        ...args,
      ]),
    });
    this.#providers.push(provider);
    return provider;
  }

  /**
   * Starts a provider of release artifacts on `port` with jobs off; `extra`
   * defaults to no DHT.
   */
  serveRelease(options: {
    artifacts: string;
    port: number;
    dataDir: string;
    extra?: string[];
  }): ReturnType<Lab["provider"]> {
    return this.provider([
      "--artifacts",
      options.artifacts,
      "--port",
      String(options.port),
      "--data-dir",
      options.dataDir,
      "--no-jobs",
      ...(options.extra ?? ["--no-dht"]),
    ]);
  }

  /** `ip` arguments that run a `phase` command inside the namespace. */
  #phaseArgs(args: string[]): string[] {
    return [
      "netns",
      "exec",
      this.ns,
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}/main.ts`,
      ...args,
    ];
  }

  /** Runs a `phase` command inside the namespace (as the VMs' neighbour). */
  phase(args: string[]): Promise<Deno.CommandOutput> {
    return new Deno.Command("ip", {
      args: this.#phaseArgs(args),
      stdout: "piped",
      stderr: "piped",
    }).output();
  }

  /** Stops a provider started with {@link provider}. */
  async stopProvider(provider: Announced<unknown>): Promise<void> {
    await stopAnnounced(provider);
    this.#providers = this.#providers.filter((p) => p !== provider);
  }

  /** Boots a VM and reads its console until `until` matches, it exits, or the time runs out. */
  async boot(options: BootOptions): Promise<VmRun> {
    const vm = await this.start(options);
    try {
      return await vm.run;
    } finally {
      await vm.stop();
    }
  }

  /**
   * Boots a VM that keeps running after `until` matched: `run` resolves at
   * the match (or the end), `stop()` ends the VM.
   */
  async start(
    options: BootOptions,
  ): Promise<{ run: Promise<VmRun>; stop: () => Promise<void> }> {
    const tap = await this.tap();
    const firmwareArgs: string[] = [];
    if (options.diskBoot?.firmware === "ovmf") {
      // Each VM writes its own copy of the UEFI variable store.
      const vars = await Deno.makeTempFile({ prefix: "phase-ovmf-vars-" });
      this.#files.push(vars);
      await Deno.copyFile(`${OVMF_DIR}/OVMF_VARS_4M.fd`, vars);
      firmwareArgs.push(
        "-drive",
        `if=pflash,format=raw,readonly=on,file=${OVMF_DIR}/OVMF_CODE_4M.fd`,
        "-drive",
        `if=pflash,format=raw,file=${vars}`,
      );
    }
    const direct = !options.firmware && !options.diskBoot;
    if (direct && !options.images) throw new Error("no kernel to boot");
    const target = options.images?.target ?? hostTarget();
    const args = [
      "netns",
      "exec",
      this.ns,
      ...(target.arch === "aarch64"
        // virt: PL011 console, PCI for virtio-net-pci. 1 GiB: the arm64
        // Image is uncompressed and kexec holds it with the initramfs.
        ? ["qemu-system-aarch64", "-M", "virt", "-m", "1024"]
        : ["qemu-system-x86_64", "-m", "512"]),
      "-accel",
      "tcg",
      "-cpu",
      // Pointer authentication, which Debian's arm64 kernel uses throughout,
      // is far cheaper to emulate with QEMU's own algorithm.
      target.arch === "aarch64" ? "max,pauth-impdef=on" : "max",
      "-smp",
      "1",
      "-nographic",
      "-no-reboot",
      // Firmware boots print through -nographic's serial mux.
      ...(direct ? ["-nodefaults", "-serial", "stdio"] : []),
      ...firmwareArgs,
      ...(options.firmware ? ["-boot", "n"] : []),
      ...(options.diskBoot
        ? ["-drive", `file=${options.diskBoot.image},format=raw`]
        : []),
      ...(direct
        ? [
          // The first boot is the direct PVH boot of vmlinux; kexec loads the bzImage.
          "-kernel",
          options.images!.vmlinux,
          "-initrd",
          options.images!.initramfs,
          "-append",
          `${defaultCmdline(target)} quiet ${options.cmdline}`,
        ]
        : []),
      "-netdev",
      `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      "-device",
      // A MAC of its own per VM: QEMU's default is the same for every VM,
      // which breaks VM-to-VM traffic on the bridge.
      `virtio-net-pci,netdev=n0,mac=52:54:00:77:00:${
        (0x10 + this.#taps).toString(16).padStart(2, "0")
      }`,
    ];
    if (options.uefi) args.push("-bios", UEFI_FIRMWARE);
    if (options.disk) {
      args.push("-drive", `file=${options.disk},format=raw,if=virtio`);
    }
    const started = performance.now();
    // `ip netns exec` execs QEMU, so this PID is QEMU's own.
    const child = new Deno.Command("ip", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const kill = () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(kill, options.timeoutMs);
    const decoder = new TextDecoder();
    const reader = child.stdout.getReader();
    const run = (async (): Promise<VmRun> => {
      let output = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const piece = decoder.decode(value, { stream: true });
        output += piece;
        options.onOutput?.(piece);
        if (options.until.test(output)) {
          return {
            output,
            seconds: (performance.now() - started) / 1000,
            matched: true,
          };
        }
      }
      return {
        output,
        seconds: (performance.now() - started) / 1000,
        matched: false,
      };
    })();
    // Keep draining the console after a match so QEMU never blocks writing it.
    run.then(async () => {
      while (
        !(await reader.read().catch(() => ({ done: true }))).done
      ) { /* drain */ }
    });
    return {
      run,
      stop: async () => {
        clearTimeout(timer);
        kill();
        await child.status;
        await child.stderr.cancel().catch(() => {});
      },
    };
  }

  /** Runs a DHCP server on the bridge whose boot file is `bootFile`. */
  async dhcp(dir: string, bootFile: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/udhcpd.leases`, "");
    await Deno.writeTextFile(
      `${dir}/udhcpd.conf`,
      [
        "start 10.77.0.100",
        "end 10.77.0.150",
        "interface br0",
        "siaddr 10.77.0.1",
        `boot_file ${bootFile}`,
        "option subnet 255.255.255.0",
        "option router 10.77.0.1",
        "option lease 600",
        `lease_file ${dir}/udhcpd.leases`,
        `pidfile ${dir}/udhcpd.pid`,
        "",
      ].join("\n"),
    );
    this.#dhcp = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        this.ns,
        "busybox",
        "udhcpd",
        "-f",
        `${dir}/udhcpd.conf`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  #dhcp: Deno.ChildProcess | null = null;
  #files: string[] = [];

  /** Stops providers and removes the namespace. */
  async close(): Promise<void> {
    for (const provider of this.#providers) {
      await stopAnnounced(provider).catch(() => {});
    }
    if (this.#dhcp) {
      try {
        this.#dhcp.kill("SIGKILL");
      } catch {
        // already gone
      }
      await this.#dhcp.status;
    }
    await this.#ip("netns", "del", this.ns).catch(() => {});
    for (const file of this.#files) await Deno.remove(file).catch(() => {});
  }
}
