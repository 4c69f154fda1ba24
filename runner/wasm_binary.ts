/**
 * Just enough of the WebAssembly binary format to rewrite modules before
 * they are compiled: section walking, LEB128, and memory limits.
 * @module
 */

/** A module that cannot be run; the message is one line. */
export class ModuleError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ModuleError";
  }
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
/** Section ids of the binary format. */
export const SECTION = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  table: 4,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  element: 9,
  code: 10,
  data: 11,
  dataCount: 12,
  tag: 13,
} as const;
/** Bytes of one WebAssembly page. */
export const WASM_PAGE = 65536;

/** Bytes per MiB, for converting memory sizes. */
export const MIB = 1024 * 1024;

/** A byte reader over (part of) a module. */
export class Reader {
  /** Position of the next byte. */
  offset = 0;
  /** Reads `bytes` from the start. */
  constructor(readonly bytes: Uint8Array) {}

  /** One byte. */
  byte(): number {
    if (this.offset >= this.bytes.length) {
      throw new ModuleError("not a valid WebAssembly module: unexpected end");
    }
    return this.bytes[this.offset++];
  }

  /** Unsigned LEB128, up to 64 bits, as a bigint. */
  uleb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) {
        throw new ModuleError("not a valid WebAssembly module: bad LEB128");
      }
    }
  }

  /** Unsigned LEB128 of at most 32 bits, without bigint (the hot path). */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw new ModuleError("not a valid WebAssembly module: u32 overflow");
  }

  /** Skips one (signed or unsigned) LEB128 number of at most 64 bits. */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    throw new ModuleError("not a valid WebAssembly module: bad LEB128");
  }

  /** Skips `count` bytes. */
  skip(count: number): void {
    if (this.offset + count > this.bytes.length) {
      throw new ModuleError("not a valid WebAssembly module: unexpected end");
    }
    this.offset += count;
  }

  /** Skips a name (length-prefixed bytes). */
  name(): void {
    this.skip(this.u32());
  }

  /** Reads a name (length-prefixed UTF-8). */
  string(): string {
    const length = this.u32();
    const start = this.offset;
    this.skip(length);
    return new TextDecoder().decode(this.bytes.subarray(start, this.offset));
  }
}

/**
 * The error for a module that uses a WebAssembly proposal Phase cannot
 * meter or bound, named so the user knows what to turn off.
 */
export function unsupportedProposal(proposal: string): ModuleError {
  return new ModuleError(
    `the module uses ${proposal}, which Phase does not support (it cannot meter or bound it)`,
  );
}

/** Value types: the MVP, SIMD and reference-types ones Phase runs. */
const VALUE_TYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

/** Reads one value type, refusing those of unsupported proposals by name. */
export function readValueType(r: Reader): number {
  const type = r.byte();
  if (VALUE_TYPES.has(type)) return type;
  if (type === 0x63 || type === 0x64) {
    throw unsupportedProposal("typed function references");
  }
  if (type === 0x69) throw unsupportedProposal("exception handling (exnref)");
  if (type >= 0x65 && type <= 0x75) {
    throw unsupportedProposal("garbage collection (GC) types");
  }
  throw new ModuleError(
    `not a valid WebAssembly module: value type 0x${type.toString(16)}`,
  );
}

/** A function signature. */
export interface FuncType {
  /** Parameter value types. */
  params: number[];
  /** Result value types. */
  results: number[];
}

/** Reads the type section, refusing anything but function types by name. */
export function readFuncTypes(body: Uint8Array): FuncType[] {
  const r = new Reader(body);
  const count = r.u32();
  const types: FuncType[] = [];
  for (let i = 0; i < count; i++) {
    const form = r.byte();
    if (form !== 0x60) {
      throw [0x4e, 0x4f, 0x50, 0x5e, 0x5f].includes(form)
        ? unsupportedProposal("garbage collection (GC) types")
        : new ModuleError(
          `not a valid WebAssembly module: type form 0x${form.toString(16)}`,
        );
    }
    const params: number[] = [];
    for (let n = r.u32(); n > 0; n--) params.push(readValueType(r));
    const results: number[] = [];
    for (let n = r.u32(); n > 0; n--) results.push(readValueType(r));
    types.push({ params, results });
  }
  return types;
}

/** Encodes an unsigned LEB128 number. */
export function uleb(value: bigint | number): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

/** Encodes a signed LEB128 number. */
export function sleb(value: bigint | number): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (b & 0x40) === 0) ||
      (v === -1n && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

/** One section of a module. */
export interface Section {
  /** Section id (see {@link SECTION}). */
  id: number;
  /** The whole section: id, size and body. */
  raw: Uint8Array;
  /** The section's body. */
  body: Uint8Array;
}

/** Checks the header and splits a module into its sections. */
export function readSections(module: Uint8Array): Section[] {
  if (
    module.length < 8 || MAGIC.some((b, i) => module[i] !== b) ||
    module[4] !== 1 || module[5] !== 0 || module[6] !== 0 || module[7] !== 0
  ) {
    throw new ModuleError(
      "not a WebAssembly module (bad magic number or version)",
    );
  }
  const r = new Reader(module);
  r.offset = 8;
  const sections: Section[] = [];
  while (r.offset < module.length) {
    const start = r.offset;
    const id = r.byte();
    const size = r.u32();
    const bodyStart = r.offset;
    r.skip(size);
    sections.push({
      id,
      raw: module.subarray(start, r.offset),
      body: module.subarray(bodyStart, r.offset),
    });
  }
  return sections;
}

/**
 * Appends every item of `items` to `target` one by one: an argument spread
 * (`push(...items)`) overflows the call stack once a module has enough
 * functions or segments.
 */
export function pushAll<T>(target: T[], items: Iterable<T>): void {
  for (const item of items) target.push(item);
}

/** Encodes a section from its id and body parts. */
export function encodeSection(id: number, body: Uint8Array[]): Uint8Array[] {
  const size = body.reduce((n, p) => n + p.length, 0);
  const header = Uint8Array.from([id].concat(uleb(size)));
  return ([header] as Uint8Array[]).concat(body);
}

/**
 * Joins byte pieces into one buffer. (The sandbox's guest thread may read
 * only this folder, so runner code loaded there cannot use schemas/.)
 */
export function joinBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A module from its sections (header added). */
export function assembleModule(parts: Uint8Array[]): Uint8Array {
  return joinBytes([Uint8Array.of(...MAGIC, 1, 0, 0, 0), ...parts]);
}

/** Memory limits as declared in a module. */
export interface MemoryLimits {
  flags: number;
  min: bigint;
  max: bigint | null;
}

function readLimits(r: Reader): MemoryLimits {
  const flags = r.byte();
  if (flags & ~0x07) {
    throw new ModuleError(
      `not a valid WebAssembly module: memory flags ${flags}`,
    );
  }
  const min = r.uleb();
  const max = flags & 0x01 ? r.uleb() : null;
  return { flags, min, max };
}

/** Import kinds of the binary format. */
export const IMPORT_KIND = {
  function: 0,
  table: 1,
  memory: 2,
  global: 3,
  tag: 4,
} as const;

/** One entry of the import section, as read by {@link readImport}. */
export interface ImportEntry {
  /** What is imported (see {@link IMPORT_KIND}). */
  kind: number;
  /** Offset of the entry (its module name). */
  start: number;
  /** Offset of its descriptor (after the kind byte). */
  descriptorStart: number;
  /** The limits of an imported memory, else null. */
  memory: MemoryLimits | null;
}

/** Reads one entry of the import section. */
export function readImport(r: Reader): ImportEntry {
  const start = r.offset;
  r.name();
  r.name();
  const kind = r.byte();
  const descriptorStart = r.offset;
  let memory: MemoryLimits | null = null;
  switch (kind) {
    case IMPORT_KIND.function: // type index
      r.u32();
      break;
    case IMPORT_KIND.table: // reftype, limits
      r.byte();
      readLimits(r);
      break;
    case IMPORT_KIND.memory:
      memory = readLimits(r);
      break;
    case IMPORT_KIND.global: // valtype, mutability
      r.skip(2);
      break;
    case IMPORT_KIND.tag: // attribute, type index
      r.byte();
      r.u32();
      break;
    default:
      throw new ModuleError(
        `not a valid WebAssembly module: import kind ${kind}`,
      );
  }
  return { kind, start, descriptorStart, memory };
}

function writeLimits(limits: MemoryLimits): number[] {
  const flags = limits.max === null ? limits.flags & ~0x01 : limits.flags | 1;
  const out = [flags, ...uleb(limits.min)];
  if (limits.max !== null) out.push(...uleb(limits.max));
  return out;
}

/** What {@link capMemory} found and did. */
export interface CappedModule {
  /** The rewritten module bytes. */
  bytes: Uint8Array;
  /** Pages the guest's memory starts with (0 when it has no memory). */
  initialPages: number;
  /** The maximum in pages now written into the module. */
  maxPages: number;
  /** Entries of all the module's own tables (their size is now fixed). */
  tableEntries: number;
}

/**
 * Host bytes one table entry may cost (V8 keeps a reference and a dispatch
 * entry per funcref slot: about 24 bytes measured, rounded up).
 */
export const TABLE_ENTRY_BYTES = 32;

/** Rewrites one table type so the table cannot grow; returns its entries. */
function fixTable(r: Reader, out: number[]): number {
  const first = r.bytes[r.offset];
  if (first === 0x40) {
    throw new ModuleError(
      "the module uses table initializers (typed function references), which Phase does not support",
    );
  }
  const refType = r.byte();
  if (refType === 0x63 || refType === 0x64) {
    throw new ModuleError(
      "the module uses typed function references, which Phase does not support",
    );
  }
  const limits = readLimits(r);
  if (limits.flags & 0x04) {
    throw new ModuleError(
      "the module uses 64-bit tables (memory64), which Phase does not support",
    );
  }
  // A table's entries are host memory the guest does not see in its linear
  // memory; fixing its size at the declared minimum keeps it inside the
  // job's budget (compilers emit tables with min = max anyway).
  out.push(refType);
  pushAll(
    out,
    writeLimits({ flags: limits.flags, min: limits.min, max: limits.min }),
  );
  return Number(limits.min);
}

function capLimits(limits: MemoryLimits, capPages: bigint): MemoryLimits {
  if (limits.flags & 0x04) {
    throw new ModuleError("64-bit memories (memory64) are not supported");
  }
  if (limits.min > capPages) {
    throw new ModuleError(
      `memory limit: the module needs ${
        Number(limits.min) * WASM_PAGE / MIB
      } MiB at start, the cap is ${Number(capPages) * WASM_PAGE / MIB} MiB`,
    );
  }
  const max = limits.max === null || limits.max > capPages
    ? capPages
    : limits.max;
  return { ...limits, max };
}

/**
 * Rewrites every memory the module defines or imports so its maximum is at
 * most `capBytes`; `memory.grow` past it then fails inside the guest instead
 * of taking host memory. Other sections are copied unchanged.
 */
export function capMemory(module: Uint8Array, capBytes: number): CappedModule {
  const capPages = BigInt(Math.floor(capBytes / WASM_PAGE));
  const parts: Uint8Array[] = [];
  let initialPages = 0;
  let maxPages = 0;
  let memories = 0;
  let tableEntries = 0;
  const note = (limits: MemoryLimits) => {
    memories++;
    initialPages = Number(limits.min);
    maxPages = Number(limits.max);
  };
  for (const { id, raw, body: bytes } of readSections(module)) {
    if (
      id !== SECTION.import && id !== SECTION.memory && id !== SECTION.table
    ) {
      parts.push(raw);
      continue;
    }
    const body = new Reader(bytes);
    const out: number[] = [];
    const count = body.u32();
    pushAll(out, uleb(count));
    for (let i = 0; i < count; i++) {
      if (id === SECTION.table) {
        tableEntries += fixTable(body, out);
        continue;
      }
      if (id === SECTION.memory) {
        const limits = capLimits(readLimits(body), capPages);
        note(limits);
        pushAll(out, writeLimits(limits));
        continue;
      }
      const entry = readImport(body);
      if (entry.memory === null) {
        pushAll(out, bytes.subarray(entry.start, body.offset));
        continue;
      }
      pushAll(out, bytes.subarray(entry.start, entry.descriptorStart));
      const limits = capLimits(entry.memory, capPages);
      note(limits);
      pushAll(out, writeLimits(limits));
    }
    if (body.offset !== bytes.length) {
      throw new ModuleError(
        "not a valid WebAssembly module: section size mismatch",
      );
    }
    pushAll(parts, encodeSection(id, [Uint8Array.from(out)]));
  }
  if (memories > 1) {
    throw new ModuleError(
      `the module has ${memories} memories (multi-memory), which Phase does not support`,
    );
  }
  return { bytes: assembleModule(parts), initialPages, maxPages, tableEntries };
}
