/**
 * Comparing receipts of one job run by several nodes, offline: each receipt's
 * signature is checked under the key inside its `node_peer_id`, then the
 * parts that are deterministic by design (the output, the status, the exit
 * code and the fuel consumed) are compared. Used by replicated runs and by
 * `phase receipt compare`.
 * @module
 */
import {
  canonicalBytes,
  type Difference,
  type Outcome,
  type OutcomeGroup,
  type Receipt,
  sha256Ref,
  verifyReceipt,
} from "../schemas/mod.ts";

export type {
  Difference,
  DisagreementReport,
  Outcome,
  OutcomeGroup,
  ReplicaFailure,
} from "../schemas/mod.ts";

/**
 * The hash of what a receipt says the job wrote: sha256 of the JCS bytes of
 * `{stdout, stderr, output_encoding, stdout_truncated, stderr_truncated}`.
 */
export async function outputHash(receipt: Receipt): Promise<string> {
  return await sha256Ref(canonicalBytes({
    stdout: receipt.stdout,
    stderr: receipt.stderr,
    output_encoding: receipt.output_encoding,
    stdout_truncated: receipt.stdout_truncated,
    stderr_truncated: receipt.stderr_truncated,
  }));
}

/** The {@link Outcome} of a receipt. */
export async function outcomeOf(receipt: Receipt): Promise<Outcome> {
  return {
    output_hash: await outputHash(receipt),
    status: receipt.execution.status,
    exit_code: receipt.execution.exit_code,
    fuel_consumed: receipt.execution.fuel_consumed ?? null,
  };
}

/** One receipt, checked. */
export interface ReceiptCheck {
  /** Its place in the list compared (0-based). */
  index: number;
  /** Its signer, as it claims (verified when `valid`). */
  peer_id: string | null;
  /** Whether the signature (and schema) verify. */
  valid: boolean;
  /** Why it does not, when it does not. */
  reason?: string;
  /** The outcome, for a valid receipt. */
  outcome?: Outcome;
}

/** The result of {@link compareReceipts}. */
export interface Comparison {
  /** Every receipt, checked, in the order given. */
  checks: ReceiptCheck[];
  /** All valid receipts name the same module and input. */
  same_job: boolean;
  /** Every receipt is valid, of the same job, with the same outcome. */
  agree: boolean;
  /** Valid receipts grouped by outcome, the largest group first. */
  groups: OutcomeGroup[];
  /** Fields that differ between valid receipts. */
  differences: Difference[];
}

/** Fields compared and reported, by path. */
const FIELDS: [string, (r: Receipt) => unknown][] = [
  ["module_hash", (r) => r.module_hash],
  ["input_hash", (r) => r.input_hash],
  ["execution.status", (r) => r.execution.status],
  ["execution.exit_code", (r) => r.execution.exit_code],
  ["execution.fuel_consumed", (r) => r.execution.fuel_consumed],
  ["stdout", (r) => r.stdout],
  ["stderr", (r) => r.stderr],
  ["output_encoding", (r) => r.output_encoding],
  ["stdout_truncated", (r) => r.stdout_truncated],
  ["stderr_truncated", (r) => r.stderr_truncated],
];

function differencesOf(receipts: Receipt[]): Difference[] {
  const out: Difference[] = [];
  for (const [field, read] of FIELDS) {
    const byValue = new Map<string, { value: unknown; peer_ids: string[] }>();
    for (const receipt of receipts) {
      const value = read(receipt);
      const key = JSON.stringify(value ?? null);
      const entry = byValue.get(key) ?? { value, peer_ids: [] };
      entry.peer_ids.push(receipt.node_peer_id);
      byValue.set(key, entry);
    }
    if (byValue.size > 1) out.push({ field, values: [...byValue.values()] });
  }
  return out;
}

/**
 * Checks each receipt's signature and compares the valid ones: which agree
 * on the outcome, and every field where they differ. Needs no node and no
 * network.
 */
export async function compareReceipts(
  receipts: readonly unknown[],
): Promise<Comparison> {
  const checks: ReceiptCheck[] = [];
  const valid: Receipt[] = [];
  const groups = new Map<string, OutcomeGroup>();
  for (const [index, value] of receipts.entries()) {
    const claimed = (value as { node_peer_id?: unknown })?.node_peer_id;
    const peer_id = typeof claimed === "string" ? claimed : null;
    const verdict = await verifyReceipt(value);
    if (!verdict.valid) {
      checks.push({ index, peer_id, valid: false, reason: verdict.reason });
      continue;
    }
    const outcome = await outcomeOf(verdict.receipt);
    checks.push({ index, peer_id, valid: true, outcome });
    valid.push(verdict.receipt);
    const key = JSON.stringify(outcome);
    const group = groups.get(key) ?? { outcome, peer_ids: [] };
    group.peer_ids.push(verdict.receipt.node_peer_id);
    groups.set(key, group);
  }
  const differences = differencesOf(valid);
  const same_job = !differences.some((d) =>
    d.field === "module_hash" || d.field === "input_hash"
  );
  return {
    checks,
    same_job,
    agree: valid.length === receipts.length && same_job && groups.size <= 1,
    groups: [...groups.values()].sort((a, b) =>
      b.peer_ids.length - a.peer_ids.length
    ),
    differences,
  };
}

/** Short form of a peer id for messages: its last 8 characters. */
export function shortPeerId(peerId: string): string {
  return `…${peerId.slice(-8)}`;
}

/**
 * Lines describing each difference, for people: the field, then each value
 * (strings cut at 60 characters) with the signers that signed it.
 */
export function describeDifferences(differences: Difference[]): string[] {
  return differences.map((d) =>
    `${d.field}: ${
      d.values.map((v) => {
        const text = JSON.stringify(v.value) ?? "null";
        const cut = text.length > 60 ? `${text.slice(0, 57)}…` : text;
        return `${cut} (${v.peer_ids.join(", ")})`;
      }).join(" vs ")
    }`
  );
}
