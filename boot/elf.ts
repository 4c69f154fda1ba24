/**
 * Just enough ELF to tell a static executable from a dynamic one: the
 * program headers, and the path of the interpreter (`PT_INTERP`) a dynamic
 * executable asks the kernel to load first.
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

const PT_INTERP = 3;

/**
 * The interpreter an ELF executable names (e.g. `/lib64/ld-linux-x86-64.so.2`),
 * or null for a static executable. Throws {@link ElfError} for anything that
 * is not a well-formed 32- or 64-bit ELF file.
 */
export function elfInterpreter(bytes: Uint8Array): string | null {
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
  for (let i = 0; i < phnum; i++) {
    const header = phoff + i * phentsize;
    if (view.getUint32(header, little) !== PT_INTERP) continue;
    const offset = word(header + (is64 ? 8 : 4));
    const size = word(header + (is64 ? 32 : 16));
    if (offset + size > bytes.length || size === 0) {
      throw new ElfError("truncated interpreter path");
    }
    return new TextDecoder().decode(bytes.subarray(offset, offset + size))
      .replace(/\0+$/, "");
  }
  return null;
}

/** True when the file at `path` is a static ELF executable. */
export async function isStaticElf(path: string): Promise<boolean> {
  return elfInterpreter(await Deno.readFile(path)) === null;
}
