/**
 * The one place where a stranger's job is judged: libp2p offers and
 * requests and `POST /jobs` bodies go through the same JSON Schemas
 * (schemas/) and the same checks against this node's limits, and come out
 * as a {@link JobOrder} or a {@link JobError} with a reason code.
 * @module
 */
import {
  type Capability,
  fromBase64,
  type JobManifest,
  type JobOffer,
  type JobRequestMessage,
  type RejectReason,
  type SchemaError,
  type ScratchSeed,
  validateDocument,
  validateJobManifest,
} from "../schemas/mod.ts";
import { seedCost, type SeedEntry, seedProblem } from "../runner/mod.ts";

/** What this node lets one job use. */
export interface JobLimits {
  /** Largest module in bytes. */
  maxModuleBytes: number;
  /** Largest memory_mb a job may ask for. */
  maxMemoryMb: number;
  /** Largest timeout_seconds a job may ask for. */
  maxTimeoutSeconds: number;
  /** Largest standard input in bytes. */
  maxStdinBytes: number;
  /**
   * Most a seeded scratch directory may cost (file bytes, names, targets
   * and entries, as runner/scratch_seed.ts seedCost counts them); it is
   * charged to the job's memory budget too.
   */
  maxSeedBytes: number;
}

/** Default job limits. */
export const DEFAULT_JOB_LIMITS: JobLimits = {
  maxModuleBytes: 16 * 1024 * 1024,
  maxMemoryMb: 512,
  maxTimeoutSeconds: 60,
  maxStdinBytes: 4 * 1024 * 1024,
  maxSeedBytes: 8 * 1024 * 1024,
};

/** A refused job; `reason` is the protocol's code, the message one line. */
export class JobError extends Error {
  /** Creates the error. */
  constructor(readonly reason: RejectReason, message: string) {
    super(message);
    this.name = "JobError";
  }
}

/** A judged job, ready for the job service (the module may still be missing). */
export interface JobOrder {
  /** Client-chosen job id. */
  jobId?: string;
  /** Client-chosen nonce. */
  nonce?: string;
  /** Module bytes, when already known. */
  module?: Uint8Array;
  /** Guest arguments. */
  args?: string[];
  /** Guest environment. */
  env?: Record<string, string>;
  /** Standard input. */
  stdin?: Uint8Array;
  /** Memory cap in MiB. */
  memoryMb?: number;
  /** Wall-clock limit in seconds. */
  timeoutSeconds?: number;
  /** Fuel budget. */
  fuel?: number;
  /** A job manifest whose module_hash the module must match. */
  manifest?: JobManifest;
  /** Guest path of a seeded scratch directory. */
  scratch?: string;
  /** What that directory starts with. */
  scratchSeed?: SeedEntry[];
}

function invalid(error: unknown): JobError {
  return new JobError(
    "InvalidRequest",
    error instanceof Error ? error.message : String(error),
  );
}

/** Validates a document of `kind`; a mismatch is an InvalidRequest. */
function document<T>(
  kind: Parameters<typeof validateDocument>[0],
  value: unknown,
): T {
  try {
    return validateDocument<T>(kind, value);
  } catch (error) {
    throw invalid(error);
  }
}

function base64(
  text: string | undefined,
  name: string,
): Uint8Array | undefined {
  if (text === undefined) return undefined;
  try {
    return fromBase64(text);
  } catch (error) {
    throw new JobError(
      "InvalidRequest",
      `${name}: ${(error as Error).message}`,
    );
  }
}

/** Checks the resources a job asks for against the node's limits. */
export function checkResources(
  asked: { memoryMb?: number; timeoutSeconds?: number; moduleBytes?: number },
  limits: JobLimits,
): void {
  if (asked.memoryMb !== undefined && asked.memoryMb > limits.maxMemoryMb) {
    throw new JobError(
      "InsufficientResources",
      `memory_mb ${asked.memoryMb} exceeds this node's limit of ${limits.maxMemoryMb}`,
    );
  }
  if (
    asked.timeoutSeconds !== undefined &&
    asked.timeoutSeconds > limits.maxTimeoutSeconds
  ) {
    throw new JobError(
      "InsufficientResources",
      `timeout_seconds ${asked.timeoutSeconds} exceeds this node's limit of ${limits.maxTimeoutSeconds}`,
    );
  }
  if (
    asked.moduleBytes !== undefined && asked.moduleBytes > limits.maxModuleBytes
  ) {
    throw new JobError(
      "InsufficientResources",
      `the module (${asked.moduleBytes} bytes) exceeds this node's limit of ${limits.maxModuleBytes} bytes`,
    );
  }
}

/**
 * Decodes and judges a request's seeded scratch directory: its entries'
 * paths and targets, its data, and what it costs against this node's
 * limit, before anything runs. The path is only ever a guest path.
 */
export function judgeScratch(
  scratch: ScratchSeed | undefined,
  limits: JobLimits,
): Pick<JobOrder, "scratch" | "scratchSeed"> {
  if (scratch === undefined) return {};
  const entries: SeedEntry[] = [];
  let bytes = 0;
  for (const entry of scratch.entries) {
    if (entry.kind !== "file" && entry.data !== undefined) {
      throw new JobError("InvalidRequest", "scratch: only files have data");
    }
    if ((entry.kind === "symlink") !== (entry.target !== undefined)) {
      throw new JobError(
        "InvalidRequest",
        "scratch: a link needs a target, and only links have one",
      );
    }
    // Base64 is 4/3 of its bytes: judged before decoding.
    bytes += Math.floor((entry.data?.length ?? 0) * 3 / 4);
    if (bytes > limits.maxSeedBytes) {
      throw new JobError(
        "InsufficientResources",
        `the scratch seed exceeds this node's limit of ${limits.maxSeedBytes} bytes`,
      );
    }
    entries.push(
      entry.kind === "file"
        ? {
          path: entry.path,
          kind: "file",
          data: base64(entry.data ?? "", "scratch data") ?? new Uint8Array(),
        }
        : entry.kind === "symlink"
        ? { path: entry.path, kind: "symlink", target: entry.target }
        : { path: entry.path, kind: "dir" },
    );
  }
  const problem = seedProblem(entries);
  if (problem) throw new JobError("InvalidRequest", `scratch: ${problem}`);
  const cost = seedCost(entries);
  if (cost > limits.maxSeedBytes) {
    throw new JobError(
      "InsufficientResources",
      `the scratch seed costs ${cost} bytes with its entries, over this node's limit of ${limits.maxSeedBytes} bytes`,
    );
  }
  return { scratch: scratch.path, scratchSeed: entries };
}

function checkStdin(stdin: Uint8Array | undefined, limits: JobLimits): void {
  if (stdin && stdin.length > limits.maxStdinBytes) {
    throw new JobError(
      "InsufficientResources",
      `stdin (${stdin.length} bytes) exceeds this node's limit of ${limits.maxStdinBytes} bytes`,
    );
  }
}

/**
 * The part of a runtime version that changes when fuel counts change, as
 * semver reads it: the major, or for 0.x versions the minor too.
 */
function compatibility(version: string): string {
  const [major, minor] = version.split(".").map(Number);
  return major === 0 ? `0.${minor ?? 0}` : String(major);
}

/**
 * Judges a libp2p offer completely (every field's type and range, the
 * declared module size, arch, runtime and resources) before any module byte
 * moves. Returns the typed offer or throws {@link JobError}.
 */
export function judgeOffer(
  message: unknown,
  capability: Capability,
  limits: JobLimits,
): JobOffer {
  const offer = document<JobOffer>("job offer", message);
  const r = offer.requirements;
  if (r.arch && r.arch !== "any" && r.arch !== capability.arch) {
    throw new JobError(
      "ArchMismatch",
      `this node is ${capability.arch}, the job wants ${r.arch}`,
    );
  }
  const version = r.wasm_runtime?.split("@")[1];
  if (
    version &&
    compatibility(version) !== compatibility(capability.runtime.version)
  ) {
    throw new JobError(
      "RuntimeNotSupported",
      `this node runs wasi-preview1@${capability.runtime.version}`,
    );
  }
  if ((r.cpu_cores ?? 1) > capability.cpu_cores) {
    throw new JobError(
      "InsufficientResources",
      `the job wants ${r.cpu_cores} cores, this node offers ${capability.cpu_cores}`,
    );
  }
  checkResources({
    memoryMb: r.memory_mb,
    timeoutSeconds: r.timeout_seconds,
    moduleBytes: offer.module_size,
  }, limits);
  // A seed's JSON is at most twice its cost (base64 is 4/3 of the bytes,
  // an entry's JSON far less than the 512 bytes it is charged).
  const scratchBytes = offer.scratch_bytes ?? 0;
  if (scratchBytes > 2 * limits.maxSeedBytes) {
    throw new JobError(
      "InsufficientResources",
      `a scratch seed of ${scratchBytes} bytes of JSON exceeds this node's limit of ${
        2 * limits.maxSeedBytes
      }`,
    );
  }
  return offer;
}

/**
 * Judges the request that follows an accepted offer: its schema, that it
 * belongs to the offer, and its input's size. The module is resolved by the
 * job service (inline, cached or from `module_url`).
 */
export function judgeRequest(
  message: unknown,
  offer: JobOffer,
  limits: JobLimits,
): { order: JobOrder; moduleUrl?: string } {
  const request = document<JobRequestMessage>("job request", message);
  if (request.job_id !== offer.job_id) {
    throw new JobError("InvalidRequest", "the request names another job_id");
  }
  const module = request.module ? base64(request.module, "module") : undefined;
  if (module && module.length !== offer.module_size) {
    throw new JobError(
      "InvalidRequest",
      `the module is ${module.length} bytes, the offer said ${offer.module_size}`,
    );
  }
  const stdin = base64(request.stdin, "stdin");
  checkStdin(stdin, limits);
  if (request.scratch !== undefined) {
    const announced = offer.scratch_bytes ?? 0;
    const size = new TextEncoder().encode(JSON.stringify(request.scratch))
      .length;
    if (size > announced) {
      throw new JobError(
        "InvalidRequest",
        `the scratch is ${size} bytes of JSON, the offer said at most ${announced}`,
      );
    }
  }
  const scratch = judgeScratch(request.scratch, limits);
  const r = offer.requirements;
  return {
    order: {
      jobId: offer.job_id,
      nonce: offer.nonce,
      module,
      args: request.args ?? [],
      env: request.env ?? {},
      stdin: stdin ?? new Uint8Array(),
      memoryMb: r.memory_mb,
      timeoutSeconds: r.timeout_seconds,
      fuel: r.fuel ?? undefined,
      ...scratch,
    },
    moduleUrl: request.module ? undefined : request.module_url,
  };
}

/** The JSON body of `POST /jobs` (schemas/http_job.schema.json). */
interface HttpJobBody {
  job_id?: string;
  manifest?: unknown;
  module?: string;
  module_hash?: string;
  args?: string[];
  env?: Record<string, string>;
  stdin?: string;
  memory_mb?: number;
  timeout_seconds?: number;
  fuel?: number;
  nonce?: string;
  scratch?: ScratchSeed;
}

/**
 * Judges a `POST /jobs` job: a JSON body, or (for an `application/wasm`
 * body, `moduleInBody`) the query parameters mapped onto the same fields,
 * judged before the module is read. Returns the order and the module hash
 * to look up when the module is not inline.
 */
export function judgeHttpJob(
  body: unknown,
  limits: JobLimits,
  options: { moduleInBody?: boolean } = {},
): { order: JobOrder; moduleHash?: string } {
  const doc = document<HttpJobBody>("job body", body);
  let manifest: JobManifest | undefined;
  if (doc.manifest !== undefined) {
    try {
      manifest = validateJobManifest(doc.manifest);
    } catch (error) {
      throw invalid(error as SchemaError);
    }
  }
  const module = base64(doc.module, "module");
  const stdin = base64(doc.stdin, "stdin");
  checkStdin(stdin, limits);
  const order: JobOrder = {
    jobId: doc.job_id,
    nonce: doc.nonce,
    module,
    args: doc.args,
    env: doc.env,
    stdin,
    memoryMb: doc.memory_mb ?? manifest?.memory_mb,
    timeoutSeconds: doc.timeout_seconds ?? manifest?.timeout_seconds,
    fuel: doc.fuel,
    manifest,
    ...judgeScratch(doc.scratch, limits),
  };
  checkResources({
    memoryMb: order.memoryMb,
    timeoutSeconds: order.timeoutSeconds,
    moduleBytes: module?.length,
  }, limits);
  const moduleHash = doc.module_hash ?? manifest?.module_hash;
  if (!options.moduleInBody && !module && !moduleHash) {
    throw new JobError("InvalidRequest", "give module (base64) or module_hash");
  }
  return { order, moduleHash };
}

/**
 * Maps the query string of an `application/wasm` `POST /jobs` onto the JSON
 * body's fields (`arg` and `env=K=V` repeat; numbers are parsed), so both
 * forms are judged by {@link judgeHttpJob}.
 */
export function queryToJobBody(
  query: URLSearchParams,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const known = [
    "arg",
    "env",
    "stdin",
    "memory_mb",
    "timeout_seconds",
    "fuel",
    "nonce",
    "job_id",
  ];
  for (const name of new Set(query.keys())) {
    if (!known.includes(name)) {
      throw new JobError(
        "InvalidRequest",
        `unknown parameter ${name.slice(0, 64)}`,
      );
    }
    if (name !== "arg" && name !== "env" && query.getAll(name).length > 1) {
      throw new JobError("InvalidRequest", `${name} is given more than once`);
    }
  }
  if (query.has("arg")) body.args = query.getAll("arg");
  if (query.has("env")) {
    const env: Record<string, string> = {};
    for (const item of query.getAll("env")) {
      const eq = item.indexOf("=");
      if (eq <= 0) {
        throw new JobError("InvalidRequest", "env wants NAME=VALUE");
      }
      const name = item.slice(0, eq);
      if (Object.hasOwn(env, name)) {
        throw new JobError(
          "InvalidRequest",
          `env ${name.slice(0, 64)} is given more than once`,
        );
      }
      env[name] = item.slice(eq + 1);
    }
    body.env = env;
  }
  for (const name of ["stdin", "nonce", "job_id"]) {
    const value = query.get(name);
    if (value !== null) body[name] = value;
  }
  for (const name of ["memory_mb", "timeout_seconds", "fuel"]) {
    const value = query.get(name);
    if (value === null) continue;
    // Plain decimal only (no hex, exponents, signs or spaces); anything else
    // stays a string so the schema names the field.
    body[name] = /^\d{1,16}(\.\d{1,9})?$/.test(value) ? Number(value) : value;
  }
  return body;
}
