import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import receiptSchema from "./receipt.schema.json" with { type: "json" };
import jobManifestSchema from "./job_manifest.schema.json" with {
  type: "json",
};
import bootManifestSchema from "./boot_manifest.schema.json" with {
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

const ajv = new Ajv({ allErrors: false, strict: true });
addFormats.default(ajv, ["date-time"]);

const validators = {
  receipt: ajv.compile(receiptSchema),
  "job manifest": ajv.compile(jobManifestSchema),
  "boot manifest": ajv.compile(bootManifestSchema),
};

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

function check<T>(
  kind: keyof typeof validators,
  value: unknown,
): T {
  const validate: ValidateFunction = validators[kind];
  if (!validate(value)) throw new SchemaError(kind, describe(validate.errors));
  return value as T;
}

/** Returns `value` typed as a receipt, or throws {@link SchemaError}. */
export function validateReceipt(value: unknown): Receipt {
  return check<Receipt>("receipt", value);
}

/** Returns `value` typed as a job manifest, or throws {@link SchemaError}. */
export function validateJobManifest(value: unknown): JobManifest {
  return check<JobManifest>("job manifest", value);
}

/** Returns `value` typed as a boot manifest, or throws {@link SchemaError}. */
export function validateBootManifest(value: unknown): BootManifest {
  return check<BootManifest>("boot manifest", value);
}
