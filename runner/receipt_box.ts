/**
 * Human output: the receipt box (as the original Phase printed it) on a
 * terminal, plain `Name: value` lines otherwise.
 * @module
 */
import type { Receipt } from "../schemas/mod.ts";

/** The fields of the receipt box, in order. */
export function receiptLines(
  receipt: Receipt,
  verdict: { valid: boolean; reason?: string },
): [string, string][] {
  const output = receipt.output_encoding === "utf-8"
    ? receipt.stdout.trimEnd()
    : `(${receipt.stdout.length} base64 chars)`;
  const lines: [string, string][] = [
    ["Job ID", receipt.job_id],
    ["Module Hash", receipt.module_hash],
    ["Node", receipt.node_peer_id],
    ["Status", receipt.execution.error ?? receipt.execution.status],
    ["Exit Code", String(receipt.execution.exit_code ?? "-")],
    ["Wall Time", `${receipt.execution.wall_time_ms.toFixed(2)} ms`],
    ...(receipt.execution.fuel_consumed === null ? [] : [[
      "Fuel",
      `${receipt.execution.fuel_consumed} of ${receipt.limits.fuel}`,
    ] as [string, string]]),
    ["Output", output],
    [
      "Receipt",
      verdict.valid
        ? "✓ Verified"
        : `✗ ${verdict.reason ?? "Invalid signature"}`,
    ],
  ];
  return lines;
}

/** Renders the lines as a box (`tty`) or as plain lines. */
export function renderLines(lines: [string, string][], tty: boolean): string {
  const width = Math.max(...lines.map(([k]) => k.length)) + 1;
  const rows = lines.flatMap(([key, value]) => {
    const [first, ...rest] = value.split("\n");
    return [
      `${(key + ":").padEnd(width)} ${first}`,
      ...rest.map((line) => `${" ".repeat(width)} ${line}`),
    ];
  });
  if (!tty) return rows.join("\n") + "\n";
  const inner = Math.max(...rows.map((r) => [...r].length)) + 2;
  const top = `╭${"─".repeat(inner)}╮`;
  const bottom = `╰${"─".repeat(inner)}╯`;
  const body = rows.map((r) =>
    `│ ${r}${" ".repeat(inner - 2 - [...r].length)} │`
  );
  return [top, ...body, bottom].join("\n") + "\n";
}
