import assert from "node:assert/strict";
import { PeerAddrView } from "../../../src/p2p/peer_addr.ts";
import { NodeOut, P2pDrop, P2pResult } from "../../../src/p2p/transmit.ts";
import { SeededRng } from "../../../src/rng.ts";
import { type SocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { writeChannelDataHeader } from "../../../src/wire/channel_data.ts";
import { shortTermKey, StunAttr, StunClass, StunMessageBuilder, StunMethod } from "../../../src/wire/stun.ts";
import { DropReason } from "../../../src/wireguard/result.ts";
import { CLIENT_CREDS, GATEWAY_CREDS } from "../../sim/p2p_world.ts";
import { NODE_PORT } from "../../sim/sim_node.ts";
import { CID, gatewayWithRawClient, GW_IP, RawWireGuard, RELAY_IP, upsertRaw } from "./_raw_client.ts";

const GW_HOST = socketAddr(GW_IP, NODE_PORT);
const RELAY = socketAddr(RELAY_IP, 3478);
const STRANGER_3478 = socketAddr("198.51.100.1", 3478);
const CLIENT = socketAddr("198.51.100.30", 4000);

Deno.test("P2pNode.decapsulate() drops datagrams longer than 1316 bytes before anything else", () => {
  const { decap, initiation } = bed();
  const init = initiation();
  const big = new Uint8Array(1317);
  big.set(init);

  assert.deepEqual(decap(big, CLIENT), [P2pResult.Drop, P2pDrop.Oversized]);
  assert.deepEqual(decap(new Uint8Array(1316).fill(0xee), CLIENT), [P2pResult.Drop, P2pDrop.NotWireGuard]);
});

Deno.test("P2pNode.decapsulate() step 1: STUN from a relay is the allocation's; from another port-3478 source it is dropped", () => {
  const { decap } = bed();
  const stray = new StunMessageBuilder(StunMethod.Binding, StunClass.Success, new Uint8Array(12).fill(5))
    .addXorAddress(StunAttr.XorMappedAddress, GW_HOST)
    .build();

  assert.deepEqual(decap(stray, RELAY), [P2pResult.Done, P2pDrop.None], "consumed by the relay's allocation");
  assert.deepEqual(decap(stray, STRANGER_3478), [P2pResult.Drop, P2pDrop.UnknownRelay]);
  // Not from port 3478: step 2, offered to the ICE agents, which do not want it.
  assert.deepEqual(decap(stray, CLIENT), [P2pResult.Drop, P2pDrop.UnhandledStun]);
});

Deno.test("P2pNode.decapsulate() step 1: ChannelData needs a known relay and a bound channel", () => {
  const { decap } = bed();
  const cd = channelData(0x4abc, new Uint8Array(32).fill(1));

  assert.deepEqual(decap(cd, RELAY), [P2pResult.Drop, P2pDrop.UnknownChannel]);
  assert.deepEqual(decap(cd, STRANGER_3478), [P2pResult.Drop, P2pDrop.UnknownRelay]);
  // Not a valid ChannelData frame (length field off by one): processed on as is, and it is not WireGuard.
  const bad = cd.slice();
  bad[3]! += 1;
  assert.deepEqual(decap(bad, RELAY), [P2pResult.Drop, P2pDrop.NotWireGuard]);
  // 0x40..0x4F from a peer is never ChannelData.
  assert.deepEqual(decap(cd, CLIENT), [P2pResult.Drop, P2pDrop.NotWireGuard]);
});

Deno.test("P2pNode.decapsulate() continues with WireGuard when relay-port bytes do not decode as STUN", () => {
  const { decap, initiation, info } = bed();
  // A handshake initiation starts with 0x01 (the STUN range) but has no magic cookie.
  assert.deepEqual(decap(initiation(), STRANGER_3478), [P2pResult.Done, P2pDrop.None]);
  assert.deepEqual(decap(initiation(1), RELAY), [P2pResult.Done, P2pDrop.None]);
  assert.equal(info().buffered, 2, "both answered (responses wait for nomination)");
});

Deno.test("P2pNode.decapsulate() step 2: ICE checks go to the agent whose credentials they carry", () => {
  const { decap } = bed();
  const good = check(`${GATEWAY_CREDS.ufrag}:${CLIENT_CREDS.ufrag}`, GATEWAY_CREDS.pwd);
  const wrongUfrag = check(`zz99:${CLIENT_CREDS.ufrag}`, GATEWAY_CREDS.pwd);
  const wrongPassword = check(`${GATEWAY_CREDS.ufrag}:${CLIENT_CREDS.ufrag}`, "not-the-gateway-password");

  assert.deepEqual(decap(good, CLIENT), [P2pResult.Done, P2pDrop.None]);
  assert.deepEqual(decap(wrongUfrag, CLIENT), [P2pResult.Drop, P2pDrop.UnhandledStun]);
  assert.deepEqual(decap(wrongPassword, CLIENT), [P2pResult.Drop, P2pDrop.UnhandledStun]);
});

Deno.test("P2pNode.decapsulate() step 3: WireGuard routed by receiver index, initiations by static key", () => {
  const { node, decap } = bed();
  const data = new Uint8Array(48);
  data[0] = 4;
  data.set([0x78, 0x56, 0x34, 0x12], 4); // receiver index 0x12345678: not ours

  assert.deepEqual(decap(data, CLIENT), [P2pResult.Drop, P2pDrop.UnknownConnection]);
  const stranger = new RawWireGuard(12345).initiation(node.publicKey, new Uint8Array(32), 0).bytes;
  assert.deepEqual(decap(stranger, CLIENT), [P2pResult.Drop, P2pDrop.UnknownConnection]);
  const notForUs =
    new RawWireGuard(555).initiation(new RawWireGuard(1).publicKey, new Uint8Array(32), 0).bytes;
  const out = new NodeOut();
  assert.deepEqual(decap(notForUs, CLIENT, out), [P2pResult.Drop, P2pDrop.WireGuard]);
  assert.equal(out.wgDropReason, DropReason.BadMac1);
  assert.deepEqual(decap(Uint8Array.of(9, 9, 9), CLIENT), [P2pResult.Drop, P2pDrop.NotWireGuard]);
});

// --- helpers ---------------------------------------------------------------------------------------

function bed() {
  const { world, gw, wg, psk } = gatewayWithRawClient();
  upsertRaw(world, gw, wg, psk);
  const node = gw.node;
  const from = new PeerAddrView();
  const local = PeerAddrView.fromSocketAddr(GW_HOST);
  let clock = world.now;
  const decap = (bytes: Uint8Array, src: SocketAddr, out = new NodeOut()): [number, number] => {
    const buf = new Uint8Array(2048);
    buf.set(bytes, 100);
    from.setSocketAddr(src);
    const r = node.decapsulate(buf, 100, bytes.length, from, local, ++clock, out);
    return [r, out.dropReason];
  };
  // Initiations from the connection's peer (its key and PSK); later ones carry later timestamps.
  const initiation = (extraMs = 0) => wg.initiation(node.publicKey, psk, 1_000 + extraMs).bytes;
  return { node, decap, initiation, info: () => node.connectionInfo(CID)! };
}

function channelData(channel: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  writeChannelDataHeader(out, 0, channel, payload.length);
  out.set(payload, 4);
  return out;
}

function check(username: string, password: string): Uint8Array {
  const tx = new Uint8Array(12);
  new SeededRng(3).fill(tx);
  return new StunMessageBuilder(StunMethod.Binding, StunClass.Request, tx)
    .addString(StunAttr.Username, username)
    .addU32(StunAttr.Priority, 1862270975)
    .addU64(StunAttr.IceControlling, 42n)
    .addMessageIntegrity(shortTermKey(password))
    .addFingerprint()
    .build();
}
