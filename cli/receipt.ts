/**
 * `phase receipt verify FILE`: checks a receipt's schema and signature (and,
 * on request, who signed it and for which module, input and nonce).
 * `phase receipt compare FILE…`: verifies receipts of one job from several
 * nodes and prints where they differ, offline.
 * @module
 */
import {
  type DisagreementReport,
  SchemaError,
  validateDocument,
  verifyReceipt,
} from "../schemas/mod.ts";
import { compareReceipts, describeDifferences } from "../sdk/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { receiptLines, renderLines } from "../runner/mod.ts";
import { readInput } from "./run.ts";
import { parseCommandLine, usageError } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

/** `phase receipt verify FILE [--peer ID] [--module-hash H] [--nonce N] [--json]` */
export async function receiptVerifyCommand(argv: string[]): Promise<number> {
  const spec = COMMANDS.receipt.subcommands.verify;
  const { values, positionals } = parseCommandLine(spec, argv);
  const [path] = positionals;
  if (!path) throw usageError(spec);
  const bytes = await readInput(path, "receipt");
  let parsed: unknown;
  let verdict: Awaited<ReturnType<typeof verifyReceipt>>;
  try {
    parsed = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
    verdict = await verifyReceipt(parsed, {
      peerId: values.peer,
      moduleHash: values["module-hash"],
      inputHash: values["input-hash"],
      nonce: values.nonce,
    });
  } catch {
    verdict = { valid: false, reason: "not a JSON document" };
  }
  if (values.json) {
    console.log(JSON.stringify(
      verdict.valid
        ? { valid: true, node_peer_id: verdict.receipt.node_peer_id }
        : { valid: false, reason: verdict.reason },
    ));
  } else if (!verdict.valid) {
    console.error(`phase: receipt ${path} is invalid: ${verdict.reason}`);
  } else if (!values.quiet) {
    await Deno.stdout.write(new TextEncoder().encode(renderLines(
      receiptLines(verdict.receipt, { valid: true }),
      Deno.stdout.isTerminal(),
    )));
  }
  return verdict.valid ? 0 : 1;
}

/**
 * The receipts in a file: one receipt, or every receipt of a disagreement
 * report. Unreadable files are one-line errors.
 */
async function receiptsIn(path: string): Promise<unknown[]> {
  const bytes = await readInput(path, "receipt");
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    );
  } catch {
    throw new CliError(`${path} is not a JSON document`);
  }
  if ((parsed as { type?: unknown })?.type !== "phase-disagreement-report") {
    return [parsed];
  }
  try {
    return validateDocument<DisagreementReport>("disagreement report", parsed)
      .receipts;
  } catch (error) {
    if (error instanceof SchemaError) {
      throw new CliError(`${path}: ${error.message}`);
    }
    throw error;
  }
}

/** `phase receipt compare FILE FILE… [--json]` */
export async function receiptCompareCommand(argv: string[]): Promise<number> {
  const spec = COMMANDS.receipt.subcommands.compare;
  const { values, positionals } = parseCommandLine(spec, argv);
  if (positionals.length === 0) throw usageError(spec);
  const receipts: unknown[] = [];
  for (const path of positionals) receipts.push(...await receiptsIn(path));
  if (receipts.length < 2) {
    throw new UsageError("receipt compare needs at least two receipts");
  }
  const comparison = await compareReceipts(receipts);
  if (values.json) {
    console.log(JSON.stringify(comparison));
    return comparison.agree ? 0 : 1;
  }
  const lines = comparison.checks.map((check) =>
    check.valid
      ? `receipt ${check.index + 1}: signature ✓  ${check.peer_id}  ${
        check.outcome!.status
      } ${check.outcome!.exit_code ?? "-"}  fuel ${
        check.outcome!.fuel_consumed ?? "-"
      }  output ${check.outcome!.output_hash}`
      : `receipt ${check.index + 1}: signature ✗  ${
        check.peer_id ?? "(no signer)"
      }  ${check.reason}`
  );
  if (!comparison.same_job) {
    lines.push("these receipts are not of the same job (module or input)");
  }
  if (comparison.differences.length > 0) {
    lines.push("differences:");
    lines.push(
      ...describeDifferences(comparison.differences).map((l) => `  ${l}`),
    );
  }
  lines.push(
    comparison.agree
      ? `all ${receipts.length} receipts verify and agree`
      : comparison.groups.length > 1
      ? `the receipts disagree: ${
        comparison.groups.map((g) => g.peer_ids.length).join(" vs ")
      }`
      : "not every receipt verifies",
  );
  console.log(lines.join("\n"));
  return comparison.agree ? 0 : 1;
}
