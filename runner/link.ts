/**
 * Link check before run: every import a module asks for must be a WASI
 * preview1 function Phase provides, with the signature preview1 defines (or
 * the host function metering adds, which the metering refuses in a module
 * that did not come from it), and
 * the module must be a WASI command. A module that fails is refused with one
 * line before any of its code runs (V8 would only fail at instantiation, or
 * not at all for a wrong signature that happens to link).
 * @module
 */
import {
  type FuncType,
  IMPORT_KIND,
  ModuleError,
  Reader,
  readFuncTypes,
  readImport,
  readSections,
  SECTION,
  unsupportedProposal,
} from "./wasm_binary.ts";
import {
  REFUEL_IMPORT,
  RESERVED_PREFIX as RESERVED_IMPORT_PREFIX,
} from "./metering.ts";

/** The import module WASI preview1 functions come from. */
export const WASI_MODULE = "wasi_snapshot_preview1";

const I32 = 0x7f;
const I64 = 0x7e;

/** Signatures of the 46 preview1 functions: parameters, then results. */
const sig = (params: string, results = "i"): FuncType => ({
  params: [...params].map((c) => c === "I" ? I64 : I32),
  results: [...results].map((c) => c === "I" ? I64 : I32),
});

/**
 * Every WASI preview1 function with its signature (i = i32, I = i64), as
 * the preview1 witx defines them.
 */
export const WASI_PREVIEW1: Readonly<Record<string, FuncType>> = {
  args_get: sig("ii"),
  args_sizes_get: sig("ii"),
  environ_get: sig("ii"),
  environ_sizes_get: sig("ii"),
  clock_res_get: sig("ii"),
  clock_time_get: sig("iIi"),
  fd_advise: sig("iIIi"),
  fd_allocate: sig("iII"),
  fd_close: sig("i"),
  fd_datasync: sig("i"),
  fd_fdstat_get: sig("ii"),
  fd_fdstat_set_flags: sig("ii"),
  fd_fdstat_set_rights: sig("iII"),
  fd_filestat_get: sig("ii"),
  fd_filestat_set_size: sig("iI"),
  fd_filestat_set_times: sig("iIIi"),
  fd_pread: sig("iiiIi"),
  fd_prestat_get: sig("ii"),
  fd_prestat_dir_name: sig("iii"),
  fd_pwrite: sig("iiiIi"),
  fd_read: sig("iiii"),
  fd_readdir: sig("iiiIi"),
  fd_renumber: sig("ii"),
  fd_seek: sig("iIii"),
  fd_sync: sig("i"),
  fd_tell: sig("ii"),
  fd_write: sig("iiii"),
  path_create_directory: sig("iii"),
  path_filestat_get: sig("iiiii"),
  path_filestat_set_times: sig("iiiiIIi"),
  path_link: sig("iiiiiii"),
  path_open: sig("iiiiiIIii"),
  path_readlink: sig("iiiiii"),
  path_remove_directory: sig("iii"),
  path_rename: sig("iiiiii"),
  path_symlink: sig("iiiii"),
  path_unlink_file: sig("iii"),
  poll_oneoff: sig("iiii"),
  proc_exit: sig("i", ""),
  proc_raise: sig("i"),
  sched_yield: sig(""),
  random_get: sig("ii"),
  sock_accept: sig("iii"),
  sock_recv: sig("iiiiii"),
  sock_send: sig("iiiii"),
  sock_shutdown: sig("ii"),
};

const REFUEL_TYPE: FuncType = { params: [], results: [] };

const TYPE_NAMES: Record<number, string> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

function describe(type: FuncType): string {
  const list = (types: number[]) => types.map((t) => TYPE_NAMES[t]).join(", ");
  return `(${list(type.params)}) -> (${list(type.results)})`;
}

function sameType(a: FuncType, b: FuncType): boolean {
  return a.params.length === b.params.length &&
    a.results.length === b.results.length &&
    a.params.every((t, i) => t === b.params[i]) &&
    a.results.every((t, i) => t === b.results[i]);
}

const KIND_NAMES = ["function", "table", "memory", "global", "tag"];

/**
 * Checks a module's imports against WASI preview1; throws
 * {@link ModuleError} with one line for the first that Phase cannot link.
 */
export function checkLink(
  module: Uint8Array,
  options: {
    /**
     * The module comes from the metering, so its one import from the
     * reserved module (`__phase_host.refuel`, () -> ()) is expected.
     */
    metered?: boolean;
  } = {},
): void {
  let types: FuncType[] = [];
  for (const section of readSections(module)) {
    if (section.id === SECTION.type) types = readFuncTypes(section.body);
    if (section.id === SECTION.tag) {
      throw unsupportedProposal("exception handling (tags)");
    }
    if (section.id !== SECTION.import) continue;
    const r = new Reader(section.body);
    for (let count = r.u32(); count > 0; count--) {
      const start = r.offset;
      const from = r.string();
      const name = r.string();
      r.offset = start;
      const entry = readImport(r);
      const what = `${from}.${name}`;
      if (from.startsWith(RESERVED_IMPORT_PREFIX) && !options.metered) {
        throw new ModuleError(
          `the module imports ${what}, a name Phase's metering reserves`,
        );
      }
      const wanted = from === WASI_MODULE
        ? Object.hasOwn(WASI_PREVIEW1, name) ? WASI_PREVIEW1[name] : undefined
        : from === REFUEL_IMPORT.module && name === REFUEL_IMPORT.name
        ? REFUEL_TYPE
        : undefined;
      if (!wanted) {
        throw new ModuleError(
          `the module imports ${what}, which Phase does not provide`,
        );
      }
      if (entry.kind !== IMPORT_KIND.function) {
        throw new ModuleError(
          `the module imports ${what} as a ${
            KIND_NAMES[entry.kind]
          }; WASI preview1 defines it as a function`,
        );
      }
      const typeIndex = new Reader(section.body.subarray(entry.descriptorStart))
        .u32();
      const actual = types[typeIndex];
      if (!actual) {
        throw new ModuleError(
          `not a valid WebAssembly module: ${what} names type ${typeIndex}, which does not exist`,
        );
      }
      if (!sameType(actual, wanted)) {
        throw new ModuleError(
          `the module imports ${what} as ${
            describe(actual)
          }, but WASI preview1 defines it as ${describe(wanted)}`,
        );
      }
    }
  }
}
