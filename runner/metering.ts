/**
 * Deterministic fuel metering, injected into a module before it is compiled
 * (Deno has no engine fuel). Every function body is cut into straight-line
 * segments at `loop`, `if`, `else` and `end`; each segment starts by taking
 * its instruction count from a fuel global, and function entries and loop
 * headers also check it, so a guest whose fuel runs out stops itself with a
 * trap inside the same process. Bulk memory instructions (`memory.fill`,
 * `memory.copy`, `memory.init`) also take one fuel per
 * {@link BULK_BYTES_PER_FUEL} bytes they touch, so fuel bounds their work
 * too. Failed `memory.grow` calls are recorded, so a memory-limit stop is
 * known rather than guessed.
 *
 * The counts depend only on the instructions executed, so the fuel a run
 * consumes is the same on every run, process and machine.
 * @module
 */
import {
  assembleModule,
  encodeSection,
  IMPORT_KIND,
  ModuleError,
  Reader,
  readImport,
  readSections,
  SECTION,
  sleb,
  uleb,
} from "./wasm_binary.ts";

/** Export name of the i64 fuel counter (fuel left; below 0 once spent). */
export const FUEL_EXPORT = "__phase_fuel";
/** Export name of the i32 set to 1 when a `memory.grow` failed. */
export const GROW_FAILED_EXPORT = "__phase_grow_failed";
/**
 * Version of the instrumentation; part of every cache key so that a change
 * here never meets modules instrumented by an older build.
 */
export const METERING_VERSION = 2;
/** Bytes of a bulk memory instruction that cost one fuel. */
export const BULK_BYTES_PER_FUEL = 64;
/** 0xFC sub-opcodes of memory.init, memory.copy and memory.fill. */
const BULK_MEMORY = new Set([8, 10, 11]);
/**
 * The fuel counter's value at instantiation: large enough that a start
 * function runs to its end; the host then charges what it used against the
 * job's budget and sets the real budget before `_start`.
 */
export const FUEL_AT_INSTANTIATION = 2n ** 62n;

const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  unreachable: 0x00,
  globalGet: 0x23,
  globalSet: 0x24,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Eq: 0x46,
  i64LtS: 0x53,
  i64Sub: 0x7d,
  i64ShrU: 0x88,
  i64ExtendI32U: 0xad,
  miscPrefix: 0xfc,
  memoryGrow: 0x40,
  emptyBlock: 0x40,
} as const;

/** Opcodes of the exception-handling proposals, which are refused. */
const EXCEPTION_OPCODES = new Set([
  0x06,
  0x07,
  0x08,
  0x09,
  0x0a,
  0x18,
  0x19,
  0x1f,
]);

/** Globals the instrumentation adds. */
interface MeterGlobals {
  fuel: number;
  scratchI32: number;
  growFailed: number;
}

/** A module after {@link instrumentFuel}. */
export interface MeteredModule {
  /** The instrumented module bytes. */
  bytes: Uint8Array;
  /** Functions instrumented. */
  functions: number;
  /** Fuel charge points inserted. */
  chargePoints: number;
}

function blockType(r: Reader): void {
  const b = r.bytes[r.offset];
  if (b === 0x63 || b === 0x64) {
    throw new ModuleError("typed function references (GC) are not supported");
  }
  // Empty and value types are single bytes 0x40..0x7f; type indices are s33.
  if ((b & 0xc0) === 0x40) r.offset++;
  else r.skipLeb();
}

function memarg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: memory index follows
  r.skipLeb();
}

/** Skips the immediates of a 0xFC-prefixed instruction. */
function miscImmediates(r: Reader): void {
  const sub = r.u32();
  if (sub <= 7) return; // saturating truncations
  switch (sub) {
    case 8: // memory.init
    case 10: // memory.copy
    case 12: // table.init
    case 14: // table.copy
      r.u32();
      r.u32();
      return;
    case 9: // data.drop
    case 11: // memory.fill
    case 13: // elem.drop
    case 15: // table.grow
    case 16: // table.size
    case 17: // table.fill
      r.u32();
      return;
    default:
      throw new ModuleError(`unknown instruction 0xfc ${sub}`);
  }
}

/** Skips the immediates of a 0xFD-prefixed (SIMD) instruction. */
function simdImmediates(r: Reader): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) return memarg(r);
  if (sub === 12 || sub === 13) return r.skip(16); // v128.const, shuffle
  if (sub >= 21 && sub <= 34) return r.skip(1); // lane index
  if (sub >= 84 && sub <= 91) {
    memarg(r);
    r.skip(1);
  }
}

/** Skips the immediates of a 0xFE-prefixed (atomic) instruction. */
function atomicImmediates(r: Reader): void {
  const sub = r.u32();
  if (sub === 0x03) r.skip(1); // atomic.fence
  else memarg(r);
}

/** Skips the immediates of the instruction whose opcode was just read. */
function immediates(r: Reader, op: number): void {
  if (op >= 0x45 && op <= 0xc4) return; // numeric, no immediates
  if (op >= 0x28 && op <= 0x3e) return memarg(r);
  if (op >= 0x20 && op <= 0x26) return void r.u32(); // locals, globals, tables
  switch (op) {
    case 0x00: // unreachable
    case 0x01: // nop
    case 0x0f: // return
    case 0x1a: // drop
    case 0x1b: // select
    case 0xd1: // ref.is_null
      return;
    case 0x0c: // br
    case 0x0d: // br_if
    case 0x10: // call
    case 0x12: // return_call
    case 0x3f: // memory.size
    case 0x40: // memory.grow
    case 0xd2: // ref.func
      return void r.u32();
    case 0x0e: { // br_table
      const count = r.u32();
      for (let i = 0; i <= count; i++) r.u32();
      return;
    }
    case 0x11: // call_indirect
    case 0x13: // return_call_indirect
      r.u32();
      r.u32();
      return;
    case 0x1c: // select with types
      r.skip(r.u32());
      return;
    case 0x41: // i32.const
    case 0x42: // i64.const
      return r.skipLeb();
    case 0x43: // f32.const
      return r.skip(4);
    case 0x44: // f64.const
      return r.skip(8);
    case 0xd0: // ref.null
      return r.skipLeb();
    case 0xfc:
      return miscImmediates(r);
    case 0xfd:
      return simdImmediates(r);
    case 0xfe:
      return atomicImmediates(r);
  }
  if (EXCEPTION_OPCODES.has(op)) {
    throw new ModuleError("exception handling instructions are not supported");
  }
  throw new ModuleError(
    `not a valid WebAssembly module: unknown opcode 0x${op.toString(16)}`,
  );
}

/** The code that takes `cost` fuel, and with `check` traps once it is spent. */
function chargeCode(g: MeterGlobals, cost: number, check: boolean): Uint8Array {
  const fuel = uleb(g.fuel);
  const code = [
    OP.globalGet,
    ...fuel,
    OP.i64Const,
    ...sleb(cost),
    OP.i64Sub,
    OP.globalSet,
    ...fuel,
  ];
  if (check) {
    code.push(
      OP.globalGet,
      ...fuel,
      OP.i64Const,
      0,
      OP.i64LtS,
      OP.if,
      OP.emptyBlock,
      OP.unreachable,
      OP.end,
    );
  }
  return Uint8Array.from(code);
}

/** Charge code by cost and check, built once per module. */
class ChargeCodes {
  readonly #codes = new Map<number, Uint8Array>();
  constructor(readonly globals: MeterGlobals) {}

  get(cost: number, check: boolean): Uint8Array {
    const key = cost * 2 + (check ? 1 : 0);
    let code = this.#codes.get(key);
    if (!code) {
      code = chargeCode(this.globals, cost, check);
      this.#codes.set(key, code);
    }
    return code;
  }
}

/** After `memory.grow`: keeps its result and records a failure (-1). */
function growCheckCode(g: MeterGlobals): Uint8Array {
  const result = uleb(g.scratchI32);
  const failed = uleb(g.growFailed);
  return Uint8Array.of(
    OP.globalSet,
    ...result,
    OP.globalGet,
    ...result,
    OP.globalGet,
    ...result,
    OP.i32Const,
    0x7f, // -1
    OP.i32Eq,
    OP.if,
    OP.emptyBlock,
    OP.i32Const,
    1,
    OP.globalSet,
    ...failed,
    OP.end,
  );
}

/**
 * Before a bulk memory instruction (its byte count on top of the stack):
 * takes count / BULK_BYTES_PER_FUEL fuel and leaves the stack as it was.
 */
function bulkChargeCode(g: MeterGlobals): Uint8Array {
  const count = uleb(g.scratchI32);
  const fuel = uleb(g.fuel);
  return Uint8Array.of(
    OP.globalSet,
    ...count,
    OP.globalGet,
    ...fuel,
    OP.globalGet,
    ...count,
    OP.i64ExtendI32U,
    OP.i64Const,
    ...sleb(Math.log2(BULK_BYTES_PER_FUEL)),
    OP.i64ShrU,
    OP.i64Sub,
    OP.globalSet,
    ...fuel,
    OP.globalGet,
    ...count,
  );
}

/** Instruments one function body (locals and code, without its size). */
function meterBody(
  body: Uint8Array,
  charges: ChargeCodes,
  extra: { growCheck: Uint8Array; bulkCharge: Uint8Array },
  out: Uint8Array[],
): number {
  const r = new Reader(body);
  const groups = r.u32();
  for (let i = 0; i < groups; i++) {
    r.u32();
    r.byte();
  }
  out.push(body.subarray(0, r.offset));
  let pending: Uint8Array[] = [];
  let segmentStart = r.offset;
  let cost = 0;
  let check = true; // function entry
  let depth = 0;
  let inserted = 0;
  const endSegment = (nextCheck: boolean) => {
    if (cost > 0) {
      out.push(charges.get(cost, check));
      inserted++;
    }
    out.push(...pending, body.subarray(segmentStart, r.offset));
    pending = [];
    segmentStart = r.offset;
    cost = 0;
    check = nextCheck;
  };
  for (;;) {
    const op = r.byte();
    cost++;
    switch (op) {
      case OP.block:
        blockType(r);
        depth++;
        break;
      case OP.loop:
        blockType(r);
        depth++;
        endSegment(true);
        break;
      case OP.if:
        blockType(r);
        depth++;
        endSegment(false);
        break;
      case OP.else:
        endSegment(false);
        break;
      case OP.end:
        if (depth === 0) {
          endSegment(false);
          if (r.offset !== body.length) {
            throw new ModuleError(
              "not a valid WebAssembly module: code after a function's end",
            );
          }
          return inserted;
        }
        depth--;
        endSegment(false);
        break;
      case OP.memoryGrow:
        r.u32();
        pending.push(body.subarray(segmentStart, r.offset), extra.growCheck);
        segmentStart = r.offset;
        break;
      case OP.miscPrefix: {
        const start = r.offset - 1;
        if (BULK_MEMORY.has(r.u32())) {
          pending.push(body.subarray(segmentStart, start), extra.bulkCharge);
          segmentStart = start;
        }
        r.offset = start + 1;
        immediates(r, op);
        break;
      }
      default:
        immediates(r, op);
    }
  }
}

function countImportedGlobals(body: Uint8Array): number {
  const r = new Reader(body);
  let globals = 0;
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    if (readImport(r).kind === IMPORT_KIND.global) globals++;
  }
  return globals;
}

/** The body of a vector section with `extra` entries appended. */
function appendToVector(
  body: Uint8Array | null,
  extra: number[][],
): Uint8Array[] {
  const r = body ? new Reader(body) : null;
  const count = r ? r.u32() : 0;
  const rest = body && r ? body.subarray(r.offset) : new Uint8Array();
  return [
    Uint8Array.from(uleb(count + extra.length)),
    rest,
    Uint8Array.from(extra.flat()),
  ];
}

function exportEntry(name: string, globalIndex: number): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...uleb(bytes.length), ...bytes, 0x03, ...uleb(globalIndex)];
}

/** Sections that must come after the global section (in binary order). */
const AFTER_GLOBALS = new Set<number>([
  SECTION.export,
  SECTION.start,
  SECTION.element,
  SECTION.dataCount,
  SECTION.code,
  SECTION.data,
]);

/**
 * Returns the module with fuel metering and `memory.grow` tracking
 * injected, exporting {@link FUEL_EXPORT} and {@link GROW_FAILED_EXPORT}.
 * Throws {@link ModuleError} for modules it cannot instrument.
 */
export function instrumentFuel(module: Uint8Array): MeteredModule {
  const sections = readSections(module);
  const imports = sections.find((s) => s.id === SECTION.import);
  const globals = sections.find((s) => s.id === SECTION.global);
  const exports = sections.find((s) => s.id === SECTION.export);
  if (!exports) {
    throw new ModuleError("the module exports nothing (not a WASI command)");
  }
  const first = (imports ? countImportedGlobals(imports.body) : 0) +
    (globals ? new Reader(globals.body).u32() : 0);
  const g: MeterGlobals = {
    fuel: first,
    scratchI32: first + 1,
    growFailed: first + 2,
  };
  const newGlobals = [
    [0x7e, 1, OP.i64Const, ...sleb(FUEL_AT_INSTANTIATION), OP.end],
    [0x7f, 1, OP.i32Const, 0, OP.end],
    [0x7f, 1, OP.i32Const, 0, OP.end],
  ];
  const extra = {
    growCheck: growCheckCode(g),
    bulkCharge: bulkChargeCode(g),
  };
  const charges = new ChargeCodes(g);
  const parts: Uint8Array[] = [];
  let globalsWritten = false;
  let functions = 0;
  let chargePoints = 0;
  const writeGlobals = () => {
    parts.push(
      ...encodeSection(
        SECTION.global,
        appendToVector(globals?.body ?? null, newGlobals),
      ),
    );
    globalsWritten = true;
  };
  for (const section of sections) {
    if (!globalsWritten && AFTER_GLOBALS.has(section.id)) writeGlobals();
    switch (section.id) {
      case SECTION.global: // before every section in AFTER_GLOBALS
        writeGlobals();
        break;
      case SECTION.export: {
        const names = new TextDecoder().decode(section.body);
        if (names.includes(FUEL_EXPORT) || names.includes(GROW_FAILED_EXPORT)) {
          throw new ModuleError(
            "the module already exports Phase's metering names",
          );
        }
        parts.push(...encodeSection(
          SECTION.export,
          appendToVector(section.body, [
            exportEntry(FUEL_EXPORT, g.fuel),
            exportEntry(GROW_FAILED_EXPORT, g.growFailed),
          ]),
        ));
        break;
      }
      case SECTION.code: {
        const r = new Reader(section.body);
        const count = r.u32();
        const body: Uint8Array[] = [Uint8Array.from(uleb(count))];
        for (let i = 0; i < count; i++) {
          const size = r.u32();
          const start = r.offset;
          r.skip(size);
          const pieces: Uint8Array[] = [];
          chargePoints += meterBody(
            section.body.subarray(start, r.offset),
            charges,
            extra,
            pieces,
          );
          const length = pieces.reduce((n, p) => n + p.length, 0);
          body.push(Uint8Array.from(uleb(length)), ...pieces);
        }
        functions = count;
        parts.push(...encodeSection(SECTION.code, body));
        break;
      }
      default:
        parts.push(section.raw);
    }
  }
  return { bytes: assembleModule(parts), functions, chargePoints };
}
