/**
 * `/phase/capable-peers/1.0.0`: the peers a node believes run jobs
 * (docs/protocol.md section 5.3). A fresh client asks the peers it is already
 * connected to (its bootstrap peers) before it walks the DHT: one stream on
 * an open connection instead of a walk that opens a new connection per hop.
 *
 * The answer is a hint, never trusted: it is bounded (one frame of at most
 * {@link MAX_REFERRAL_BYTES}, at most {@link MAX_REFERRALS} peers), checked
 * against schemas/capable_peers.schema.json, and every peer it names is
 * re-validated by the client over `/phase/capability/1.0.0` before it is
 * listed or used, exactly like a peer the DHT names.
 * @module
 */
import type { Stream } from "@libp2p/interface";
import {
  type CapablePeers,
  type SchemaError,
  validateDocument,
} from "../schemas/mod.ts";
import { FrameStream } from "./framing.ts";
import { CAPABILITY_PROTOCOL, readAnswer } from "./capability_protocol.ts";
import type { PhaseNode } from "./node.ts";

/** The protocol id. */
export const REFERRAL_PROTOCOL = "/phase/capable-peers/1.0.0";
/** Most peers one answer names (the schema's bound). */
export const MAX_REFERRALS = 64;
/** Most addresses given per peer (the schema's bound). */
const MAX_ADDRESSES = 4;
/** Largest answer a client reads; a longer one ends the stream unread. */
export const MAX_REFERRAL_BYTES = 32 * 1024;
/** A node works out its answer again at most this often. */
const REFRESH_AFTER_MS = 1000;

/**
 * Answers `/phase/capable-peers/1.0.0` for a node (DHT servers do; clients
 * do not): the peers its peer store knows to speak `/phase/capability/1.0.0`
 * (identify told it when they connected), those connected now first, itself
 * first of all when it runs jobs.
 */
export async function answerReferrals(node: PhaseNode): Promise<void> {
  let cached: { at: number; answer: Promise<CapablePeers> } | null = null;
  const current = () => {
    if (!cached || performance.now() - cached.at > REFRESH_AFTER_MS) {
      cached = { at: performance.now(), answer: knownCapable(node) };
    }
    return cached.answer;
  };
  await node.libp2p.handle(REFERRAL_PROTOCOL, async (stream: Stream) => {
    try {
      await new FrameStream(stream, 0).send(
        await current(),
        AbortSignal.timeout(5000),
      );
      await stream.close();
    } catch {
      stream.abort(new Error("referral answer failed"));
    }
  }, { maxInboundStreams: 32 });
}

/** What a node knows of capable peers, bounded as the schema says. */
async function knownCapable(node: PhaseNode): Promise<CapablePeers> {
  const connected = new Set(
    node.libp2p.getConnections().map((c) => c.remotePeer.toString()),
  );
  const own = node.libp2p.getProtocols().includes(CAPABILITY_PROTOCOL)
    ? [{ peer_id: node.peerId, addresses: node.multiaddrs() }]
    : [];
  const others = (await node.libp2p.peerStore.all())
    .filter((p) =>
      p.protocols.includes(CAPABILITY_PROTOCOL) &&
      !p.id.equals(node.libp2p.peerId)
    )
    .map((p) => ({
      peer_id: p.id.toString(),
      addresses: p.addresses.map((a) => a.multiaddr.toString()),
      live: connected.has(p.id.toString()),
    }))
    .sort((a, b) => Number(b.live) - Number(a.live));
  return {
    peers: [...own, ...others]
      .map(({ peer_id, addresses }) => ({
        peer_id,
        addresses: addresses.filter((a) => a.length <= 256).slice(
          0,
          MAX_ADDRESSES,
        ),
      }))
      .filter((p) => p.addresses.length > 0)
      .slice(0, MAX_REFERRALS),
  };
}

/**
 * Asks `peerId` (normally a peer the node is connected to) which peers run
 * jobs. Throws with a one-line reason when it cannot be asked in time or its
 * answer breaks the schema; the peers returned are unverified hints.
 */
export async function askReferrals(
  node: PhaseNode,
  peerId: string,
  signal: AbortSignal,
): Promise<CapablePeers["peers"]> {
  const message = await readAnswer(
    node,
    peerId,
    REFERRAL_PROTOCOL,
    MAX_REFERRAL_BYTES,
    signal,
  );
  try {
    return validateDocument<CapablePeers>("capable peers", message).peers;
  } catch (error) {
    throw new Error(
      `bad capable-peers answer: ${(error as SchemaError).message}`,
    );
  }
}
