/**
 * A bootable disk image of Phase Boot for BIOS and UEFI machines, built on
 * a plain file: no loop devices, no mounts, no root. A GPT disk with
 *
 * - partition 1, the BIOS boot partition (1 MiB): GRUB's i386-pc core,
 *   started by GRUB's boot sector in the protective MBR;
 * - partition 2, the EFI system partition (FAT32): GRUB's x86_64 EFI image
 *   as the removable-media path `EFI/BOOT/BOOTX64.EFI`, the one grub.cfg
 *   both GRUBs read, the kernel and the initramfs.
 *
 * sgdisk writes the partition table into the file, `mkfs.fat --offset`
 * formats the ESP inside it and mtools copies files into it. Both GRUB
 * images carry every module they need, so the ESP holds no module folder.
 * `dd` the image to a USB stick and it boots.
 * @module
 */
import { parseBootOptions } from "./cmdline.ts";
import { BuildError, runTool } from "./tool.ts";

const SECTOR = 512;
const MIB = 1024 * 1024;
/** First sector of the BIOS boot partition (1 MiB aligned). */
const BIOS_START = 2048;
/** First sector of the ESP. */
const ESP_START = 4096;
const GRUB_MODULES = [
  "part_gpt",
  "fat",
  "normal",
  "linux",
  "echo",
  "serial",
  "terminal",
  "test",
  "configfile",
];
const PACKAGES =
  "grub-pc-bin grub-efi-amd64-bin gdisk dosfstools mtools qemu-utils";

/** What {@link buildDiskImage} needs. */
export interface DiskImageOptions {
  /** The kernel (bzImage). */
  kernel: string;
  /** The initramfs. */
  initramfs: string;
  /** The whole kernel command line. */
  cmdline: string;
  /** Where to write the raw image. */
  output: string;
  /** Also write a QCOW2 copy there. */
  qcow2?: string;
  /** GRUB's platform folders (default /usr/lib/grub). */
  grubDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link buildDiskImage} made. */
export interface DiskImage {
  /** The raw image. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** The QCOW2 copy, if asked for. */
  qcow2: string | null;
  /** Size of the ESP in MiB. */
  espMib: number;
  /** Seconds the build took. */
  seconds: number;
}

/** The phase.* settings a disk image boots with. */
export interface ImageBootSettings {
  /** The rest of the kernel command line (console, panic, …). */
  base: string;
  /** Release keys the machine pins (peer ids). */
  pubkeys: string[];
  /** local, internet or private. */
  mode: string;
  /** A provider URL, or none (found by the mode). */
  provider?: string;
}

/**
 * The kernel command line of a disk image: `base` and the phase.* options,
 * checked the way the booted machine will read them.
 */
export function imageCmdline(settings: ImageBootSettings): string {
  if (settings.pubkeys.length === 0) {
    throw new BuildError(
      "a disk image needs the release key it pins (--pubkey)",
    );
  }
  const words = [
    ...settings.base.split(/\s+/).filter((w) => w && !w.startsWith("phase.")),
    `phase.mode=${settings.mode}`,
    `phase.pubkey=${settings.pubkeys.join(",")}`,
  ];
  if (settings.provider) {
    let url: URL;
    try {
      url = new URL(settings.provider);
    } catch {
      throw new BuildError(`--provider is not a URL: ${settings.provider}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new BuildError("--provider must be an http(s) URL");
    }
    words.push(`phase.provider=${settings.provider}`);
  }
  const cmdline = words.join(" ");
  try {
    parseBootOptions(cmdline);
  } catch (error) {
    throw new BuildError((error as Error).message);
  }
  return cmdline;
}

/** The grub.cfg both GRUBs read: serial and screen, one entry, no wait. */
export function grubConfig(cmdline: string): string {
  if (/[\n"'$\\;]/.test(cmdline)) {
    throw new BuildError(
      "the kernel command line may not hold quotes, $, \\, ; or line breaks",
    );
  }
  return [
    "# Phase Boot (phase boot image). BIOS and UEFI GRUB both read this file.",
    "serial --unit=0 --speed=115200",
    "terminal_input console serial",
    "terminal_output console serial",
    "set timeout=1",
    "set default=0",
    'menuentry "Phase Boot" {',
    '  echo "Phase Boot: loading the kernel and initramfs"',
    `  linux /vmlinuz ${cmdline}`,
    "  initrd /initramfs.img",
    "}",
    "",
  ].join("\n");
}

/** A GUID (text) from 16 bytes of a digest, marked as version 4. */
function guidOf(bytes: Uint8Array): string {
  const b = Uint8Array.from(bytes.subarray(0, 16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${
    hex.slice(16, 20)
  }-${hex.slice(20)}`;
}

/**
 * Puts GRUB's BIOS stage 1 into sector 0 (keeping the partition table) and
 * the core image at the BIOS boot partition, pointing each at the next:
 * boot.img's kernel sector at 0x5c names the core's first sector, and the
 * core's first sector (diskboot) lists where the rest of it starts (its
 * length and load segment are already set by grub-mkimage).
 */
export function embedBiosBoot(
  disk: Uint8Array,
  bootImg: Uint8Array,
  coreImg: Uint8Array,
  coreSector: number,
  maxSectors: number,
): void {
  if (bootImg.length !== SECTOR) {
    throw new BuildError("GRUB's boot.img is not one sector");
  }
  if (Math.ceil(coreImg.length / SECTOR) > maxSectors) {
    throw new BuildError("GRUB's core image does not fit its partition");
  }
  disk.set(bootImg.subarray(0, 440), 0);
  const view = new DataView(disk.buffer, disk.byteOffset, disk.byteLength);
  view.setBigUint64(0x5c, BigInt(coreSector), true);
  // A hard disk: skip the check for broken BIOSes passing a floppy number.
  disk[0x66] = 0x90;
  disk[0x67] = 0x90;
  const at = coreSector * SECTOR;
  disk.set(coreImg, at);
  view.setBigUint64(at + SECTOR - 12, BigInt(coreSector + 1), true);
}

/** Builds the raw (and QCOW2) image. Needs GRUB, gdisk, dosfstools, mtools. */
export async function buildDiskImage(
  options: DiskImageOptions,
): Promise<DiskImage> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const grub = options.grubDir ?? "/usr/lib/grub";
  const config = grubConfig(options.cmdline);
  const sizes = await Promise.all(
    [options.kernel, options.initramfs].map(async (path) => {
      try {
        return (await Deno.stat(path)).size;
      } catch {
        throw new BuildError(`${path} is missing (run phase boot build first)`);
      }
    }),
  );
  const identity = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(`${config}\n${sizes.join(" ")}`),
    ),
  );
  const work = await Deno.makeTempDir({ prefix: "phase-image-" });
  try {
    log("making GRUB's BIOS and UEFI images");
    const tool = (
      program: string,
      args: string[],
      env?: Record<string, string>,
    ) => runTool(program, args, { packages: PACKAGES, env });
    await tool("grub-mkimage", [
      "-d",
      `${grub}/i386-pc`,
      "-O",
      "i386-pc",
      "-o",
      `${work}/core.img`,
      "-p",
      "(,gpt2)/boot/grub",
      "biosdisk",
      ...GRUB_MODULES,
    ]);
    await tool("grub-mkimage", [
      "-d",
      `${grub}/x86_64-efi`,
      "-O",
      "x86_64-efi",
      "-o",
      `${work}/BOOTX64.EFI`,
      "-p",
      "/boot/grub",
      ...GRUB_MODULES,
      "efi_gop",
    ]);
    await Deno.writeTextFile(`${work}/grub.cfg`, config);
    const efiSize = (await Deno.stat(`${work}/BOOTX64.EFI`)).size;
    // FAT32 needs at least 32 MiB; leave an eighth free plus 8 MiB.
    const payload = sizes[0] + sizes[1] + efiSize + config.length;
    const espMib = Math.max(64, Math.ceil((payload * 1.125) / MIB) + 8);
    const espSectors = espMib * MIB / SECTOR;
    // One MiB after the ESP holds the backup GPT.
    const totalSectors = ESP_START + espSectors + 2048;
    await Deno.mkdir(
      options.output.slice(0, options.output.lastIndexOf("/") + 1) || ".",
      {
        recursive: true,
      },
    );
    const image = options.output;
    await Deno.remove(image).catch(() => {});
    const file = await Deno.open(image, {
      create: true,
      write: true,
      truncate: true,
    });
    await file.truncate(totalSectors * SECTOR);
    file.close();
    log(`partitioning (GPT: BIOS boot 1 MiB, ESP ${espMib} MiB)`);
    await tool("sgdisk", [
      "--clear",
      `--disk-guid=${guidOf(identity)}`,
      `--new=1:${BIOS_START}:${ESP_START - 1}`,
      "--typecode=1:ef02",
      "--change-name=1:BIOS boot",
      `--partition-guid=1:${guidOf(identity.subarray(8))}`,
      `--new=2:${ESP_START}:${ESP_START + espSectors - 1}`,
      "--typecode=2:ef00",
      "--change-name=2:EFI system",
      `--partition-guid=2:${guidOf(identity.subarray(16))}`,
      image,
    ]);
    log("formatting the ESP inside the image (FAT32)");
    await tool("mkfs.fat", [
      "-F",
      "32",
      "-n",
      "PHASEBOOT",
      "--invariant", // fixed volume id and timestamps
      `--offset=${ESP_START}`,
      image,
      String(espSectors * SECTOR / 1024),
    ]);
    log("copying GRUB, the kernel and the initramfs into the ESP");
    const esp = `${image}@@${ESP_START * SECTOR}`;
    const env = { MTOOLS_SKIP_CHECK: "1" };
    await tool("mmd", [
      "-i",
      esp,
      "::/EFI",
      "::/EFI/BOOT",
      "::/boot",
      "::/boot/grub",
    ], env);
    await tool("mcopy", [
      "-i",
      esp,
      `${work}/BOOTX64.EFI`,
      "::/EFI/BOOT/BOOTX64.EFI",
    ], env);
    await tool("mcopy", [
      "-i",
      esp,
      `${work}/grub.cfg`,
      "::/boot/grub/grub.cfg",
    ], env);
    await tool("mcopy", ["-i", esp, options.kernel, "::/vmlinuz"], env);
    await tool(
      "mcopy",
      ["-i", esp, options.initramfs, "::/initramfs.img"],
      env,
    );
    log("installing GRUB's BIOS boot sector and core image");
    const head = new Uint8Array(ESP_START * SECTOR);
    const handle = await Deno.open(image, { read: true, write: true });
    try {
      let read = 0;
      while (read < head.length) {
        const n = await handle.read(head.subarray(read));
        if (n === null) {
          throw new BuildError(`${image} is shorter than its partitions`);
        }
        read += n;
      }
      embedBiosBoot(
        head,
        await Deno.readFile(`${grub}/i386-pc/boot.img`),
        await Deno.readFile(`${work}/core.img`),
        BIOS_START,
        ESP_START - BIOS_START,
      );
      await handle.seek(0, Deno.SeekMode.Start);
      let written = 0;
      while (written < head.length) {
        written += await handle.write(head.subarray(written));
      }
    } finally {
      handle.close();
    }
    await tool("sgdisk", ["--verify", image]);
    let qcow2: string | null = null;
    if (options.qcow2) {
      log(`converting to QCOW2 (${options.qcow2})`);
      await Deno.remove(options.qcow2).catch(() => {});
      await tool("qemu-img", [
        "convert",
        "-f",
        "raw",
        "-O",
        "qcow2",
        image,
        options.qcow2,
      ]);
      qcow2 = options.qcow2;
    }
    return {
      path: image,
      size: totalSectors * SECTOR,
      qcow2,
      espMib,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
