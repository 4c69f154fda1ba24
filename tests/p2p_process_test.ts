import assert from "node:assert/strict";
import {
  type Announced,
  cli,
  examplePath,
  netns,
  ROOT,
  spawnAnnounced,
  stopAnnounced,
  tempDir,
  text,
} from "./helpers.ts";

type NodeProcess = Announced<
  { url: string; peer_id: string; multiaddrs: string[] }
>;

/** Starts `phase node` (optionally under a prefix command such as `ip netns exec`). */
function startNode(
  args: string[],
  prefix: string[] = [],
): Promise<NodeProcess> {
  const [program, ...rest] = [...prefix, Deno.execPath()];
  return spawnAnnounced(program, {
    args: [
      ...rest,
      "run",
      "-A",
      `${ROOT}/main.ts`,
      "node",
      "--port",
      "0",
      "--json",
      ...args,
    ],
  });
}

Deno.test("ten phase node processes: discover finds them, submit --auto runs hello remotely", async () => {
  const [dir, cleanup] = await tempDir();
  const nodes: NodeProcess[] = [];
  try {
    const common = (
      i: number,
    ) => [
      "--bind",
      "127.0.0.1",
      "--listen",
      "/ip4/127.0.0.1/tcp/0",
      "--data-dir",
      `${dir}/n${i}`,
    ];
    nodes.push(await startNode(common(0)));
    const seed = nodes[0].info.multiaddrs[0];
    nodes.push(
      ...await Promise.all(
        Array.from(
          { length: 9 },
          (_, i) => startNode([...common(i + 1), "--bootstrap", seed]),
        ),
      ),
    );
    const peers = new Set(nodes.map((n) => n.info.peer_id));
    assert.equal(peers.size, 10);
    let listed: { peer_id: string }[] = [];
    for (let attempt = 0; attempt < 10 && listed.length < 10; attempt++) {
      const out = await cli([
        "discover",
        "--bootstrap",
        nodes[7].info.multiaddrs[0],
        "--json",
      ]);
      listed = out.code === 0 ? JSON.parse(out.stdout) : [];
    }
    assert.equal(listed.length, 10, "discover did not list all ten nodes");
    assert.ok(listed.every((n) => peers.has(n.peer_id)));
    const receiptPath = `${dir}/remote.json`;
    const submit = await cli([
      "submit",
      examplePath("hello"),
      "--auto",
      "--bootstrap",
      nodes[4].info.multiaddrs[0],
      "--receipt",
      receiptPath,
      "--",
      "Hello, World!",
    ]);
    assert.equal(submit.code, 0, submit.stderr);
    assert.equal(submit.stdout, "!dlroW ,olleH\n");
    const signer = submit.stderr.match(
      /receipt ✓ verified, signed by (12D3KooW\w+)/,
    )?.[1];
    assert.ok(signer && peers.has(signer), submit.stderr);
    const verify = await cli([
      "receipt",
      "verify",
      receiptPath,
      "--peer",
      signer!,
    ]);
    assert.equal(verify.code, 0, verify.stderr);
    const direct = await cli([
      "submit",
      examplePath("hello"),
      "--peer",
      nodes[2].info.peer_id,
      "--bootstrap",
      nodes[2].info.multiaddrs[0],
      "--json",
      "--",
      "abc",
    ]);
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(JSON.parse(direct.stdout).node_peer_id, nodes[2].info.peer_id);
  } finally {
    const stops = await Promise.all(nodes.map(stopAnnounced));
    await cleanup();
    for (const stop of stops) {
      assert.equal(stop.status.code, 0);
      assert.ok(stop.ms < 5000, `a node took ${stop.ms} ms to exit`);
    }
  }
});

Deno.test("mDNS: a local-mode client finds a node inside a test network namespace", async () => {
  const [dir, cleanup] = await tempDir();
  const [ns, removeNs] = await netns();
  let node: NodeProcess | undefined;
  try {
    node = await startNode(
      [
        "--mode",
        "local",
        "--bind",
        "10.231.0.1",
        "--listen",
        "/ip4/10.231.0.1/tcp/0",
        "--data-dir",
        `${dir}/n`,
      ],
      ["ip", "netns", "exec", ns],
    );
    const out = await new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}/main.ts`,
        "discover",
        "--mode",
        "local",
        "--listen",
        "/ip4/10.231.0.2/tcp/0",
        "--json",
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, text(out.stderr));
    const found = JSON.parse(text(out.stdout));
    assert.equal(found.length, 1);
    assert.equal(found[0].peer_id, node.info.peer_id);
    assert.equal(found[0].http_url, node.info.url);
  } finally {
    if (node) await stopAnnounced(node);
    await removeNs();
    await cleanup();
  }
});
