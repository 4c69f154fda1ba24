/**
 * The documents Phase validates: each kind's JSON Schema, by the name used
 * in error messages. schemas/validate.ts checks documents with the code
 * schemas/build_validators.ts compiles from these.
 * @module
 */
import receiptSchema from "./receipt.schema.json" with { type: "json" };
import jobManifestSchema from "./job_manifest.schema.json" with {
  type: "json",
};
import bootManifestSchema from "./boot_manifest.schema.json" with {
  type: "json",
};
import jobOfferSchema from "./job_offer.schema.json" with { type: "json" };
import jobRequestSchema from "./job_request.schema.json" with {
  type: "json",
};
import jobAcceptedSchema from "./job_accepted.schema.json" with {
  type: "json",
};
import jobRejectedSchema from "./job_rejected.schema.json" with {
  type: "json",
};
import jobResultSchema from "./job_result.schema.json" with { type: "json" };
import httpJobSchema from "./http_job.schema.json" with { type: "json" };
import recordSchema from "./record.schema.json" with { type: "json" };
import capabilitySchema from "./capability.schema.json" with {
  type: "json",
};
import bootProviderSchema from "./boot_provider.schema.json" with {
  type: "json",
};
import capablePeersSchema from "./capable_peers.schema.json" with {
  type: "json",
};
import bootCacheSchema from "./boot_cache.schema.json" with { type: "json" };
import disagreementReportSchema from "./disagreement_report.schema.json" with {
  type: "json",
};
import releaseSignatureSchema from "./release_signature.schema.json" with {
  type: "json",
};
import type { DocumentKind } from "./document_kinds.ts";

export { type DocumentKind, validatorName } from "./document_kinds.ts";

/** Every schema Phase validates against, by the name used in error messages. */
const SCHEMAS: Record<DocumentKind, object> = {
  receipt: receiptSchema,
  "job manifest": jobManifestSchema,
  "boot manifest": bootManifestSchema,
  "job offer": jobOfferSchema,
  "job request": jobRequestSchema,
  "accepted message": jobAcceptedSchema,
  "rejected message": jobRejectedSchema,
  "result message": jobResultSchema,
  "job body": httpJobSchema,
  record: recordSchema,
  "capability record": capabilitySchema,
  "boot-provider record": bootProviderSchema,
  "capable peers": capablePeersSchema,
  "boot cache header": bootCacheSchema,
  "disagreement report": disagreementReportSchema,
  "release signature": releaseSignatureSchema,
};

/** Every document kind, in the order of the schemas above. */
export const DOCUMENT_KINDS: DocumentKind[] = Object.keys(
  SCHEMAS,
) as DocumentKind[];

/** The JSON Schema of a document kind (for documentation and tests). */
export function schemaOf(kind: DocumentKind): object {
  return SCHEMAS[kind];
}
