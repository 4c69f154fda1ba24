import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import commonSchema from "./common.schema.json" with { type: "json" };
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
import type { BootManifest, JobManifest, Receipt } from "./types.ts";

/** A document that does not match its schema; the message is one line. */
export class SchemaError extends Error {
  /** Creates the error for a document of the named kind. */
  constructor(kind: string, detail: string) {
    super(`invalid ${kind}: ${detail}`);
    this.name = "SchemaError";
  }
}

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
};

/** Names of the documents {@link validateDocument} knows. */
export type DocumentKind =
  | "receipt"
  | "job manifest"
  | "boot manifest"
  | "job offer"
  | "job request"
  | "accepted message"
  | "rejected message"
  | "result message"
  | "job body"
  | "record"
  | "capability record"
  | "boot-provider record";

let ajv: Ajv | undefined;
const compiled = new Map<DocumentKind, ValidateFunction>();

/** Compiles a schema on first use, so that commands that validate nothing pay nothing. */
function validatorFor(kind: DocumentKind): ValidateFunction {
  let validate = compiled.get(kind);
  if (!validate) {
    if (!ajv) {
      ajv = new Ajv({ allErrors: false, strict: true });
      addFormats.default(ajv, ["date-time"]);
      ajv.addSchema(commonSchema);
    }
    validate = ajv.compile(SCHEMAS[kind]);
    compiled.set(kind, validate);
  }
  return validate;
}

function describe(errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (!first) return "does not match the schema";
  const where = first.instancePath || "(document)";
  const extra = first.keyword === "additionalProperties"
    ? ` '${
      (first.params as { additionalProperty: string }).additionalProperty
    }'`
    : "";
  return `${where} ${first.message ?? "is invalid"}${extra}`;
}

/**
 * Returns `value` typed as `T` when it matches the schema of `kind`, or
 * throws {@link SchemaError} naming the first mismatch.
 */
export function validateDocument<T>(kind: DocumentKind, value: unknown): T {
  const validate = validatorFor(kind);
  if (!validate(value)) throw new SchemaError(kind, describe(validate.errors));
  return value as T;
}

/** The JSON Schema of a document kind (for documentation and tests). */
export function schemaOf(kind: DocumentKind): object {
  return SCHEMAS[kind];
}

/** Returns `value` typed as a receipt, or throws {@link SchemaError}. */
export function validateReceipt(value: unknown): Receipt {
  return validateDocument<Receipt>("receipt", value);
}

/** Returns `value` typed as a job manifest, or throws {@link SchemaError}. */
export function validateJobManifest(value: unknown): JobManifest {
  return validateDocument<JobManifest>("job manifest", value);
}

/** Returns `value` typed as a boot manifest, or throws {@link SchemaError}. */
export function validateBootManifest(value: unknown): BootManifest {
  return validateDocument<BootManifest>("boot manifest", value);
}
