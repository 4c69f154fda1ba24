import type { ErrorObject, ValidateFunction } from "ajv";
import type { BootManifest, JobManifest, Receipt } from "./types.ts";
import * as compiled from "./compiled_validators.js";
import { type DocumentKind, validatorName } from "./document_kinds.ts";

/** A document that does not match its schema; the message is one line. */
export class SchemaError extends Error {
  /** Creates the error for a document of the named kind. */
  constructor(kind: string, detail: string) {
    super(`invalid ${kind}: ${detail}`);
    this.name = "SchemaError";
  }
}

/**
 * The validator of `kind`: ajv's code for the schema, compiled ahead of time
 * by schemas/build_validators.ts, so validating costs no schema compilation.
 */
function validatorFor(kind: DocumentKind): ValidateFunction {
  return (compiled as unknown as Record<string, ValidateFunction>)[
    validatorName(kind)
  ];
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
