/**
 * `phase`: the Phase command line. Thin on purpose; see cli/mod.ts.
 * @module
 */
import { main } from "./cli/mod.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
