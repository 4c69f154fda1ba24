/**
 * `phase receipt verify FILE`: checks a receipt's schema and signature (and,
 * on request, who signed it and for which module, input and nonce).
 * @module
 */
import { parseArgs } from "node:util";
import { verifyReceipt } from "../schemas/mod.ts";
import { UsageError } from "./errors.ts";
import { receiptLines, renderLines } from "../runner/mod.ts";
import { readInput } from "./run.ts";

/** `phase receipt verify FILE [--peer ID] [--module-hash H] [--nonce N] [--json]` */
export async function receiptCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "verify") {
    throw new UsageError("usage: phase receipt verify FILE [--peer PEER_ID]");
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      peer: { type: "string" },
      "module-hash": { type: "string" },
      "input-hash": { type: "string" },
      nonce: { type: "string" },
      json: { type: "boolean" },
      quiet: { type: "boolean", short: "q" },
    },
  });
  const [path] = positionals;
  if (!path) throw new UsageError("usage: phase receipt verify FILE");
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
