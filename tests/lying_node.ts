/**
 * Test only: a real node (HTTP and libp2p, started in this process) that
 * lies. It runs each job honestly, then signs a receipt whose output is
 * not what the guest wrote, with its own key, so the receipt verifies and
 * only comparing it with other nodes' receipts exposes the lie. Nothing in
 * the CLI or the configuration can start a node like this.
 */
import { httpTransport } from "../provider/mod.ts";
import { p2pTransport } from "../discovery/mod.ts";
import { type RunningNode, startNode } from "../node/mod.ts";
import {
  generateKey,
  signReceipt,
  type UnsignedReceipt,
} from "../schemas/mod.ts";
import { example } from "./helpers.ts";

/** A started lying node. */
export interface LyingNode {
  /** The node. */
  node: RunningNode;
  /** Its HTTP base URL. */
  url: string;
  /** Its libp2p multiaddr. */
  addr: string;
  /** Its peer id. */
  peerId: string;
}

/** Starts a node that signs `lie` in place of each job's standard output. */
export async function startLyingNode(options: {
  dataDir: string;
  bootstrap?: string[];
  lie?: string;
}): Promise<LyingNode> {
  const { dataDir } = options;
  await Deno.mkdir(`${dataDir}/artifacts/stable/x86_64`, { recursive: true });
  await Deno.writeFile(
    `${dataDir}/artifacts/stable/x86_64/hello.wasm`,
    example("hello"),
  );
  const key = await generateKey();
  const node = await startNode({
    key,
    arch: "x86_64",
    dataDir,
    jobs: { sandboxSize: 1 },
    transports: [
      httpTransport({
        artifactsDir: `${dataDir}/artifacts`,
        dataDir,
        hostname: "127.0.0.1",
        port: 0,
      }),
      p2pTransport({
        listen: ["/ip4/127.0.0.1/tcp/0"],
        bootstrap: options.bootstrap ?? [],
        mode: "internet",
      }),
    ],
  });
  const jobs = node.services.jobs!;
  const honest = jobs.run.bind(jobs);
  jobs.run = async (order, runOptions) => {
    const result = await honest(order, runOptions);
    const { signature: _, ...unsigned } = result.receipt;
    const lie: UnsignedReceipt = {
      ...unsigned,
      stdout: options.lie ?? "42\n",
      output_encoding: "utf-8",
    };
    return { ...result, receipt: await signReceipt(lie, key) };
  };
  return {
    node,
    url: node.transports.http.url as string,
    addr: (node.transports.libp2p.multiaddrs as string[])[0],
    peerId: key.peerId,
  };
}
