/**
 * `/boot.ipxe`: an iPXE script that chainloads Phase Boot from this provider,
 * so stock network firmware (iPXE, or PXE chaining into iPXE) boots it.
 * @module
 */
import type { BootManifest } from "../schemas/mod.ts";

/** What the script needs. */
export interface IpxeOptions {
  /** This provider's base URL as the client reached it. */
  baseUrl: string;
  /** The manifest the client should boot. */
  manifest: BootManifest;
  /** Keys the booting machine pins (peer ids). */
  pubkeys: string[];
}

/** The script text, or null when the manifest lacks a kernel or initramfs. */
export function ipxeScript(options: IpxeOptions): string | null {
  const { manifest, baseUrl } = options;
  const kernel = manifest.artifacts.kernel;
  const initramfs = manifest.artifacts.initramfs;
  if (!kernel || !initramfs) return null;
  const url = (path: string) =>
    new URL(
      path,
      `${baseUrl}/${manifest.channel}/${manifest.arch}/manifest.json`,
    ).href;
  const cmdline = [
    manifest.cmdline,
    `initrd=${initramfs.filename}`,
    `phase.provider=${baseUrl}`,
    `phase.channel=${manifest.channel}`,
    `phase.arch=${manifest.arch}`,
    ...(options.pubkeys.length
      ? [`phase.pubkey=${options.pubkeys.join(",")}`]
      : []),
  ].filter(Boolean).join(" ");
  return [
    "#!ipxe",
    `echo Phase Boot ${manifest.version} (${manifest.channel}/${manifest.arch}, manifest ${manifest.manifest_version}) from ${baseUrl}`,
    `kernel ${url(kernel.urls[0])} ${cmdline}`,
    `initrd ${url(initramfs.urls[0])}`,
    "boot",
    "",
  ].join("\n");
}
