/**
 * `phase receipt verify FILE`: checks a receipt's schema and signature (and,
 * on request, who signed it and for which module, input and nonce).
 * @module
 */
import { verifyReceipt } from "../schemas/mod.ts";
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
