/**
 * The ceiling for the provider benchmark: a bare Deno.serve that answers
 * every request with the given file and the same headers the provider sends,
 * doing no routing, lookup or bookkeeping at all.
 * Usage: deno run --allow-net --allow-read bench/bare_server.ts PORT FILE
 */
const [port, path] = Deno.args;
const body = await Deno.readFile(path);
const headers = {
  "accept-ranges": "bytes",
  etag: `"${"0".repeat(64)}"`,
  "last-modified": new Date().toUTCString(),
  "x-artifact-hash": `sha256:${"0".repeat(64)}`,
  "content-type": "application/octet-stream",
  "cache-control": "no-cache",
};
Deno.serve(
  { hostname: "127.0.0.1", port: Number(port), onListen: () => {} },
  () => new Response(body, { headers }),
);
