/**
 * The node layer: what a Phase node is, once, whatever carries requests to
 * it. One judgement of strangers' jobs (job_input.ts), the job service that
 * admits, runs and keeps receipts (job_service.ts), the module URL policy
 * (module_source.ts), the bounded receipt store (receipt_store.ts) and the
 * assembly used by `phase serve` and Phase Boot alike (start.ts). HTTP and
 * libp2p are thin transports over it (provider/, discovery/).
 * @module
 */
export {
  checkResources,
  DEFAULT_JOB_LIMITS,
  JobError,
  type JobLimits,
  type JobOrder,
  judgeHttpJob,
  judgeOffer,
  judgeRequest,
  queryToJobBody,
} from "./job_input.ts";
export {
  type AdmissionLimits,
  AdmissionRefused,
  type AdmissionTicket,
  JobAdmission,
} from "./admission.ts";
export {
  type JobCounters,
  JobService,
  type JobServiceOptions,
} from "./job_service.ts";
export {
  fetchModule,
  isPublicAddress,
  ModuleFetchError,
  type ModuleSourceOptions,
} from "./module_source.ts";
export {
  DEFAULT_RECEIPT_LIMITS,
  ReceiptStore,
  type ReceiptStoreOptions,
  type ReceiptSummary,
  RECENT_SUMMARIES,
  type StoredReceipt,
} from "./receipt_store.ts";
export {
  type NodeConfig,
  type NodeServices,
  type NodeTransport,
  type RunningNode,
  type RunningTransport,
  startNode,
} from "./start.ts";
