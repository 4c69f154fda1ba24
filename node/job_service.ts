/**
 * The job service: what a node does with a judged job, whichever transport
 * brought it. It admits jobs before their bytes are read (a bounded number of
 * places, a share per client, a budget of bytes their bodies may hold; see
 * admission.ts), runs them in turn with the client that has the fewest
 * running going next, resolves modules (inline, recently seen, or from a URL
 * under the module source policy), runs them in the sandbox pool with
 * cancellation when the client goes away, keeps receipts in a bounded store
 * and describes the node's capability.
 * @module
 */
import { type Capability, type NodeKey, sha256Ref } from "../schemas/mod.ts";
import {
  JobCancelled,
  JobRefused,
  type JobResult,
  MeteredModuleCache,
  ModuleError,
  QueueFullError,
  runJob,
  RUNTIME_VERSION,
  SandboxPool,
} from "../runner/mod.ts";
import {
  DEFAULT_JOB_LIMITS,
  JobError,
  type JobLimits,
  type JobOrder,
} from "./job_input.ts";
import {
  type AdmissionLimits,
  type AdmissionTicket,
  JobAdmission,
} from "./admission.ts";
import { fetchModule, ModuleFetchError } from "./module_source.ts";
import type { ReceiptStore } from "./receipt_store.ts";

/** How a node runs jobs for others. */
export interface JobServiceOptions {
  /** The key that signs receipts. */
  key: NodeKey;
  /** Canonical architecture of this machine. */
  arch: string;
  /** Limits per job (defaults {@link DEFAULT_JOB_LIMITS}). */
  limits?: Partial<JobLimits>;
  /** Warm sandbox processes (default 2). */
  sandboxSize?: number;
  /** Jobs admitted beyond the running ones before QueueFull (default 64). */
  queueLimit?: number;
  /**
   * Admission beyond the places (defaults: a quarter of the places per
   * client, 64 MiB of job bodies held at once).
   */
  admission?: Partial<Omit<AdmissionLimits, "running" | "admitted">>;
  /** Metered modules (default an in-memory cache). */
  modules?: MeteredModuleCache;
  /** Where receipts are kept, or null to keep none (Private mode). */
  receipts?: ReceiptStore | null;
  /** Let module URLs point at loopback and private addresses. */
  allowPrivateModuleUrls?: boolean;
  /** CPU cores offered (default the machine's). */
  cpuCores?: number;
}

/** Counters of a job service. */
export interface JobCounters {
  /** Jobs that ran to a receipt, by execution status. */
  completed: Record<string, number>;
  /** Jobs refused, by reason. */
  refused: Record<string, number>;
  /** Jobs whose client went away first. */
  cancelled: number;
  /** Receipts this node could not keep (the client still got them). */
  unkept: number;
}

/** Modules recently received, by sha256, so repeat jobs need not resend them. */
class RecentModules {
  #entries = new Map<string, Uint8Array>();
  #bytes = 0;
  constructor(readonly limit: number) {}
  get(hash: string): Uint8Array | undefined {
    const hit = this.#entries.get(hash);
    if (hit) {
      this.#entries.delete(hash);
      this.#entries.set(hash, hit);
    }
    return hit;
  }
  set(hash: string, module: Uint8Array): void {
    if (this.#entries.has(hash) || module.length > this.limit) return;
    this.#entries.set(hash, module);
    this.#bytes += module.length;
    for (const [key, value] of this.#entries) {
      if (this.#bytes <= this.limit) break;
      this.#entries.delete(key);
      this.#bytes -= value.length;
    }
  }
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

/** Runs strangers' jobs for one node. */
export class JobService {
  /** The key that signs receipts. */
  readonly key: NodeKey;
  /** Limits per job. */
  readonly limits: JobLimits;
  /** Counters for /metrics and /status. */
  readonly counters: JobCounters = {
    completed: {},
    refused: {},
    cancelled: 0,
    unkept: 0,
  };
  readonly #arch: string;
  readonly #sandbox: SandboxPool;
  readonly #queueLimit: number;
  readonly #admission: JobAdmission;
  readonly #modules: MeteredModuleCache;
  readonly #receipts: ReceiptStore | null;
  readonly #allowPrivate: boolean;
  readonly #cpuCores: number;
  readonly #recent = new RecentModules(64 * 1024 * 1024);

  /** Creates the service and its sandbox pool (processes start on first use). */
  constructor(options: JobServiceOptions) {
    this.key = options.key;
    this.limits = { ...DEFAULT_JOB_LIMITS, ...options.limits };
    this.#arch = options.arch;
    const size = options.sandboxSize ?? 2;
    this.#queueLimit = options.queueLimit ?? 64;
    const places = size + this.#queueLimit;
    this.#admission = new JobAdmission({
      running: size,
      admitted: places,
      perClient: Math.max(1, Math.ceil(places / 4)),
      bodyBytes: 64 * 1024 * 1024,
      // One client may hold the largest single request, not the budget.
      perClientBytes: 24 * 1024 * 1024,
      ...options.admission,
    });
    // Admitted jobs take their turn before they reach the pool, so its own
    // queue only ever holds jobs run without a ticket (a boot's first job).
    this.#sandbox = new SandboxPool({ size, queueLimit: this.#queueLimit });
    this.#modules = options.modules ?? new MeteredModuleCache();
    this.#receipts = options.receipts ?? null;
    this.#allowPrivate = options.allowPrivateModuleUrls ?? false;
    this.#cpuCores = options.cpuCores ?? navigator.hardwareConcurrency;
  }

  /** Jobs admitted and not yet running. */
  get queued(): number {
    const { admitted, running } = this.#admission.stats;
    return admitted - running;
  }

  /** Where receipts are kept, or null. */
  get receipts(): ReceiptStore | null {
    return this.#receipts;
  }

  /** This node's capability record payload. */
  capability(httpUrl?: string): Capability {
    return {
      arch: this.#arch,
      cpu_cores: this.#cpuCores,
      memory_mb: this.limits.maxMemoryMb,
      runtime: {
        name: "phase-deno",
        version: RUNTIME_VERSION,
        wasi: "preview1",
      },
      limits: {
        max_timeout_seconds: this.limits.maxTimeoutSeconds,
        max_module_bytes: this.limits.maxModuleBytes,
      },
      load: { queued: this.queued, queue_limit: this.#queueLimit },
      ...(httpUrl ? { http_url: httpUrl } : {}),
    };
  }

  /**
   * Admits a job from `client` (an address or a peer id) whose body may hold
   * up to `bodyBytes`, before any of it is read; throws
   * `AdmissionRefused` (503 full, 429 the client's share used).
   */
  admit(
    client: string,
    bodyBytes: number,
    announced?: number,
  ): AdmissionTicket {
    return this.#admission.admit(client, bodyBytes, announced);
  }

  /**
   * Counts a refusal by its reason; the transports call it once for every
   * refusal they answer, whoever decided it.
   */
  refused(reason: string): void {
    bump(this.counters.refused, reason);
  }

  /** True when a module with this hash was received recently. */
  hasModule(hash: string): boolean {
    return this.#recent.get(hash) !== undefined;
  }

  /**
   * The module of an order: inline, recently received, or fetched from
   * `moduleUrl`; checked against `moduleHash` when given.
   */
  async resolveModule(
    order: JobOrder,
    source: { moduleHash?: string; moduleUrl?: string },
  ): Promise<Uint8Array> {
    let module = order.module ??
      (source.moduleHash ? this.#recent.get(source.moduleHash) : undefined);
    if (!module && source.moduleUrl) {
      try {
        module = await fetchModule(source.moduleUrl, {
          maxBytes: this.limits.maxModuleBytes,
          allowPrivate: this.#allowPrivate,
        });
      } catch (error) {
        if (error instanceof ModuleFetchError) {
          throw new JobError("ModuleUnavailable", error.message);
        }
        throw error;
      }
    }
    if (!module) {
      throw new JobError("ModuleUnavailable", "the request has no module");
    }
    if (module.length > this.limits.maxModuleBytes) {
      throw new JobError(
        "InsufficientResources",
        `the module (${module.length} bytes) exceeds this node's limit of ${this.limits.maxModuleBytes} bytes`,
      );
    }
    if (source.moduleHash && await sha256Ref(module) !== source.moduleHash) {
      throw new JobError(
        "InvalidRequest",
        "the module does not match its module_hash",
      );
    }
    return module;
  }

  /**
   * Runs a job to a signed receipt and keeps the receipt. An admitted job
   * (`ticket`) first waits for its turn. Rejects with {@link JobCancelled}
   * when `signal` aborts first, and with {@link JobError} when the job is
   * refused.
   */
  async run(
    order: JobOrder & { module: Uint8Array },
    options: { signal?: AbortSignal; ticket?: AdmissionTicket } = {},
  ): Promise<JobResult> {
    let result: JobResult;
    try {
      await options.ticket?.turn(options.signal).catch(() => {
        throw new JobCancelled();
      });
      result = await runJob({
        module: order.module,
        programName: "main.wasm",
        args: order.args,
        env: order.env,
        stdin: order.stdin,
        memoryMb: order.memoryMb,
        timeoutSeconds: order.timeoutSeconds,
        fuel: order.fuel,
        manifest: order.manifest,
        scratch: order.scratch,
        scratchSeed: order.scratchSeed,
        nonce: order.nonce,
        jobId: order.jobId,
        signal: options.signal,
      }, { sandbox: this.#sandbox, key: this.key, modules: this.#modules });
    } catch (error) {
      if (error instanceof JobCancelled) {
        this.counters.cancelled++;
        throw error;
      }
      const refusal = error instanceof QueueFullError
        ? new JobError("QueueFull", error.message)
        : error instanceof ModuleError || error instanceof JobRefused
        ? new JobError("InvalidRequest", error.message)
        : null;
      if (!refusal) throw error;
      throw refusal;
    }
    this.#recent.set(result.receipt.module_hash, order.module);
    bump(this.counters.completed, result.receipt.execution.status);
    // The job ran: its client gets the receipt even when this node cannot
    // keep a copy (a full disk, a removed folder); the operator hears why.
    await this.#receipts?.add(result.receipt).catch((error) => {
      this.counters.unkept++;
      console.error(
        `phase: could not keep the receipt of job ${result.receipt.job_id}: ${
          String((error as Error)?.message ?? error).split("\n")[0]
        }`,
      );
    });
    return result;
  }

  /** Ends the sandbox processes. */
  async close(): Promise<void> {
    await this.#sandbox.close();
  }
}
