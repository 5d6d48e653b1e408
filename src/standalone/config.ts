/**
 * The wg-quick style configuration of standalone mode (`fz-gateway standalone --config FILE`).
 *
 * Pure: parses text into a {@link StandaloneConfig}. Every error names the file, the line and the
 * problem, and says what is expected. Keys are case-insensitive as in wg-quick.
 *
 * Supported: `[Interface]` PrivateKey, ListenPort, Address, MTU, Name (our addition: the TUN name);
 * `[Peer]` PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive. wg-quick's script hooks
 * (PreUp, PostUp, ...), DNS, Table, SaveConfig and FwMark are refused with an explanation, since
 * standalone mode neither runs commands nor touches the resolver.
 *
 * @module
 */

import { formatIp, parseIp } from "../wire/ip_addr.ts";

/** An IP network: canonical address text, its bytes and the prefix length. */
export interface IpNetwork {
  readonly family: 4 | 6;
  readonly ip: string;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** `Endpoint`: a literal address or a host name resolved at start-up by the I/O layer. */
export interface EndpointSpec {
  readonly host: string;
  readonly port: number;
}

export interface PeerConfig {
  /** Line of the `[Peer]` header, for messages. */
  readonly line: number;
  readonly publicKey: Uint8Array;
  readonly presharedKey: Uint8Array | null;
  readonly allowedIps: readonly IpNetwork[];
  readonly endpoint: EndpointSpec | null;
  /** Seconds; 0 = off. */
  readonly persistentKeepalive: number;
}

export interface StandaloneConfig {
  readonly privateKey: Uint8Array;
  readonly listenPort: number | null;
  readonly addresses: readonly IpNetwork[];
  readonly mtu: number;
  readonly name: string;
  readonly peers: readonly PeerConfig[];
}

/** Default TUN name in standalone mode (the portal mode uses `tun-firezone`). */
export const DEFAULT_STANDALONE_TUN_NAME = "tun-fz0";
/** Default MTU (spec §3.7: the Firezone tunnel MTU). */
export const DEFAULT_STANDALONE_MTU = 1280;
/**
 * Largest MTU the data path carries: its packet slots are 2048 bytes, of which 20 are headroom for
 * the WireGuard and ChannelData headers and 31 tailroom for the tag and padding.
 */
export const MAX_STANDALONE_MTU = 1997;

/** A configuration problem at one line. */
export class ConfigError extends Error {
  readonly line: number;

  constructor(file: string, line: number, problem: string) {
    super(line > 0 ? `${file}:${line}: ${problem}` : `${file}: ${problem}`);
    this.name = "ConfigError";
    this.line = line;
  }
}

const UNSUPPORTED: Record<string, string> = {
  dns: "DNS is not supported in standalone mode: configure the resolver of the host instead",
  table: "Table is not supported: standalone mode always routes AllowedIPs into its TUN device",
  preup: "PreUp is not supported: standalone mode does not run commands",
  postup: "PostUp is not supported: standalone mode does not run commands",
  predown: "PreDown is not supported: standalone mode does not run commands",
  postdown: "PostDown is not supported: standalone mode does not run commands",
  saveconfig: "SaveConfig is not supported: the configuration file is never written",
  fwmark: "FwMark is not supported: the UDP socket always carries the gateway's mark 0xfd002021",
};

/**
 * Parses a wg-quick style file.
 * @param text the file content
 * @param file the file name used in error messages
 * @throws {ConfigError} naming the line and the problem
 */
export function parseStandaloneConfig(text: string, file = "config"): StandaloneConfig {
  let section: "none" | "interface" | "peer" = "none";
  let seenInterface = false;
  let privateKey: Uint8Array | null = null;
  let listenPort: number | null = null;
  const addresses: IpNetwork[] = [];
  let mtu = DEFAULT_STANDALONE_MTU;
  let name = DEFAULT_STANDALONE_TUN_NAME;
  const peers: PeerConfig[] = [];
  let peer: MutablePeer | null = null;

  const fail = (line: number, problem: string): never => {
    throw new ConfigError(file, line, problem);
  };
  const finishPeer = () => {
    if (!peer) return;
    if (!peer.publicKey) fail(peer.line, "[Peer] has no PublicKey");
    for (const other of peers) {
      if (sameBytes(other.publicKey, peer.publicKey!)) {
        fail(peer.line, `[Peer] repeats the PublicKey of the [Peer] at line ${other.line}`);
      }
    }
    peers.push({
      line: peer.line,
      publicKey: peer.publicKey!,
      presharedKey: peer.presharedKey,
      allowedIps: peer.allowedIps,
      endpoint: peer.endpoint,
      persistentKeepalive: peer.persistentKeepalive,
    });
    peer = null;
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const header = /^\[([^\]]*)\]$/.exec(line);
    if (header) {
      const title = header[1]!.trim().toLowerCase();
      if (title === "interface") {
        if (seenInterface) fail(lineNo, "a second [Interface] section: there must be exactly one");
        finishPeer();
        section = "interface";
        seenInterface = true;
      } else if (title === "peer") {
        finishPeer();
        section = "peer";
        peer = {
          line: lineNo,
          publicKey: null,
          presharedKey: null,
          allowedIps: [],
          endpoint: null,
          persistentKeepalive: 0,
        };
      } else {
        fail(lineNo, `unknown section [${header[1]}]: expected [Interface] or [Peer]`);
      }
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) fail(lineNo, `expected "Key = Value" or a [Section] header, got "${line}"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const k = key.toLowerCase();
    if (section === "none") fail(lineNo, `${key} appears before any [Interface] or [Peer] section`);
    if (k in UNSUPPORTED) fail(lineNo, UNSUPPORTED[k]!);
    if (section === "interface") {
      switch (k) {
        case "privatekey":
          privateKey = parseKey(value, key, lineNo, fail);
          break;
        case "listenport":
          listenPort = parsePort(value, key, lineNo, fail);
          break;
        case "address":
          for (const part of splitList(value)) addresses.push(parseNetwork(part, key, lineNo, fail, true));
          break;
        case "mtu": {
          const n = parseInteger(value, key, lineNo, fail);
          if (n < 1280 || n > MAX_STANDALONE_MTU) {
            fail(lineNo, `MTU ${n} is out of range: expected 1280 to ${MAX_STANDALONE_MTU}`);
          }
          mtu = n;
          break;
        }
        case "name":
          if (!/^[A-Za-z0-9_.-]{1,15}$/.test(value)) {
            fail(lineNo, `Name "${value}" is not a valid interface name: 1 to 15 of A-Z a-z 0-9 _ . -`);
          }
          name = value;
          break;
        default:
          fail(
            lineNo,
            `unknown key ${key} in [Interface]: expected PrivateKey, ListenPort, Address, MTU or Name`,
          );
      }
    } else {
      const p = peer!;
      switch (k) {
        case "publickey":
          p.publicKey = parseKey(value, key, lineNo, fail);
          break;
        case "presharedkey":
          p.presharedKey = parseKey(value, key, lineNo, fail);
          break;
        case "allowedips":
          for (const part of splitList(value)) {
            p.allowedIps.push(parseNetwork(part, key, lineNo, fail, false));
          }
          break;
        case "endpoint":
          p.endpoint = parseEndpoint(value, lineNo, fail);
          break;
        case "persistentkeepalive":
          if (value.toLowerCase() === "off") p.persistentKeepalive = 0;
          else {
            const n = parseInteger(value, key, lineNo, fail);
            if (n > 65535) {
              fail(lineNo, `PersistentKeepalive ${n} is out of range: expected "off" or 0 to 65535`);
            }
            p.persistentKeepalive = n;
          }
          break;
        default:
          fail(
            lineNo,
            `unknown key ${key} in [Peer]: expected PublicKey, PresharedKey, AllowedIPs, Endpoint or PersistentKeepalive`,
          );
      }
    }
  }
  finishPeer();
  if (!seenInterface) fail(0, "no [Interface] section");
  if (!privateKey) fail(0, "[Interface] has no PrivateKey (generate one with `wg genkey`)");
  return { privateKey: privateKey!, listenPort, addresses, mtu, name, peers };
}

interface MutablePeer {
  line: number;
  publicKey: Uint8Array | null;
  presharedKey: Uint8Array | null;
  allowedIps: IpNetwork[];
  endpoint: EndpointSpec | null;
  persistentKeepalive: number;
}

type Fail = (line: number, problem: string) => never;

function splitList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function parseKey(value: string, key: string, line: number, fail: Fail): Uint8Array {
  let bytes: Uint8Array | null = null;
  if (/^[A-Za-z0-9+/]{43}=$/.test(value)) {
    try {
      bytes = Uint8Array.fromBase64(value);
    } catch {
      bytes = null;
    }
  }
  if (!bytes || bytes.length !== 32) {
    fail(
      line,
      `${key} is not a valid WireGuard key: expected 44 base64 characters ending in "=" (see \`wg genkey\`)`,
    );
  }
  return bytes!;
}

function parseInteger(value: string, key: string, line: number, fail: Fail): number {
  if (!/^[0-9]{1,10}$/.test(value)) fail(line, `${key} "${value}" is not a whole number`);
  return Number(value);
}

function parsePort(value: string, key: string, line: number, fail: Fail): number {
  const n = parseInteger(value, key, line, fail);
  if (n > 65535) fail(line, `${key} ${n} is out of range: expected 0 to 65535`);
  return n;
}

function parseNetwork(text: string, key: string, line: number, fail: Fail, isAddress: boolean): IpNetwork {
  const slash = text.indexOf("/");
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(ipText);
  if (!bytes) {
    fail(line, `${key}: "${text}" is not an IP address or network (e.g. 10.0.0.1/24 or fd00::1/64)`);
  }
  const max = bytes!.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) {
      fail(line, `${key}: "${text}" has an invalid prefix length: expected 0 to ${max}`);
    }
    prefix = Number(p);
  }
  // AllowedIPs are networks: host bits are cleared as wg(8) does. Addresses keep theirs.
  const net = isAddress ? bytes! : maskBytes(bytes!, prefix);
  return { family: bytes!.length === 4 ? 4 : 6, ip: formatIp(net), bytes: net, prefix };
}

function parseEndpoint(value: string, line: number, fail: Fail): EndpointSpec {
  let host: string;
  let portText: string;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0 || value[close + 1] !== ":") fail(line, `Endpoint "${value}": expected [IPv6]:port`);
    host = value.slice(1, close);
    portText = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(":");
    if (colon < 0) fail(line, `Endpoint "${value}" has no port: expected host:port`);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(":")) fail(line, `Endpoint "${value}": write IPv6 addresses as [address]:port`);
  }
  if (host === "") fail(line, `Endpoint "${value}" has no host`);
  const port = parsePort(portText, "Endpoint port", line, fail);
  if (port === 0) fail(line, `Endpoint "${value}": port 0 is not a valid destination`);
  const literal = parseIp(host);
  return { host: literal ? formatIp(literal) : host, port };
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bytes[i]! & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
