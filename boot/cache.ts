/**
 * The boot cache (`phase.cache=DEVICE` or `phase.cache=LABEL=NAME`): the
 * verified artifacts a machine booted and the highest `manifest_version` it
 * has booted, kept on a raw block device, so that the next boot downloads
 * only what changed and refuses any manifest older than one it has booted.
 *
 * Nothing read from the device is trusted for what it claims: each file is
 * checked against the signed manifest's sha256 before use, and one that does
 * not match is downloaded again. The floor only ever rises; a device that
 * loses it (wiped, swapped) leaves the command line's floor in force.
 *
 * Layout, with no filesystem so that the initramfs needs no filesystem driver
 * and mounts nothing: two header slots of 64 KiB at offsets 0 and 64 KiB, and
 * the data area from 1 MiB. A slot holds {@link SLOT_MAGIC}, the JSON
 * header's length (u32, little-endian), the header's sha256 and the header
 * (schemas/boot_cache.schema.json). The valid slot with the higher `seq` is
 * the current header; a write goes to the other slot, after the data it
 * describes is on the disk, so a write cut short leaves the previous header
 * whole. Phase takes a device only when it is blank (its first MiB all
 * zeros) or already a Phase boot cache.
 * @module
 */
import { sha256File } from "../provider/mod.ts";
import { SchemaError, validateDocument } from "../schemas/mod.ts";

/** Bytes of one header slot. */
export const SLOT_BYTES = 64 * 1024;
/** Where the data area starts; a blank device is all zeros before it. */
export const DATA_START = 1024 * 1024;
/** Alignment of artifacts in the data area. */
export const ALIGN = 4096;
/** The first bytes of a valid header slot. */
export const SLOT_MAGIC = new TextEncoder().encode("PHASE-BOOT-CACHE-1\n");
/** The label a blank device gets when Phase first takes it. */
export const DEFAULT_LABEL = "phase";

const PREFIX_BYTES = SLOT_MAGIC.length + 4 + 32;

/** Where one cached artifact lies. */
export interface CacheEntry {
  /** The artifact's name in the manifest. */
  name: string;
  /** sha256 of its bytes (lowercase hex), as the manifest that named it said. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** Its byte offset on the device. */
  offset: number;
}

/** The current state of a boot cache. */
export interface CacheHeader {
  /** Grows by one on every write. */
  seq: number;
  /** The highest manifest_version booted from this cache's machine. */
  floor: number;
  /** Matched by `phase.cache=LABEL=<label>`. */
  label: string;
  /** The cached artifacts. */
  entries: CacheEntry[];
}

/** A verified file a stage has, to be kept in the cache. */
export interface VerifiedFile {
  /** The artifact's name in the manifest. */
  name: string;
  /** sha256 (lowercase hex, the manifest's form), checked. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** Where it is (tmpfs). */
  path: string;
}

/** The cache cannot be used; the message is one line. Boot goes on without it. */
export class CacheError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CacheError";
  }
}

async function digest(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
}

/** The bytes of a header slot holding `header`. */
export async function encodeHeaderSlot(
  header: CacheHeader,
): Promise<Uint8Array> {
  // Never write what a reader would refuse.
  try {
    validateDocument<CacheHeader>("boot cache header", header);
  } catch (error) {
    throw new CacheError((error as Error).message);
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  if (PREFIX_BYTES + json.length > SLOT_BYTES) {
    throw new CacheError(`a header of ${json.length} bytes does not fit`);
  }
  const slot = new Uint8Array(SLOT_BYTES);
  slot.set(SLOT_MAGIC, 0);
  new DataView(slot.buffer).setUint32(SLOT_MAGIC.length, json.length, true);
  slot.set(await digest(json), SLOT_MAGIC.length + 4);
  slot.set(json, PREFIX_BYTES);
  return slot;
}

/**
 * Whether the entries lie in the data area of a device of `deviceBytes`,
 * aligned, without overlapping and with distinct names.
 */
export function entriesFit(
  entries: CacheEntry[],
  deviceBytes: number,
): boolean {
  const names = new Set(entries.map((e) => e.name));
  if (names.size !== entries.length) return false;
  // An empty file takes no room: at the offset where another starts, first.
  const sorted = [...entries].sort((a, b) =>
    a.offset - b.offset || a.size - b.size
  );
  let end = DATA_START;
  for (const entry of sorted) {
    if (entry.offset < end || entry.offset % ALIGN !== 0) return false;
    end = entry.offset + entry.size;
    if (end > deviceBytes) return false;
  }
  return true;
}

/**
 * The header a slot holds, or null when the slot is not a whole, valid one
 * for a device of `deviceBytes` (torn, damaged, foreign or blank).
 */
export async function decodeHeaderSlot(
  slot: Uint8Array,
  deviceBytes: number,
): Promise<CacheHeader | null> {
  if (slot.length < PREFIX_BYTES) return null;
  if (!SLOT_MAGIC.every((byte, i) => slot[i] === byte)) return null;
  const length = new DataView(slot.buffer, slot.byteOffset).getUint32(
    SLOT_MAGIC.length,
    true,
  );
  if (length > slot.length - PREFIX_BYTES) return null;
  const json = slot.subarray(PREFIX_BYTES, PREFIX_BYTES + length);
  const expected = slot.subarray(SLOT_MAGIC.length + 4, PREFIX_BYTES);
  const actual = await digest(json);
  if (!actual.every((byte, i) => byte === expected[i])) return null;
  let header: CacheHeader;
  try {
    header = validateDocument<CacheHeader>(
      "boot cache header",
      JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json)),
    );
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof TypeError) return null;
    if (error instanceof SchemaError) return null;
    throw error;
  }
  return entriesFit(header.entries, deviceBytes) ? header : null;
}

/** Which of the two decoded slots is current: the valid one with the higher seq. */
export function currentSlot(
  slots: [CacheHeader | null, CacheHeader | null],
): 0 | 1 | null {
  const [a, b] = slots;
  if (a && b) return b.seq > a.seq ? 1 : 0;
  if (a) return 0;
  if (b) return 1;
  return null;
}

/**
 * Offsets for `wanted` files in the gaps `kept` entries leave (first fit,
 * aligned); a file that does not fit is left out.
 */
export function placeEntries(
  kept: CacheEntry[],
  wanted: { name: string; sha256: string; size: number }[],
  deviceBytes: number,
): CacheEntry[] {
  const placed: CacheEntry[] = [];
  for (const file of wanted) {
    const taken = [...kept, ...placed].sort((a, b) => a.offset - b.offset);
    let offset = DATA_START;
    for (const entry of taken) {
      if (offset + file.size <= entry.offset) break;
      offset = Math.max(
        offset,
        Math.ceil((entry.offset + entry.size) / ALIGN) * ALIGN,
      );
    }
    if (offset + file.size <= deviceBytes) {
      placed.push({
        name: file.name,
        sha256: file.sha256,
        size: file.size,
        offset,
      });
    }
  }
  return placed;
}

async function readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return bytes.subarray(0, filled);
}

async function writeAt(
  file: Deno.FsFile,
  offset: number,
  bytes: Uint8Array,
): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  let written = 0;
  while (written < bytes.length) {
    written += await file.write(bytes.subarray(written));
  }
}

/**
 * Whether `path` may hold a cache: a block device, or a regular file (a disk
 * image). Never a character device: opening one for writing can act
 * (a watchdog, a terminal).
 */
async function mayHoldCache(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile || info.isBlockDevice === true;
  } catch {
    return false;
  }
}

/** The block devices and disk images in `dir` (a `LABEL=` may name any). */
async function deviceNodes(dir: string): Promise<string[]> {
  const devices: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (await mayHoldCache(path)) devices.push(path);
    }
  } catch {
    // no such folder: no devices to search
  }
  return devices.sort();
}

/** Where {@link BootCache.open} finds devices. */
export interface CacheOpenOptions {
  /**
   * The folder holding the block device nodes: a `/dev/NAME` spec opens
   * `deviceDir/NAME`, and `LABEL=` searches it (default /dev). Phase Boot
   * uses nodes /init made under /run, because Deno opens block devices
   * under /dev only with every permission granted.
   */
  deviceDir?: string;
}

/** A boot cache on one device, open for this stage. */
export class BootCache {
  readonly #file: Deno.FsFile;
  readonly #deviceBytes: number;
  #header: CacheHeader;
  #slot: 0 | 1;
  /** The device (or file) it lives on. */
  readonly device: string;

  private constructor(
    device: string,
    file: Deno.FsFile,
    deviceBytes: number,
    header: CacheHeader,
    slot: 0 | 1,
  ) {
    this.device = device;
    this.#file = file;
    this.#deviceBytes = deviceBytes;
    this.#header = header;
    this.#slot = slot;
  }

  /**
   * Opens the cache `spec` names: a device path, or `LABEL=NAME` for the
   * device whose cache header has that label. A blank device becomes an
   * empty cache; a device holding anything else is refused
   * ({@link CacheError}) and left as it was.
   */
  static async open(
    spec: string,
    { deviceDir = "/dev" }: CacheOpenOptions = {},
  ): Promise<BootCache> {
    if (spec.startsWith("LABEL=")) {
      const label = spec.slice(6);
      for (const device of await deviceNodes(deviceDir)) {
        const cache = await BootCache.#openDevice(device, false).catch(() =>
          null
        );
        if (cache && cache.label === label) return cache;
        cache?.close();
      }
      throw new CacheError(`no device holds a boot cache labelled ${label}`);
    }
    if (!spec.startsWith("/")) {
      throw new CacheError(
        `phase.cache wants a device path or LABEL=NAME, not ${spec}`,
      );
    }
    const path = spec.startsWith("/dev/")
      ? `${deviceDir}/${spec.slice(5)}`
      : spec;
    if (!await mayHoldCache(path)) {
      throw new CacheError(`${spec} is not a block device or a disk image`);
    }
    return await BootCache.#openDevice(path, true, spec);
  }

  static async #openDevice(
    path: string,
    takeBlank: boolean,
    device = path,
  ): Promise<BootCache> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true });
    } catch (error) {
      throw new CacheError(
        `cannot open ${device}: ${(error as Error).message.split("\n")[0]}`,
      );
    }
    try {
      const deviceBytes = await file.seek(0, Deno.SeekMode.End);
      if (deviceBytes < DATA_START + ALIGN) {
        throw new CacheError(`${device} is too small (${deviceBytes} bytes)`);
      }
      const slots: [CacheHeader | null, CacheHeader | null] = [
        await decodeHeaderSlot(await readAt(file, 0, SLOT_BYTES), deviceBytes),
        await decodeHeaderSlot(
          await readAt(file, SLOT_BYTES, SLOT_BYTES),
          deviceBytes,
        ),
      ];
      const slot = currentSlot(slots);
      if (slot !== null) {
        return new BootCache(device, file, deviceBytes, slots[slot]!, slot);
      }
      const start = await readAt(file, 0, DATA_START);
      if (!takeBlank || start.some((byte) => byte !== 0)) {
        throw new CacheError(
          `${device} holds data that is not a Phase boot cache; it is left alone`,
        );
      }
      // Blank: an empty cache, written to slot 0 (so slot 1 is "the other").
      const header = { seq: 1, floor: 0, label: DEFAULT_LABEL, entries: [] };
      await writeAt(file, 0, await encodeHeaderSlot(header));
      await file.syncData();
      return new BootCache(device, file, deviceBytes, header, 0);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** The highest manifest_version booted with this cache. */
  get floor(): number {
    return this.#header.floor;
  }

  /** The cache's label. */
  get label(): string {
    return this.#header.label;
  }

  /** The cached artifacts. */
  get entries(): readonly CacheEntry[] {
    return this.#header.entries;
  }

  /**
   * Copies the cached `name` to `output` when the cache says it holds the
   * bytes of `sha256`, and checks them: true when `output` now holds exactly
   * those bytes, false (and no `output`) otherwise.
   */
  async copyOut(
    name: string,
    sha256: string,
    size: number,
    output: string,
  ): Promise<boolean> {
    const entry = this.#header.entries.find((e) =>
      e.name === name && e.sha256 === sha256 && e.size === size
    );
    if (!entry) return false;
    {
      using out = await Deno.open(output, {
        write: true,
        create: true,
        truncate: true,
      });
      const chunk = 1024 * 1024;
      for (let done = 0; done < size; done += chunk) {
        const bytes = await readAt(
          this.#file,
          entry.offset + done,
          Math.min(chunk, size - done),
        );
        let written = 0;
        while (written < bytes.length) {
          written += await out.write(bytes.subarray(written));
        }
        if (bytes.length < Math.min(chunk, size - done)) break;
      }
    }
    if (await sha256File(output) === sha256) return true;
    await Deno.remove(output).catch(() => {});
    return false;
  }

  /**
   * Keeps `files` (verified this boot) and the floor `floor` in the cache.
   * Entries the manifest still names with the same hash stay where they
   * are (`current`: name to sha256, the manifest's); the rest are dropped,
   * and their space reused. Data first, then the header in the other slot.
   */
  async record(
    floor: number,
    files: VerifiedFile[],
    current: Record<string, string>,
  ): Promise<void> {
    const kept = this.#header.entries.filter((e) =>
      current[e.name] === e.sha256
    );
    const fresh = files.filter((f) =>
      !kept.some((e) => e.name === f.name && e.sha256 === f.sha256)
    );
    const newFloor = Math.max(this.#header.floor, floor);
    if (
      fresh.length === 0 && newFloor === this.#header.floor &&
      kept.length === this.#header.entries.length
    ) return;
    const survivors = kept.filter((e) => !fresh.some((f) => f.name === e.name));
    const placed = placeEntries(survivors, fresh, this.#deviceBytes);
    for (const entry of placed) {
      const path = fresh.find((f) => f.name === entry.name)!.path;
      using source = await Deno.open(path, { read: true });
      await this.#file.seek(entry.offset, Deno.SeekMode.Start);
      const buffer = new Uint8Array(1024 * 1024);
      for (;;) {
        const n = await source.read(buffer);
        if (n === null) break;
        let written = 0;
        while (written < n) {
          written += await this.#file.write(buffer.subarray(written, n));
        }
      }
    }
    await this.#file.syncData();
    const header: CacheHeader = {
      seq: this.#header.seq + 1,
      floor: newFloor,
      label: this.#header.label,
      entries: [...survivors, ...placed],
    };
    const slot = this.#slot === 0 ? 1 : 0;
    await writeAt(
      this.#file,
      slot * SLOT_BYTES,
      await encodeHeaderSlot(header),
    );
    await this.#file.syncData();
    this.#header = header;
    this.#slot = slot;
  }

  /** Closes the device. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}
