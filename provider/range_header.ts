/**
 * The Range header (RFC 9110 §14.1-14.2) as a pure function of the header
 * and the representation's size. Policy: overlapping or adjacent ranges are
 * coalesced (parts keep the order of their first request); more than
 * {@link MAX_RANGES} ranges after that are refused with 416, so a short
 * header can never ask for many copies of a large file.
 * @module
 */

/** Most ranges answered as one multipart response. */
export const MAX_RANGES = 16;

/** Bytes `start` to `end`, both included. */
export interface ByteRange {
  /** First byte. */
  start: number;
  /** Last byte. */
  end: number;
}

/** What to do with a Range header. */
export type RangeDecision =
  /** Malformed, another unit, or an empty representation: send it all (200). */
  | { kind: "ignore" }
  /** No range overlaps the representation (416). */
  | { kind: "unsatisfiable" }
  /** More ranges than {@link MAX_RANGES} after coalescing (416). */
  | { kind: "too_many"; count: number }
  /** The ranges to send (206), coalesced, in request order. */
  | { kind: "ranges"; ranges: ByteRange[] };

const SPEC = /^(\d*)-(\d*)$/;

/** Decides a Range header against a representation of `size` bytes. */
export function decideRange(header: string, size: number): RangeDecision {
  const eq = header.indexOf("=");
  if (eq < 0 || header.slice(0, eq).toLowerCase() !== "bytes" || size === 0) {
    return { kind: "ignore" };
  }
  const wanted: (ByteRange & { order: number })[] = [];
  let specs = 0;
  for (const item of header.slice(eq + 1).split(",")) {
    const spec = item.trim();
    if (spec === "") continue; // empty list elements are allowed
    const match = SPEC.exec(spec);
    if (!match || (match[1] === "" && match[2] === "")) {
      return { kind: "ignore" };
    }
    specs++;
    if (match[1] === "") {
      const length = Number(match[2]);
      if (length > 0) {
        wanted.push({
          start: Math.max(0, size - length),
          end: size - 1,
          order: specs,
        });
      }
      continue;
    }
    const first = Number(match[1]);
    const last = match[2] === "" ? Infinity : Number(match[2]);
    if (last < first) return { kind: "ignore" };
    if (first < size) {
      wanted.push({
        start: first,
        end: Math.min(last, size - 1),
        order: specs,
      });
    }
  }
  if (specs === 0) return { kind: "ignore" };
  if (wanted.length === 0) return { kind: "unsatisfiable" };
  wanted.sort((a, b) => a.start - b.start);
  const merged: (ByteRange & { order: number })[] = [];
  for (const range of wanted) {
    const last = merged[merged.length - 1];
    if (last && range.start <= last.end + 1) {
      last.end = Math.max(last.end, range.end);
      last.order = Math.min(last.order, range.order);
    } else {
      merged.push({ ...range });
    }
  }
  if (merged.length > MAX_RANGES) {
    return { kind: "too_many", count: merged.length };
  }
  merged.sort((a, b) => a.order - b.order);
  return {
    kind: "ranges",
    ranges: merged.map(({ start, end }) => ({ start, end })),
  };
}
