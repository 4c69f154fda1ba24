/**
 * The client SDK (sdk/) from Deno against real nodes: two started like
 * `phase serve` (processes, through ./phase) and one lying node (a test
 * helper that signs a wrong output). HTTP, libp2p and local transports,
 * verification, typed refusals, strangers that tamper, stall or vanish, and
 * replication: `majority` outvotes and names the liar, `all` refuses with a
 * disagreement report that `phase receipt compare` confirms offline.
 */
import assert from "node:assert/strict";
import {
  DisagreementError,
  httpTransport,
  InvalidReceiptError,
  PhaseClient,
  RefusedError,
  type ReplicatedResult,
  TimeoutError,
  TransportError,
  verifyBootManifest,
  verifyReceipt,
} from "../sdk/mod.ts";
import { p2pTransport } from "../sdk/p2p.ts";
import { localTransport } from "../sdk/local.ts";
import {
  cli,
  example,
  examplePath,
  loopbackServeArgs,
  ROOT,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
} from "./helpers.ts";
import { startLyingNode } from "./lying_node.ts";

interface ServeInfo {
  url: string;
  peer_id: string;
  multiaddrs: string[];
}

/** A node started the way users start one: `./phase serve`. */
function serveNode(dataDir: string, bootstrap: string[] = []) {
  return spawnAnnounced<ServeInfo>(`${ROOT}/phase`, {
    args: [
      ...loopbackServeArgs(dataDir),
      ...bootstrap.flatMap((b) => ["--bootstrap", b]),
    ],
  });
}

/** A stranger's HTTP server on loopback; `handler` answers everything. */
function stranger(handler: (request: Request) => Promise<Response> | Response) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

const hello = example("hello");

Deno.test({
  name: "sdk: http, p2p and local transports, refusals, tampering, replicas",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const [dir, cleanup] = await tempDir();
    const a = await serveNode(`${dir}/a`);
    const b = await serveNode(`${dir}/b`, [a.info.multiaddrs[0]]);
    const closers: (() => Promise<unknown>)[] = [
      cleanup,
      () => stopAnnounced(a),
      () => stopAnnounced(b),
    ];
    try {
      await t.step(
        "http: a verified run, signed by the node asked",
        async () => {
          const client = new PhaseClient({
            transport: httpTransport({ urls: a.info.url }),
          });
          const result = await client.run({ module: hello, args: ["Hello"] });
          assert.equal(result.stdout, "olleH\n");
          assert.equal(result.exitCode, 0);
          assert.equal(result.node.peerId, a.info.peer_id);
          assert.equal(result.receipt.node_peer_id, a.info.peer_id);
          const alone = await verifyReceipt(result.receipt, {
            peerId: a.info.peer_id,
            nonce: result.receipt.nonce,
          });
          assert.equal(alone.valid, true);
          const tampered = { ...result.receipt, stdout: "Hello\n" };
          assert.equal((await verifyReceipt(tampered)).valid, false);
          // Standard input and environment reach the guest.
          const piped = await client.run({ module: hello, stdin: "abc" });
          assert.equal(piped.stdout, "cba");
        },
      );

      await t.step("http: refusals are typed", async () => {
        const client = new PhaseClient({
          transport: httpTransport({ urls: a.info.url }),
        });
        await assert.rejects(
          client.run({ module: hello, memoryMb: 60_000 }),
          (e: Error) =>
            e instanceof RefusedError && e.reason === "InsufficientResources",
        );
        await assert.rejects(
          client.run({ module: new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]) }),
          (e: Error) =>
            e instanceof RefusedError && e.reason === "InvalidRequest",
        );
      });

      await t.step(
        "http: strangers that tamper, impersonate, stall or vanish",
        async () => {
          // A proxy that changes the output of the real node's signed receipt.
          const tamper = stranger(async (request) => {
            const upstream = await fetch(
              `${a.info.url}${new URL(request.url).pathname}`,
              {
                method: request.method,
                headers: request.headers,
                body: request.method === "POST"
                  ? await request.arrayBuffer()
                  : undefined,
              },
            );
            if (!request.url.endsWith("/jobs")) return upstream;
            const receipt = await upstream.json();
            return Response.json({ ...receipt, stdout: "trust me\n" });
          });
          // A proxy that claims to be node B but hands over node A's receipt.
          const impersonate = stranger(async (request) => {
            if (!request.url.endsWith("/jobs")) {
              return Response.json({ peer_id: b.info.peer_id });
            }
            return await fetch(`${a.info.url}/jobs`, {
              method: "POST",
              headers: request.headers,
              body: await request.arrayBuffer(),
            });
          });
          // A node that never answers a job (until the test ends).
          const stalled: (() => void)[] = [];
          const stall = stranger((request) =>
            request.url.endsWith("/jobs")
              ? new Promise<Response>((resolve) =>
                stalled.push(() => resolve(new Response()))
              )
              : Response.json({ peer_id: a.info.peer_id })
          );
          // A node that hangs up on every connection.
          const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          (async () => {
            for await (const connection of listener) connection.close();
          })().catch(() => {});
          const gone = { url: `http://127.0.0.1:${listener.addr.port}` };
          try {
            const run = (url: string, timeoutMs?: number) =>
              new PhaseClient({ transport: httpTransport({ urls: url }) }).run(
                { module: hello, args: ["x"] },
                { timeoutMs },
              );
            await assert.rejects(
              run(tamper.url),
              (e: Error) =>
                e instanceof InvalidReceiptError && /signature/.test(e.message),
            );
            await assert.rejects(
              run(impersonate.url),
              (e: Error) =>
                e instanceof InvalidReceiptError && /peerId/.test(e.message),
            );
            // Pinned peer ids: no GET / is asked; the pin alone decides.
            const gets: string[] = [];
            const counting: typeof fetch = (input, init) => {
              if (!init?.method) gets.push(String(input));
              return fetch(input, init);
            };
            const pinned = await new PhaseClient({
              transport: httpTransport({
                urls: [a.info.url],
                peerIds: { [`${a.info.url}/`]: a.info.peer_id },
                fetch: counting,
              }),
            }).run({ module: hello, args: ["pin"] });
            assert.equal(pinned.node.peerId, a.info.peer_id);
            await assert.rejects(
              new PhaseClient({
                transport: httpTransport({
                  urls: a.info.url,
                  peerIds: { [a.info.url]: b.info.peer_id },
                  fetch: counting,
                }),
              }).run({ module: hello }),
              (e: Error) =>
                e instanceof InvalidReceiptError && /peerId/.test(e.message),
            );
            assert.deepEqual(gets, []);
            await assert.rejects(run(stall.url, 500), TimeoutError);
            await assert.rejects(run(gone.url), TransportError);
          } finally {
            listener.close();
            for (const release of stalled) release();
            for (const s of [tamper, impersonate, stall]) {
              await s.server.shutdown();
            }
          }
        },
      );

      await t.step(
        "http: boot manifests verify against a pinned key",
        async () => {
          const manifest = await (await fetch(`${a.info.url}/manifest.json`))
            .json();
          const good = await verifyBootManifest(manifest, {
            trustedKeys: [a.info.peer_id],
          });
          assert.equal(good.valid, true, good.valid ? "" : good.reason);
          const other = await verifyBootManifest(manifest, {
            trustedKeys: [b.info.peer_id],
          });
          assert.equal(other.valid, false);
        },
      );

      await t.step("p2p: a verified run through a bootstrap peer", async () => {
        const client = new PhaseClient({
          transport: p2pTransport({ bootstrap: [a.info.multiaddrs[0]] }),
        });
        try {
          const result = await client.run({ module: hello, args: ["p2p"] });
          assert.equal(
            result.stdout,
            "p2p\n".split("").reverse().join("").trim() + "\n",
          );
          assert.ok(
            [a.info.peer_id, b.info.peer_id].includes(result.node.peerId),
          );
          assert.equal(result.receipt.node_peer_id, result.node.peerId);
          await assert.rejects(
            client.run({ module: hello, memoryMb: 60_000 }),
            TransportError, // every capable node refused: none is left
          );
        } finally {
          await client.close();
        }
      });

      await t.step(
        "local: the phase command line, stdin and nonce bound",
        async () => {
          const client = new PhaseClient({
            transport: localTransport({
              command: [`${ROOT}/phase`],
              flags: ["--ephemeral"],
            }),
          });
          const result = await client.run({ module: hello, stdin: "local" });
          assert.equal(result.stdout, "lacol");
          assert.equal(result.node.address, "local");
        },
      );

      const liar = await startLyingNode({
        dataDir: `${dir}/liar`,
        bootstrap: [a.info.multiaddrs[0]],
      });
      closers.push(() => liar.node.close());

      await t.step("replicas over http: majority names the liar", async () => {
        const client = new PhaseClient({
          transport: httpTransport({
            urls: [a.info.url, b.info.url, liar.url],
          }),
        });
        const result = await client.run(
          { module: hello, args: ["replica"] },
          { replicas: 3, agree: "majority" },
        );
        assert.equal(result.stdout, "acilper\n");
        assert.deepEqual(result.replication.dissenters, [liar.peerId]);
        assert.deepEqual(
          new Set(result.replication.agreeing),
          new Set([a.info.peer_id, b.info.peer_id]),
        );
        assert.ok(result.replication.report);
      });

      await t.step(
        "replicas over p2p: majority, then all with a report compare confirms",
        async () => {
          const client = new PhaseClient({
            transport: p2pTransport({ bootstrap: [a.info.multiaddrs[0]] }),
          });
          try {
            let majority: ReplicatedResult | undefined;
            // The liar's capability record may take a moment to spread.
            for (let i = 0; i < 20 && !majority; i++) {
              majority = await client.run(
                { module: hello, args: ["abc"] },
                { replicas: 3, agree: "majority" },
              ).catch((e) => {
                if (
                  !(e instanceof TransportError) ||
                  !/distinct nodes/.test(e.message)
                ) throw e;
                return new Promise<undefined>((r) =>
                  setTimeout(() => r(undefined), 250)
                );
              });
            }
            assert.ok(majority, "three nodes were found");
            assert.equal(majority.stdout, "cba\n");
            assert.deepEqual(majority.replication.dissenters, [liar.peerId]);
            const error = await client.run(
              { module: hello, args: ["abc"] },
              { replicas: 3, agree: "all" },
            ).then(() => null, (e) => e);
            assert.ok(error instanceof DisagreementError, String(error));
            const report = error.report;
            assert.equal(report.receipts.length, 3);
            assert.deepEqual(report.dissenters, [liar.peerId]);
            assert.ok(report.differences.some((d) => d.field === "stdout"));
            // Offline: the report's receipts, each in its own file.
            const files = [];
            for (const [i, receipt] of report.receipts.entries()) {
              files.push(`${dir}/r${i}.json`);
              await Deno.writeTextFile(files.at(-1)!, JSON.stringify(receipt));
            }
            const compare = await cli(["receipt", "compare", ...files]);
            assert.equal(compare.code, 1, compare.stderr);
            assert.match(compare.stdout, /stdout: /);
            assert.ok(compare.stdout.includes(liar.peerId));
            assert.equal(
              compare.stdout.match(/signature ✓/g)?.length,
              3,
              compare.stdout,
            );
            // The report file itself is accepted too.
            await Deno.writeTextFile(
              `${dir}/report.json`,
              JSON.stringify(report),
            );
            const whole = await cli([
              "receipt",
              "compare",
              `${dir}/report.json`,
            ]);
            assert.equal(whole.code, 1);
            assert.equal(whole.stdout, compare.stdout);
            // Honest receipts alone agree.
            const honest = files.filter((_, i) =>
              report.receipts[i].node_peer_id !== liar.peerId
            );
            const agree = await cli(["receipt", "compare", ...honest]);
            assert.equal(agree.code, 0, agree.stdout + agree.stderr);
            // The same from the command line: phase submit --replicas.
            const submit = (extra: string[]) =>
              cli([
                "submit",
                examplePath("hello"),
                "--auto",
                "--bootstrap",
                a.info.multiaddrs[0],
                "--replicas",
                "3",
                ...extra,
                "--",
                "abc",
              ]);
            const outvoted = await submit(["--agree", "majority"]);
            assert.equal(outvoted.code, 0, outvoted.stderr);
            assert.equal(outvoted.stdout, "cba\n");
            assert.match(outvoted.stderr, /2 of 3 replicas agree/);
            assert.ok(outvoted.stderr.includes(`outvoted: ${liar.peerId}`));
            const strict = await submit(["--report", `${dir}/cli-report.json`]);
            assert.equal(strict.code, 1, strict.stderr);
            assert.match(strict.stderr, /do not all agree/);
            const confirmed = await cli([
              "receipt",
              "compare",
              `${dir}/cli-report.json`,
            ]);
            assert.equal(confirmed.code, 1);
            assert.ok(confirmed.stdout.includes(liar.peerId));
            const misuse = await submit(["--peer", liar.peerId]);
            assert.equal(misuse.code, 2, misuse.stderr);
          } finally {
            await client.close();
          }
        },
      );
    } finally {
      for (const close of closers.reverse()) await close().catch(() => {});
    }
  },
});
