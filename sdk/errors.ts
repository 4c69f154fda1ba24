/**
 * The SDK's errors: one class per way a job can fail, all extending
 * {@link PhaseError}, so callers can tell a refusal from a timeout, a broken
 * connection, a receipt that fails its checks, or replicas that disagree.
 * @module
 */
import type { RejectReason } from "../schemas/mod.ts";
import type { DisagreementReport } from "./compare.ts";

/** Any failure of a Phase client call. */
export class PhaseError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PhaseError";
  }
}

/** The node refused the job; `reason` is the protocol's refusal code. */
export class RefusedError extends PhaseError {
  /** Creates the error. */
  constructor(
    /** The protocol's reason code (docs/protocol.md), e.g. `QueueFull`. */
    readonly reason: RejectReason,
    detail: string,
  ) {
    super(`refused (${reason}): ${detail}`);
    this.name = "RefusedError";
  }
}

/** No answer within the time allowed. */
export class TimeoutError extends PhaseError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** The node could not be reached, or the connection broke. */
export class TransportError extends PhaseError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "TransportError";
  }
}

/** The node answered with a receipt that fails verification. */
export class InvalidReceiptError extends PhaseError {
  /** Creates the error. */
  constructor(
    message: string,
    /** The receipt as it arrived (not to be trusted). */
    readonly receipt?: unknown,
  ) {
    super(`invalid receipt: ${message}`);
    this.name = "InvalidReceiptError";
  }
}

/** Replicas of a job did not agree as asked; `report` says how. */
export class DisagreementError extends PhaseError {
  /** Creates the error. */
  constructor(
    /** The self-contained report: every receipt and every difference. */
    readonly report: DisagreementReport,
  ) {
    super(report.summary);
    this.name = "DisagreementError";
  }
}
