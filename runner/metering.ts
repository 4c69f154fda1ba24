/**
 * Deterministic fuel metering, injected into a module before it is compiled
 * (Deno has no engine fuel). Every function body is cut into straight-line
 * segments at `loop`, `if`, `else` and `end`; each segment starts by taking
 * its instruction count from a fuel global, and function entries and loop
 * headers also check it: a guest whose fuel global is spent calls the host
 * ({@link REFUEL_IMPORT}), which either tops the global up from the job's
 * budget or stops the guest (budget spent, wall clock passed). The host
 * hands fuel out in slices, so these calls are also where a guest that
 * never calls the host is stopped at its wall clock, in its own thread.
 * The import is added after the module's own imports, so every index of a
 * function the module defines moves up by one (calls, `ref.func`, element
 * segments, exports); the `name` section, which only names them, is
 * dropped. Bulk memory instructions (`memory.fill`,
 * `memory.copy`, `memory.init`) also take one fuel per
 * {@link BULK_BYTES_PER_FUEL} bytes they touch, so fuel bounds their work
 * too, and the table's (`table.fill`, `table.copy`, `table.init`) one per
 * element; each checks the fuel before it works. A function's entry costs one fuel per
 * {@link LOCALS_PER_FUEL} locals it declares (each call zeroes them), so no
 * instruction's work is far beyond its charge. `memory.grow` asks a host-set page limit first (the job's one memory
 * budget, shared with what the host holds for the guest), and a refusal is
 * recorded, so a memory-limit stop is known rather than guessed. A start
 * function no longer runs at instantiation: it is exported as
 * {@link START_EXPORT} and the host calls it with the job's budget set, so
 * it pays from the same fuel as `_start`.
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
  pushAll,
  Reader,
  readFuncTypes,
  readImport,
  readSections,
  readValueType,
  SECTION,
  sleb,
  uleb,
  unsupportedProposal,
} from "./wasm_binary.ts";

/** Export name of the i64 fuel counter (fuel left; below 0 once spent). */
export const FUEL_EXPORT = "__phase_fuel";
/**
 * Export name of the i32 set to 1 when `memory.grow` was refused by the
 * job's budget (and would have fitted the module's own maximum).
 */
export const GROW_FAILED_EXPORT = "__phase_grow_failed";
/**
 * Export name of the i64 page limit `memory.grow` checks: the host lowers
 * it as it takes budget for the guest (scratch files, captured output).
 */
export const MEMORY_PAGES_EXPORT = "__phase_memory_pages";
/** Export name of the module's start function, run by the host. */
export const START_EXPORT = "__phase_start";
/** Every name the instrumentation adds (exports, imports) starts with this. */
export const RESERVED_PREFIX = "__phase_";
/**
 * The host function a metered guest calls (no parameters, no results) when
 * a check finds its fuel global below zero.
 */
export const REFUEL_IMPORT = {
  module: "__phase_host",
  name: "refuel",
} as const;
/** Largest number of pages a 32-bit memory can have. */
const MAX_PAGES = 65536;
/**
 * Version of the instrumentation; part of every cache key so that a change
 * here never meets modules instrumented by an older build.
 */
export const METERING_VERSION = 5;
/** Bytes of a bulk memory instruction that cost one fuel. */
export const BULK_BYTES_PER_FUEL = 64;
/**
 * 0xFC sub-opcodes of memory.init, memory.copy and memory.fill (which pay
 * per {@link BULK_BYTES_PER_FUEL} bytes), and of table.init, table.copy and
 * table.fill (which pay per element): their count is on top of the stack.
 */
const BULK_MEMORY = new Set([8, 10, 11]);
const BULK_TABLE = new Set([12, 14, 17]);
/**
 * How many times its own size (plus {@link GROWTH_ALLOWANCE} bytes) a module
 * may become once metered. Real code grows by 5-80% (the examples); a module
 * made of little but empty loops would grow 15 times, and its compiled code
 * with it, which the sandbox holds outside the job's budget.
 */
const MAX_GROWTH_FACTOR = 4;
const GROWTH_ALLOWANCE = 1024 * 1024;
/** Locals a function declares that cost one fuel at its entry. */
export const LOCALS_PER_FUEL = 8;
/**
 * The fuel counter's value at instantiation; the host sets the job's budget
 * before it calls any guest code.
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
  i64LtS: 0x53,
  i64GtU: 0x56,
  i64LeU: 0x58,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64ShrU: 0x88,
  i64ExtendI32U: 0xad,
  miscPrefix: 0xfc,
  call: 0x10,
  returnCall: 0x12,
  refFunc: 0xd2,
  memorySize: 0x3f,
  memoryGrow: 0x40,
  emptyBlock: 0x40,
  i32Result: 0x7f,
} as const;

/**
 * Opcodes of proposals the instrumenter does not meter, by the proposal's
 * name (V8 accepts them, so they must be refused here by name).
 */
const UNMETERED_OPCODES = new Map<number, string>([
  [0x06, "exception handling"],
  [0x07, "exception handling"],
  [0x08, "exception handling"],
  [0x09, "exception handling"],
  [0x0a, "exception handling"],
  [0x18, "exception handling"],
  [0x19, "exception handling"],
  [0x1f, "exception handling"],
  [0x14, "typed function references"],
  [0x15, "typed function references"],
  [0xd3, "garbage collection (GC)"],
  [0xd4, "typed function references"],
  [0xd5, "typed function references"],
  [0xd6, "typed function references"],
  [0xfb, "garbage collection (GC)"],
]);

/** Globals the instrumentation adds. */
interface MeterGlobals {
  /** Function index of the refuel import. */
  refuel: number;
  fuel: number;
  scratchI32: number;
  growFailed: number;
  memoryPages: number;
  /** The module's own maximum in pages (a constant in the grow check). */
  declaredMaxPages: number;
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
  if (b === OP.emptyBlock) r.offset++;
  else if ((b & 0xc0) === 0x40) readValueType(r);
  else r.skipLeb(); // a type index (s33)
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
  // A wait on shared memory that no other thread can wake would block the
  // host's thread, clock checks and all.
  if (sub === 0x01 || sub === 0x02) {
    throw unsupportedProposal("threads (memory.atomic.wait)");
  }
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
      for (let n = r.u32(); n > 0; n--) readValueType(r);
      return;
    case 0x41: // i32.const
    case 0x42: // i64.const
      return r.skipLeb();
    case 0x43: // f32.const
      return r.skip(4);
    case 0x44: // f64.const
      return r.skip(8);
    case 0xd0: { // ref.null
      const heapType = r.byte();
      if (heapType !== 0x70 && heapType !== 0x6f) {
        throw unsupportedProposal("garbage collection (GC) heap types");
      }
      return;
    }
    case 0xfc:
      return miscImmediates(r);
    case 0xfd:
      return simdImmediates(r);
    case 0xfe:
      return atomicImmediates(r);
  }
  const proposal = UNMETERED_OPCODES.get(op);
  if (proposal) throw unsupportedProposal(proposal);
  throw new ModuleError(
    `not a valid WebAssembly module: unknown opcode 0x${op.toString(16)}`,
  );
}

/**
 * Where the `if` of each piece of instrumentation code that checks the fuel
 * sits in it: every such `if` is hinted as not taken (the branch-hinting
 * section), which keeps the call to the host out of the guest's hot code
 * (measured on cpu_heavy: 21% over unmetered without the hints).
 */
const CHECK_IF_AT = new WeakMap<Uint8Array, number>();

/** The branch-hinting custom section's name. */
const BRANCH_HINT_SECTION = "metadata.code.branch_hint";

/**
 * The code that takes `cost` fuel, and with `check` calls the host once the
 * fuel global is spent.
 */
function chargeCode(g: MeterGlobals, cost: number, check: boolean): Uint8Array {
  const fuel = uleb(g.fuel);
  const code = [OP.globalGet, ...fuel, OP.i64Const, ...sleb(cost)];
  pushAll(code, [OP.i64Sub, OP.globalSet, ...fuel]);
  let ifAt = -1;
  if (check) {
    pushAll(code, [OP.globalGet, ...fuel, OP.i64Const, 0, OP.i64LtS]);
    ifAt = code.length;
    pushAll(code, [OP.if, OP.emptyBlock, OP.call, ...uleb(g.refuel), OP.end]);
  }
  const bytes = Uint8Array.from(code);
  if (ifAt >= 0) CHECK_IF_AT.set(bytes, ifAt);
  return bytes;
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

/**
 * In place of `memory.grow` (its page count on top of the stack): grows only
 * when the result stays within the host-set page limit, else answers -1 like
 * a failed grow and, when the module's own maximum would have allowed it,
 * records that the job's budget refused.
 */
function growCode(g: MeterGlobals): Uint8Array {
  const delta = uleb(g.scratchI32);
  // memory.size + delta as an i64 (no i32 overflow for any delta)
  const wanted = [
    OP.memorySize,
    0,
    OP.i64ExtendI32U,
    OP.globalGet,
    ...delta,
    OP.i64ExtendI32U,
    OP.i64Add,
  ];
  const code = [OP.globalSet, ...delta, ...wanted];
  pushAll(code, [OP.globalGet, ...uleb(g.memoryPages), OP.i64GtU]);
  pushAll(code, [OP.if, OP.i32Result, ...wanted]);
  pushAll(code, [OP.i64Const, ...sleb(g.declaredMaxPages), OP.i64LeU]);
  pushAll(code, [OP.if, OP.emptyBlock, OP.i32Const, 1, OP.globalSet]);
  pushAll(code, [...uleb(g.growFailed), OP.end, OP.i32Const, 0x7f]); // -1
  pushAll(code, [OP.else, OP.globalGet, ...delta, OP.memoryGrow, 0, OP.end]);
  return Uint8Array.from(code);
}

/**
 * Before a bulk instruction (its count on top of the stack): takes count /
 * 2^`shift` fuel, calls the host when that overdraws the fuel global (so a
 * run of bulk instructions is checked one by one, before each does its
 * work), and leaves the stack as it was.
 */
function bulkChargeCode(g: MeterGlobals, shift: number): Uint8Array {
  const count = uleb(g.scratchI32);
  const fuel = uleb(g.fuel);
  const bytes = Uint8Array.of(
    OP.globalSet,
    ...count,
    OP.globalGet,
    ...fuel,
    OP.globalGet,
    ...count,
    OP.i64ExtendI32U,
    OP.i64Const,
    ...sleb(shift),
    OP.i64ShrU,
    OP.i64Sub,
    OP.globalSet,
    ...fuel,
    OP.globalGet,
    ...fuel,
    OP.i64Const,
    0,
    OP.i64LtS,
    OP.if,
    OP.emptyBlock,
    OP.call,
    ...uleb(g.refuel),
    OP.end,
    OP.globalGet,
    ...count,
  );
  const refuelCall = 1 + uleb(g.refuel).length;
  CHECK_IF_AT.set(bytes, bytes.length - (1 + count.length) - refuelCall - 3);
  return bytes;
}

/** Instruments one function body (locals and code, without its size). */
function meterBody(
  body: Uint8Array,
  charges: ChargeCodes,
  extra: {
    grow: Uint8Array;
    bulkCharge: Uint8Array;
    tableCharge: Uint8Array;
    /** The number of imported functions (indices from it move up). */
    importedFunctions: number;
    /** Bytes the instrumentation has added so far, and how many it may. */
    growth: { added: number; limit: number };
  },
  out: Uint8Array[],
  /** Offsets, in the instrumented body, of the `if`s that check fuel. */
  hints: number[],
): number {
  let written = 0;
  const emit = (piece: Uint8Array) => {
    const ifAt = CHECK_IF_AT.get(piece);
    if (ifAt !== undefined) hints.push(written + ifAt);
    written += piece.length;
    out.push(piece);
  };
  const grow = (code: Uint8Array) => {
    extra.growth.added += code.length;
    if (extra.growth.added > extra.growth.limit) {
      throw new ModuleError(
        `the module has too many branches and loops to meter: metering would make it more than ${MAX_GROWTH_FACTOR} times its size`,
      );
    }
    return code;
  };
  const r = new Reader(body);
  const groups = r.u32();
  let locals = 0;
  for (let i = 0; i < groups; i++) {
    locals += r.u32();
    readValueType(r);
  }
  emit(body.subarray(0, r.offset));
  let pending: Uint8Array[] = [];
  let segmentStart = r.offset;
  // Zeroing the declared locals is work each call does before any
  // instruction.
  let cost = Math.floor(locals / LOCALS_PER_FUEL);
  let check = true; // function entry
  let depth = 0;
  let inserted = 0;
  const endSegment = (nextCheck: boolean) => {
    if (cost > 0) {
      emit(grow(charges.get(cost, check)));
      inserted++;
    }
    for (const piece of pending) emit(piece);
    emit(body.subarray(segmentStart, r.offset));
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
      case OP.memoryGrow: {
        const start = r.offset - 1;
        if (r.u32() !== 0) {
          throw new ModuleError(
            "the module uses multi-memory, which Phase does not support",
          );
        }
        pending.push(body.subarray(segmentStart, start), grow(extra.grow));
        segmentStart = r.offset;
        break;
      }
      case OP.call:
      case OP.returnCall:
      case OP.refFunc: {
        const start = r.offset - 1;
        const index = r.u32();
        if (index >= extra.importedFunctions) {
          pending.push(
            body.subarray(segmentStart, start),
            Uint8Array.of(op, ...uleb(index + 1)),
          );
          segmentStart = r.offset;
        }
        break;
      }
      case OP.miscPrefix: {
        const start = r.offset - 1;
        const sub = r.u32();
        const charge = BULK_MEMORY.has(sub)
          ? extra.bulkCharge
          : BULK_TABLE.has(sub)
          ? extra.tableCharge
          : null;
        if (charge) {
          pending.push(body.subarray(segmentStart, start), grow(charge));
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

/**
 * Counts a module's imported functions and globals, refusing imports from a
 * module whose name the instrumentation reserves.
 */
function countImports(body: Uint8Array): {
  functions: number;
  globals: number;
} {
  const r = new Reader(body);
  let functions = 0;
  let globals = 0;
  for (let count = r.u32(); count > 0; count--) {
    const start = r.offset;
    const from = r.string();
    r.offset = start;
    if (from.startsWith(RESERVED_PREFIX)) {
      throw new ModuleError(
        `the module imports from ${from}, a name Phase's metering reserves`,
      );
    }
    const kind = readImport(r).kind;
    if (kind === IMPORT_KIND.function) functions++;
    if (kind === IMPORT_KIND.global) globals++;
  }
  return { functions, globals };
}

/** Copies a constant expression, moving `ref.func` indices by `shift`. */
function copyExpression(
  r: Reader,
  shift: (index: number) => number,
  out: number[],
): void {
  for (;;) {
    const start = r.offset;
    const op = r.byte();
    if (op === OP.end) return void out.push(op);
    if (op === OP.refFunc) {
      pushAll(out, [op, ...uleb(shift(r.u32()))]);
      continue;
    }
    immediates(r, op);
    pushAll(out, r.bytes.subarray(start, r.offset));
  }
}

/** Copies a vector of function indices, moving each by `shift`. */
function copyIndices(
  r: Reader,
  shift: (index: number) => number,
  out: number[],
): void {
  const count = r.u32();
  pushAll(out, uleb(count));
  for (let i = 0; i < count; i++) pushAll(out, uleb(shift(r.u32())));
}

/**
 * A vector section's body with each entry rewritten by `entry`, which reads
 * one entry from `r` and writes its new form to `out`.
 */
function rewriteVector(
  body: Uint8Array,
  entry: (r: Reader, out: number[]) => void,
): Uint8Array {
  const r = new Reader(body);
  const count = r.u32();
  const out = uleb(count);
  for (let i = 0; i < count; i++) entry(r, out);
  return Uint8Array.from(out);
}

/** The element section with every function index moved by `shift`. */
function shiftElements(
  body: Uint8Array,
  shift: (index: number) => number,
): Uint8Array {
  return rewriteVector(body, (r, out) => {
    const flags = r.u32();
    pushAll(out, uleb(flags));
    if (flags > 7) {
      throw new ModuleError(
        `not a valid WebAssembly module: element segment flags ${flags}`,
      );
    }
    // Bit 0: passive or declarative; bit 1: with a table index (active)
    // or declarative (passive); bit 2: expressions instead of indices.
    const active = (flags & 1) === 0;
    if (active && (flags & 2) !== 0) pushAll(out, uleb(r.u32()));
    if (active) copyExpression(r, shift, out);
    if (flags !== 0 && flags !== 4) out.push(r.byte()); // elemkind or reftype
    if ((flags & 4) === 0) copyIndices(r, shift, out);
    else {
      const exprs = r.u32();
      pushAll(out, uleb(exprs));
      for (let e = 0; e < exprs; e++) copyExpression(r, shift, out);
    }
  });
}

/** The global section with `ref.func` initialisers moved by `shift`. */
function shiftGlobals(
  body: Uint8Array,
  shift: (index: number) => number,
): Uint8Array {
  return rewriteVector(body, (r, out) => {
    const start = r.offset;
    readValueType(r);
    r.byte(); // mutability
    pushAll(out, body.subarray(start, r.offset));
    copyExpression(r, shift, out);
  });
}

/** The export section with function exports moved by `shift`. */
function shiftExports(
  body: Uint8Array,
  shift: (index: number) => number,
): Uint8Array {
  return rewriteVector(body, (r, out) => {
    const start = r.offset;
    r.name();
    const kind = r.byte();
    pushAll(out, body.subarray(start, r.offset));
    const index = r.u32();
    pushAll(out, uleb(kind === EXPORT_KIND.function ? shift(index) : index));
  });
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

/** Export kinds used by the instrumentation. */
const EXPORT_KIND = { function: 0x00, global: 0x03 } as const;

function exportEntry(name: string, kind: number, index: number): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...uleb(bytes.length), ...bytes, kind, ...uleb(index)];
}

/**
 * Where each non-custom section goes in a module (the binary format's
 * order, which is not the order of the ids).
 */
const SECTION_ORDER = new Map<number, number>([
  SECTION.type,
  SECTION.import,
  SECTION.function,
  SECTION.table,
  SECTION.memory,
  SECTION.tag,
  SECTION.global,
  SECTION.export,
  SECTION.start,
  SECTION.element,
  SECTION.dataCount,
  SECTION.code,
  SECTION.data,
].map((id, place) => [id, place]));

/** The module's own memory maximum in pages (the 32-bit limit if none). */
function declaredMaxPages(
  imports: Uint8Array | null,
  memories: Uint8Array | null,
): number {
  if (imports) {
    const r = new Reader(imports);
    for (let count = r.u32(); count > 0; count--) {
      const entry = readImport(r);
      if (entry.memory) return Number(entry.memory.max ?? BigInt(MAX_PAGES));
    }
  }
  if (memories) {
    const r = new Reader(memories);
    if (r.u32() > 0) {
      const flags = r.byte();
      r.uleb();
      if (flags & 0x01) return Number(r.uleb());
    }
  }
  return MAX_PAGES;
}

/**
 * Returns the module with fuel metering and budget-checked `memory.grow`
 * injected, importing {@link REFUEL_IMPORT}, exporting {@link FUEL_EXPORT},
 * {@link GROW_FAILED_EXPORT}, {@link MEMORY_PAGES_EXPORT} and, when the
 * module has a start function, {@link START_EXPORT} (its start section is
 * removed). Throws {@link ModuleError} for modules it cannot instrument.
 */
export function instrumentFuel(module: Uint8Array): MeteredModule {
  const sections = readSections(module);
  // Indices the module uses but does not have would name what the
  // instrumentation adds (its first global past the module's is the fuel
  // counter): only a valid module is instrumented.
  assertValid(module);
  const find = (id: number) => sections.find((s) => s.id === id) ?? null;
  const imports = find(SECTION.import);
  const globals = find(SECTION.global);
  const exports = find(SECTION.export);
  const types = find(SECTION.type);
  const typeCount = types ? readFuncTypes(types.body).length : 0;
  if (find(SECTION.tag)) throw unsupportedProposal("exception handling");
  if (!exports) {
    throw new ModuleError("the module exports nothing (not a WASI command)");
  }
  const start = find(SECTION.start);
  const imported = imports
    ? countImports(imports.body)
    : { functions: 0, globals: 0 };
  const first = imported.globals +
    (globals ? new Reader(globals.body).u32() : 0);
  const g: MeterGlobals = {
    refuel: imported.functions,
    fuel: first,
    scratchI32: first + 1,
    growFailed: first + 2,
    memoryPages: first + 3,
    declaredMaxPages: declaredMaxPages(
      imports?.body ?? null,
      find(SECTION.memory)?.body ?? null,
    ),
  };
  const shift = (index: number) =>
    index >= imported.functions ? index + 1 : index;
  const newGlobals = [
    [0x7e, 1, OP.i64Const, ...sleb(FUEL_AT_INSTANTIATION), OP.end],
    [0x7f, 1, OP.i32Const, 0, OP.end],
    [0x7f, 1, OP.i32Const, 0, OP.end],
    [0x7e, 1, OP.i64Const, ...sleb(MAX_PAGES), OP.end],
  ];
  const encodeName = (text: string) => {
    const bytes = new TextEncoder().encode(text);
    return [...uleb(bytes.length), ...bytes];
  };
  const refuelImport = [
    ...encodeName(REFUEL_IMPORT.module),
    ...encodeName(REFUEL_IMPORT.name),
    IMPORT_KIND.function,
    ...uleb(typeCount),
  ];
  const extra = {
    grow: growCode(g),
    bulkCharge: bulkChargeCode(g, Math.log2(BULK_BYTES_PER_FUEL)),
    tableCharge: bulkChargeCode(g, 0),
    importedFunctions: imported.functions,
    growth: {
      added: 0,
      limit: (MAX_GROWTH_FACTOR - 1) * module.length + GROWTH_ALLOWANCE,
    },
  };
  const charges = new ChargeCodes(g);
  const parts: Uint8Array[] = [];
  let functions = 0;
  let chargePoints = 0;
  // The sections the instrumentation adds to, each written in its place
  // whether or not the module has one.
  const added = new Map<number, () => void>([
    [SECTION.type, () =>
      pushAll(
        parts,
        encodeSection(
          SECTION.type,
          appendToVector(types?.body ?? null, [[0x60, 0, 0]]),
        ),
      )],
    [SECTION.import, () =>
      pushAll(
        parts,
        encodeSection(
          SECTION.import,
          appendToVector(imports?.body ?? null, [refuelImport]),
        ),
      )],
    [SECTION.global, () =>
      pushAll(
        parts,
        encodeSection(
          SECTION.global,
          appendToVector(
            globals ? shiftGlobals(globals.body, shift) : null,
            newGlobals,
          ),
        ),
      )],
  ]);
  const writeAddedBefore = (place: number) => {
    for (const [id, write] of added) {
      if (SECTION_ORDER.get(id)! < place) {
        write();
        added.delete(id);
      }
    }
  };
  for (const section of sections) {
    const place = SECTION_ORDER.get(section.id);
    if (place !== undefined) writeAddedBefore(place);
    if (added.has(section.id)) {
      added.get(section.id)!();
      added.delete(section.id);
      continue;
    }
    switch (section.id) {
      case SECTION.start: // exported below; the host calls it
        break;
      case SECTION.export: {
        const names = new TextDecoder().decode(section.body);
        if (names.includes(RESERVED_PREFIX)) {
          throw new ModuleError(
            `the module exports a name starting with ${RESERVED_PREFIX}, which Phase's metering uses`,
          );
        }
        const added = [
          exportEntry(FUEL_EXPORT, EXPORT_KIND.global, g.fuel),
          exportEntry(GROW_FAILED_EXPORT, EXPORT_KIND.global, g.growFailed),
          exportEntry(MEMORY_PAGES_EXPORT, EXPORT_KIND.global, g.memoryPages),
        ];
        if (start) {
          const index = shift(new Reader(start.body).u32());
          added.push(exportEntry(START_EXPORT, EXPORT_KIND.function, index));
        }
        pushAll(
          parts,
          encodeSection(
            SECTION.export,
            appendToVector(shiftExports(section.body, shift), added),
          ),
        );
        break;
      }
      case SECTION.element:
        pushAll(
          parts,
          encodeSection(SECTION.element, [shiftElements(section.body, shift)]),
        );
        break;
      case SECTION.code: {
        const r = new Reader(section.body);
        const count = r.u32();
        const body: Uint8Array[] = [Uint8Array.from(uleb(count))];
        // Branch hints: function index, then (offset, size 1, not taken)
        // for every fuel check, functions in order (the proposal's format).
        const hinted: number[] = [];
        let hintedFunctions = 0;
        for (let i = 0; i < count; i++) {
          const size = r.u32();
          const begin = r.offset;
          r.skip(size);
          const pieces: Uint8Array[] = [];
          const hints: number[] = [];
          chargePoints += meterBody(
            section.body.subarray(begin, r.offset),
            charges,
            extra,
            pieces,
            hints,
          );
          const length = pieces.reduce((n, p) => n + p.length, 0);
          body.push(Uint8Array.from(uleb(length)));
          pushAll(body, pieces);
          if (hints.length > 0) {
            hintedFunctions++;
            pushAll(hinted, uleb(imported.functions + 1 + i));
            pushAll(hinted, uleb(hints.length));
            for (const at of hints) pushAll(hinted, [...uleb(at), 1, 0]);
          }
        }
        functions = count;
        const name = new TextEncoder().encode(BRANCH_HINT_SECTION);
        pushAll(
          parts,
          encodeSection(SECTION.custom, [
            Uint8Array.from([...uleb(name.length), ...name]),
            Uint8Array.from(uleb(hintedFunctions)),
            Uint8Array.from(hinted),
          ]),
        );
        pushAll(parts, encodeSection(SECTION.code, body));
        break;
      }
      case SECTION.custom:
        // The name section names functions by index, and branch hints point
        // at offsets in their bodies: both moved.
        if (
          !["name", BRANCH_HINT_SECTION].includes(customName(section.body))
        ) parts.push(section.raw);
        break;
      default:
        parts.push(section.raw);
    }
  }
  writeAddedBefore(Infinity);
  return { bytes: assembleModule(parts), functions, chargePoints };
}

/** Throws {@link ModuleError} with V8's reason for a module that is not valid. */
function assertValid(module: Uint8Array): void {
  const bytes = module as Uint8Array<ArrayBuffer>;
  if (WebAssembly.validate(bytes)) return;
  try {
    new WebAssembly.Module(bytes);
  } catch (error) {
    throw new ModuleError(
      `not a valid WebAssembly module: ${(error as Error).message}`,
    );
  }
  throw new ModuleError("not a valid WebAssembly module");
}

/** The name of a custom section. */
function customName(body: Uint8Array): string {
  try {
    return new Reader(body).string();
  } catch {
    return "";
  }
}
