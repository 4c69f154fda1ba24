/**
 * The hand-over across kexec: stage 1 has fetched and verified the manifest
 * and the artifacts; stage 2 should not fetch them again. Stage 1 writes
 * them as an uncompressed cpio archive (`handover/manifest.json` and
 * `handover/<filename>` for each artifact) and puts it in front of the
 * initramfs it kexecs; the kernel unpacks both archives into the root file
 * system, the hand-over first, so the verified initramfs's own files win.
 *
 * Stage 2 trusts none of it: the hand-over rode outside the verified image,
 * so it is checked again exactly like bytes from the network: the manifest
 * against the pinned keys, its expiry, the rollback floor, channel and
 * architecture; every file against the manifest's size and sha256. What
 * fails is said on the console and fetched from the network instead.
 * @module
 */
import {
  type BootManifest,
  type ManifestPolicy,
  verifyManifest,
} from "../schemas/mod.ts";
import { sha256File } from "../provider/mod.ts";

/** Where the hand-over lands in stage 2's root file system. */
export const HANDOVER_DIR = "/handover";

/** The largest hand-over manifest stage 2 reads (the network path's bound too). */
export const MAX_HANDOVER_MANIFEST = 1024 * 1024;

const encoder = new TextEncoder();

/** One newc header (`070701`, 13 eight-digit hex fields) with its name, padded to 4 bytes. */
function newcHeader(
  name: string,
  { ino, mode, size }: { ino: number; mode: number; size: number },
): Uint8Array {
  const nameBytes = encoder.encode(name);
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const fields = [
    ino,
    mode,
    0, // uid
    0, // gid
    mode & 0o040000 ? 2 : 1, // nlink
    0, // mtime
    size,
    0,
    0,
    0,
    0,
    nameBytes.length + 1,
    0, // check
  ];
  const head = encoder.encode(`070701${fields.map(hex).join("")}`);
  const length = head.length + nameBytes.length + 1;
  const out = new Uint8Array(length + ((4 - length % 4) % 4));
  out.set(head);
  out.set(nameBytes, head.length);
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await file.write(bytes.subarray(at));
  }
}

async function appendFile(file: Deno.FsFile, path: string): Promise<number> {
  using source = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1024 * 1024);
  let total = 0;
  for (;;) {
    const n = await source.read(buffer);
    if (n === null) return total;
    await writeAll(file, buffer.subarray(0, n));
    total += n;
  }
}

/** What {@link writeHandoverInitrd} writes. */
export interface HandoverOptions {
  /** The verified manifest. */
  manifest: BootManifest;
  /** Verified files by their manifest filename (the hand-over's names). */
  files: Record<string, string>;
  /** The verified initramfs the kernel boots, appended after the hand-over. */
  initramfs: string;
  /** The combined initrd to write. */
  output: string;
}

/**
 * Writes the initrd for kexec: the hand-over archive, then the initramfs
 * byte for byte. Returns its size.
 */
export async function writeHandoverInitrd(
  { manifest, files, initramfs, output }: HandoverOptions,
): Promise<number> {
  using out = await Deno.open(output, {
    write: true,
    create: true,
    truncate: true,
  });
  let ino = 1;
  let written = 0;
  const put = async (bytes: Uint8Array) => {
    await writeAll(out, bytes);
    written += bytes.length;
  };
  const pad = () => put(new Uint8Array((4 - written % 4) % 4));
  await put(newcHeader("handover", { ino: ino++, mode: 0o040755, size: 0 }));
  const manifestBytes = encoder.encode(JSON.stringify(manifest));
  await put(
    newcHeader("handover/manifest.json", {
      ino: ino++,
      mode: 0o100644,
      size: manifestBytes.length,
    }),
  );
  await put(manifestBytes);
  await pad();
  for (const [filename, path] of Object.entries(files).sort()) {
    const size = (await Deno.stat(path)).size;
    await put(
      newcHeader(`handover/${filename}`, {
        ino: ino++,
        mode: 0o100644,
        size,
      }),
    );
    const copied = await appendFile(out, path);
    if (copied !== size) throw new Error(`${path} changed while copied`);
    written += copied;
    await pad();
  }
  await put(newcHeader("TRAILER!!!", { ino: 0, mode: 0, size: 0 }));
  written += await appendFile(out, initramfs);
  return written;
}

/**
 * True when `dir` is a directory itself, not a link to one: a hand-over
 * that made /handover point elsewhere (to /run, say) is not read at all,
 * so nothing there is taken or removed.
 */
export async function handoverUsable(dir: string): Promise<boolean> {
  try {
    return (await Deno.lstat(dir)).isDirectory;
  } catch {
    return false;
  }
}

/** Outcome of reading the handed-over manifest. */
export type HandoverManifest =
  | { manifest: BootManifest; signer: string }
  | { refused: string }
  | null;

/**
 * The handed-over manifest in `dir`, verified against `policy` like one
 * from the network; null when there is none, `refused` with the reason when
 * it does not verify (or is too big to be one).
 */
export async function readHandoverManifest(
  dir: string,
  policy: ManifestPolicy,
): Promise<HandoverManifest> {
  const path = `${dir}/manifest.json`;
  let info;
  try {
    info = await Deno.lstat(path);
  } catch {
    return null;
  }
  if (!info.isFile) return { refused: "manifest.json is not a file" };
  if (info.size > MAX_HANDOVER_MANIFEST) {
    return {
      refused: `manifest.json is larger than ${MAX_HANDOVER_MANIFEST} bytes`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return { refused: "manifest.json is not JSON" };
  }
  const verdict = await verifyManifest(value, policy);
  if (!verdict.valid) return { refused: verdict.reason };
  return { manifest: verdict.manifest, signer: verdict.signer };
}

/**
 * Moves the handed-over `filename` to `output` and keeps it there when its
 * size and sha256 are the manifest's; returns "taken", "absent", or the
 * reason it was refused (nothing is left at `output` then). The hash is
 * taken of the file at `output`, the one that will be used.
 */
export async function takeHandedOver(
  dir: string,
  artifact: { filename: string; size: number; sha256: string },
  output: string,
): Promise<"taken" | "absent" | { refused: string }> {
  const path = `${dir}/${artifact.filename}`;
  let info;
  try {
    info = await Deno.lstat(path);
  } catch {
    return "absent";
  }
  let reason: string | null = null;
  if (!info.isFile) reason = "not a file";
  else if (info.size !== artifact.size) {
    reason = `${info.size} bytes, the manifest says ${artifact.size}`;
  } else {
    try {
      await Deno.rename(path, output);
    } catch {
      // Another file system (the root's ramfs to /run's tmpfs).
      await Deno.copyFile(path, output);
    }
    if (await sha256File(output) !== artifact.sha256) {
      reason = "sha256 differs from the manifest's";
      await Deno.remove(output).catch(() => {});
    }
  }
  await Deno.remove(path).catch(() => {});
  return reason ? { refused: reason } : "taken";
}
