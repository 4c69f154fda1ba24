/**
 * Just enough ELF to ship an executable into an initramfs without running
 * it: the machine it was built for, the interpreter (`PT_INTERP`) a dynamic
 * executable asks the kernel to load first, and the shared libraries
 * (`DT_NEEDED`) it names. Reading them, rather than asking `ldd`, works for
 * executables of another architecture too.
 * @module
 */

/** An ELF file that cannot be read; the message is one line. */
export class ElfError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ElfError";
  }
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

interface Elf {
  is64: boolean;
  little: boolean;
  view: DataView;
  machine: number;
  segments: Segment[];
}

function parse(bytes: Uint8Array): Elf {
  if (
    bytes.length < 52 || bytes[0] !== 0x7f || bytes[1] !== 0x45 ||
    bytes[2] !== 0x4c || bytes[3] !== 0x46
  ) {
    throw new ElfError("not an ELF file");
  }
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  if ((bytes[4] !== 1 && !is64) || (bytes[5] !== 1 && bytes[5] !== 2)) {
    throw new ElfError("unknown ELF class or byte order");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const word = (at: number) =>
    is64 ? Number(view.getBigUint64(at, little)) : view.getUint32(at, little);
  const half = (at: number) => view.getUint16(at, little);
  if (is64 && bytes.length < 64) throw new ElfError("truncated ELF header");
  const phoff = word(is64 ? 32 : 28);
  const phentsize = half(is64 ? 54 : 42);
  const phnum = half(is64 ? 56 : 44);
  const minimum = is64 ? 56 : 32;
  if (phentsize < minimum || phoff + phnum * phentsize > bytes.length) {
    throw new ElfError("truncated program headers");
  }
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const header = phoff + i * phentsize;
    segments.push({
      type: view.getUint32(header, little),
      offset: word(header + (is64 ? 8 : 4)),
      vaddr: word(header + (is64 ? 16 : 8)),
      filesz: word(header + (is64 ? 32 : 16)),
    });
  }
  return { is64, little, view, machine: half(18), segments };
}

/**
 * The interpreter an ELF executable names (e.g. `/lib64/ld-linux-x86-64.so.2`),
 * or null for a static executable. Throws {@link ElfError} for anything that
 * is not a well-formed 32- or 64-bit ELF file.
 */
export function elfInterpreter(bytes: Uint8Array): string | null {
  const interp = parse(bytes).segments.find((s) => s.type === PT_INTERP);
  if (!interp) return null;
  if (interp.offset + interp.filesz > bytes.length || interp.filesz === 0) {
    throw new ElfError("truncated interpreter path");
  }
  return new TextDecoder().decode(
    bytes.subarray(interp.offset, interp.offset + interp.filesz),
  ).replace(/\0+$/, "");
}

/** The ELF `e_machine` of a file (62 for x86_64, 183 for aarch64). */
export function elfMachine(bytes: Uint8Array): number {
  return parse(bytes).machine;
}

/**
 * The shared libraries (`DT_NEEDED` sonames, e.g. `libc.so.6`) an ELF file
 * names, in its order; none for a static executable.
 */
export function elfNeeded(bytes: Uint8Array): string[] {
  const elf = parse(bytes);
  const dynamic = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (!dynamic) return [];
  if (dynamic.offset + dynamic.filesz > bytes.length) {
    throw new ElfError("truncated dynamic section");
  }
  const size = elf.is64 ? 16 : 8;
  const word = (at: number) =>
    elf.is64
      ? Number(elf.view.getBigUint64(at, elf.little))
      : elf.view.getUint32(at, elf.little);
  const needed: number[] = [];
  let strtab = -1;
  for (let at = dynamic.offset; at + size <= dynamic.offset + dynamic.filesz;) {
    const tag = word(at);
    const value = word(at + size / 2);
    at += size;
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) needed.push(value);
    if (tag === DT_STRTAB) strtab = value;
  }
  if (needed.length === 0) return [];
  // DT_STRTAB is an address; the loadable segment holding it gives its offset.
  const load = elf.segments.find((s) =>
    s.type === PT_LOAD && strtab >= s.vaddr && strtab < s.vaddr + s.filesz
  );
  if (!load) throw new ElfError("the string table is outside the file");
  const base = strtab - load.vaddr + load.offset;
  return needed.map((at) => {
    const start = base + at;
    const end = bytes.indexOf(0, start);
    if (start >= bytes.length || end === -1) {
      throw new ElfError("truncated library name");
    }
    return new TextDecoder().decode(bytes.subarray(start, end));
  });
}

/** True when the file at `path` is a static ELF executable. */
export async function isStaticElf(path: string): Promise<boolean> {
  return elfInterpreter(await Deno.readFile(path)) === null;
}
