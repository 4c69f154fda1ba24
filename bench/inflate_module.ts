/**
 * Makes a large, valid module out of a real one by appending copies of all
 * its function bodies (never called, but compiled and instrumented like any
 * other code): compiler output at any size, for instrumentation benchmarks.
 * @module
 */
import {
  assembleModule,
  encodeSection,
  Reader,
  readSections,
  SECTION,
  uleb,
} from "../runner/wasm_binary.ts";

/** Returns `module` with its functions repeated until it is >= `bytes` long. */
export function inflateModule(module: Uint8Array, bytes: number): Uint8Array {
  const sections = readSections(module);
  const code = sections.find((s) => s.id === SECTION.code)!;
  const copies = Math.max(1, Math.ceil(bytes / code.raw.length));
  const repeat = (body: Uint8Array) => {
    const r = new Reader(body);
    const count = r.u32();
    const entries = body.subarray(r.offset);
    return [
      Uint8Array.from(uleb(count * copies)),
      ...Array.from({ length: copies }, () => entries),
    ];
  };
  const parts = sections.flatMap((s) =>
    s.id === SECTION.function || s.id === SECTION.code
      ? encodeSection(s.id, repeat(s.body))
      : [s.raw]
  );
  return assembleModule(parts);
}
