/**
 * Verified execution by replication: the same job on N distinct nodes
 * (distinct peer ids, spread over distinct /24 networks where addresses say
 * so), each receipt verified, then their outcomes compared. Jobs are
 * deterministic by design (fuel counts included), so honest nodes agree
 * exactly; a node that signs anything else is outvoted (`majority`) or
 * stops the run with a disagreement report (`all`).
 * @module
 */
import type { Receipt } from "../schemas/mod.ts";
import {
  compareReceipts,
  type DisagreementReport,
  type OutcomeGroup,
  type ReplicaFailure,
  shortPeerId,
} from "./compare.ts";
import { DisagreementError, PhaseError, TransportError } from "./errors.ts";
import {
  freshIdentity,
  type NodeInfo,
  type PreparedJob,
  resultOf,
  type RunResult,
} from "./job.ts";
import type { Transport } from "./transport.ts";
import { verifyDelivered } from "./verify.ts";

/** Most replicas of one run (a disagreement report holds at most this many). */
export const MAX_REPLICAS = 64;

/** How replicas must agree: every one, or more than half. */
export type Agreement = "all" | "majority";

/** How a replicated run went (on a result that was agreed). */
export interface Replication {
  /** Replicas asked for. */
  replicas: number;
  /** The agreement asked for. */
  agree: Agreement;
  /** Nodes whose receipts agree with the result returned. */
  agreeing: string[];
  /** Nodes whose valid receipts say something else (outvoted). */
  dissenters: string[];
  /** Every verified receipt, the result's first. */
  receipts: Receipt[];
  /** When some node dissented: the report that shows how, else null. */
  report: DisagreementReport | null;
}

/** A result agreed by replicas. */
export interface ReplicatedResult extends RunResult {
  /** How the replicas agreed. */
  replication: Replication;
}

/** The /24 (IPv4) or host a node's address is in, for spreading replicas. */
function networkOf(node: NodeInfo): string {
  const address = node.address ?? node.addresses?.[0] ?? "";
  const ip4 = /\/ip4\/(\d+\.\d+\.\d+)\.\d+/.exec(address) ??
    /^\w+:\/\/(\d+\.\d+\.\d+)\.\d+/.exec(address);
  if (ip4) return ip4[1];
  return /^\w+:\/\/([^/:]+)/.exec(address)?.[1] ?? address;
}

/**
 * Distinct nodes (by peer id) in an order that takes one per network before
 * a second from any network, keeping the transport's order otherwise.
 */
export function spreadNodes(nodes: NodeInfo[]): NodeInfo[] {
  const seen = new Set<string>();
  const byNetwork = new Map<string, NodeInfo[]>();
  for (const node of nodes) {
    if (seen.has(node.peerId)) continue;
    seen.add(node.peerId);
    const key = networkOf(node);
    byNetwork.set(key, [...byNetwork.get(key) ?? [], node]);
  }
  const lists = [...byNetwork.values()];
  const out: NodeInfo[] = [];
  for (let round = 0; out.length < seen.size; round++) {
    for (const list of lists) if (list[round]) out.push(list[round]);
  }
  return out;
}

function oneLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0].slice(
    0,
    512,
  );
}

function reportOf(options: {
  agree: Agreement;
  replicas: number;
  job: PreparedJob;
  receipts: Receipt[];
  groups: OutcomeGroup[];
  comparison: Awaited<ReturnType<typeof compareReceipts>>;
  failures: ReplicaFailure[];
}): DisagreementReport {
  const { groups } = options;
  const tie = groups.length > 1 &&
    groups[1].peer_ids.length === groups[0].peer_ids.length;
  const dissenters = (tie ? groups : groups.slice(1)).flatMap((g) =>
    g.peer_ids
  );
  const fields = options.comparison.differences.map((d) => d.field);
  return {
    type: "phase-disagreement-report",
    version: 1,
    created_at: new Date().toISOString(),
    agree: options.agree,
    replicas: options.replicas,
    module_hash: options.job.moduleHash,
    input_hash: options.job.inputHash,
    summary: `${options.replicas} replicas do not all agree: ${
      groups.map((g) => g.peer_ids.length).join(" vs ")
    }; ${
      tie
        ? "no majority"
        : `dissenting: ${dissenters.map(shortPeerId).join(", ")}`
    }; differing: ${fields.join(", ") || "nothing comparable"}`,
    receipts: options.receipts,
    groups,
    differences: options.comparison.differences,
    dissenters,
    failures: options.failures,
  };
}

/**
 * Runs a prepared job on `replicas` distinct nodes of a transport and
 * returns the agreed result, or throws {@link DisagreementError} with the
 * report. A node that fails (refusal, timeout, unreachable, a receipt that
 * does not verify) is replaced by the next distinct node; with too few
 * nodes it throws a TransportError naming each failure.
 */
export async function runReplicated(
  transport: Transport,
  job: PreparedJob,
  options: { replicas: number; agree: Agreement; signal: AbortSignal },
): Promise<ReplicatedResult> {
  const { replicas, agree, signal } = options;
  if (
    !Number.isSafeInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS
  ) {
    throw new PhaseError(
      `replicas must be a whole number from 1 to ${MAX_REPLICAS}`,
    );
  }
  let candidates = spreadNodes(await transport.nodes({ signal }));
  if (candidates.length < replicas) {
    candidates = spreadNodes(await transport.nodes({ signal, fresh: true }));
  }
  if (candidates.length < replicas) {
    throw new TransportError(
      `${replicas} replicas need ${replicas} distinct nodes; ${candidates.length} found`,
    );
  }
  let next = replicas;
  const failures: ReplicaFailure[] = [];
  const delivered: { receipt: Receipt; node: NodeInfo }[] = [];
  const replica = async (first: NodeInfo) => {
    for (let node: NodeInfo | undefined = first; node;) {
      // Each replica has its own nonce and job id: a node cannot answer
      // with another node's receipt.
      const attempt = { ...job, ...freshIdentity() };
      try {
        const answer = await transport.execute(attempt, { signal, node });
        const receipt = await verifyDelivered(
          answer.receipt,
          attempt,
          node,
          transport.bindsJobId,
        );
        delivered.push({ receipt, node: answer.node });
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        failures.push({ peer_id: node.peerId, error: oneLine(error) });
        node = candidates[next++];
      }
    }
  };
  await Promise.all(candidates.slice(0, replicas).map(replica));
  if (delivered.length < replicas) {
    throw new TransportError(
      `only ${delivered.length} of ${replicas} replicas returned a valid receipt: ${
        failures.map((f) => `${f.peer_id} (${f.error})`).join("; ")
      }`,
    );
  }
  const receipts = delivered.map((d) => d.receipt);
  const comparison = await compareReceipts(receipts);
  const groups = comparison.groups;
  const largest = groups[0];
  const report = groups.length > 1
    ? reportOf({
      agree,
      replicas,
      job,
      receipts,
      groups,
      comparison,
      failures,
    })
    : null;
  const agreed = agree === "all"
    ? groups.length === 1
    : largest.peer_ids.length * 2 > replicas;
  // One group always agrees, so a refusal always has its report.
  if (!agreed) throw new DisagreementError(report!);
  const winners = new Set(largest.peer_ids);
  const chosen = delivered.find((d) => winners.has(d.receipt.node_peer_id))!;
  return {
    ...resultOf(chosen.receipt, chosen.node),
    replication: {
      replicas,
      agree,
      agreeing: largest.peer_ids,
      dissenters: report?.dissenters ?? [],
      receipts: [
        chosen.receipt,
        ...receipts.filter((r) => r !== chosen.receipt),
      ],
      report,
    },
  };
}
