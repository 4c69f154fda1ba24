/**
 * `phase`: the Phase command line. Thin on purpose; see cli/mod.ts.
 * @module
 */

if (import.meta.main) {
  let main: (argv: string[]) => Promise<number>;
  try {
    await (await import("./cli/prestart.ts")).prestartSandboxFor(Deno.args);
    // Loaded dynamically so that a failure while loading (a permission a
    // dependency needs at import time, say) is one line, not a stack trace.
    ({ main } = await import("./cli/mod.ts"));
  } catch (error) {
    console.error(
      `phase: cannot start: ${
        String((error as Error)?.message ?? error).split("\n")[0]
      }`,
    );
    Deno.exit(70);
  }
  Deno.exit(await main(Deno.args));
}
