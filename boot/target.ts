/**
 * The machines Phase Boot builds for: per architecture, the Debian names of
 * its packages, the kernel file it ships, the serial console it talks on and
 * the ELF machine its programs must be built for.
 * @module
 */
import { type Arch, canonicalArch } from "../schemas/mod.ts";

/** What differs between the architectures Phase Boot builds for. */
export interface BootTarget {
  /** Phase's name (`x86_64`, `aarch64`). */
  arch: Arch;
  /** Debian's name (`amd64`, `arm64`), for `pkg:arch` and the multiarch paths. */
  debianArch: "amd64" | "arm64";
  /** The Debian package whose dependency is the current kernel. */
  kernelMeta: string;
  /** The kernel's file name in the artifacts (what the manifest names). */
  kernelFile: string;
  /** The serial console on QEMU's default machine for this arch. */
  console: string;
  /** The ELF `e_machine` of this arch's executables. */
  elfMachine: number;
  /** Debian's multiarch library folder name (`aarch64-linux-gnu`). */
  multiarch: string;
  /** The npm package holding Deno for this arch (Linux, glibc). */
  denoPackage: string;
}

const TARGETS: Record<Arch, BootTarget> = {
  x86_64: {
    arch: "x86_64",
    debianArch: "amd64",
    kernelMeta: "linux-image-amd64",
    kernelFile: "vmlinuz",
    console: "ttyS0",
    elfMachine: 62,
    multiarch: "x86_64-linux-gnu",
    denoPackage: "@deno/linux-x64-glibc",
  },
  aarch64: {
    arch: "aarch64",
    debianArch: "arm64",
    kernelMeta: "linux-image-arm64",
    // Debian's arm64 "vmlinuz" is the uncompressed Image (QEMU -kernel and
    // kexec load it as is).
    kernelFile: "Image",
    console: "ttyAMA0",
    elfMachine: 183,
    multiarch: "aarch64-linux-gnu",
    denoPackage: "@deno/linux-arm64-glibc",
  },
};

/** The target for an arch name or alias (`amd64`, `arm64`); throws for others. */
export function bootTarget(name: string): BootTarget {
  const arch = canonicalArch(name);
  if (!arch) {
    throw new Error(`unknown architecture ${name} (x86_64 or aarch64)`);
  }
  return TARGETS[arch];
}

/** The target of the machine this runs on. */
export function hostTarget(): BootTarget {
  return bootTarget(Deno.build.arch);
}

/** The default kernel command line for a target's manifest. */
export function defaultCmdline(target: BootTarget): string {
  return `console=${target.console} panic=-1`;
}
