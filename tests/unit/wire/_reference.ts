/**
 * Test-only helpers: hex conversion, fixture loading, and a deliberately naive reference
 * implementation of the Internet checksum (modular arithmetic over arrays, no folding loops, no
 * code shared with src/wire) used to cross-check the codecs.
 *
 * @module
 */

export function hex(text: string): Uint8Array {
  const clean = text.trim();
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fixtureText(name: string): string {
  return Deno.readTextFileSync(new URL(`../../fixtures/wire/${name}`, import.meta.url));
}

export interface KernelPacket {
  hex: string;
  note: string;
  "quoted_hex"?: string;
}

export function kernelPacket(name: string): Uint8Array {
  return hex(kernelEntry(name).hex);
}

/** The packet quoted by a kernel ICMP error fixture, as recorded when it was injected. */
export function kernelQuote(name: string): Uint8Array {
  const q = kernelEntry(name)["quoted_hex"];
  if (!q) throw new Error(`Kernel packet "${name}" has no quote`);
  return hex(q);
}

function kernelEntry(name: string): KernelPacket {
  const all = JSON.parse(fixtureText("kernel_packets.json")) as Record<string, KernelPacket>;
  const p = all[name];
  if (!p) throw new Error(`No kernel packet "${name}"`);
  return p;
}

/** One's complement sum of 16-bit big-endian words, as the integer in 1..0xffff (0 only for all-zero input). */
export function refOnesSum(bytes: number[]): number {
  let total = 0;
  for (let i = 0; i < bytes.length; i += 2) total += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
  return total === 0 ? 0 : ((total - 1) % 0xffff) + 1;
}

/** True when the data (checksum field included) sums to "negative zero", i.e. verifies. */
export function refVerifies(bytes: number[]): boolean {
  return refOnesSum(bytes) === 0xffff;
}

/**
 * Independent verification of a whole packet without extension headers/options handling beyond
 * IHL and a plain IPv6 next header chain of known extension headers: checks the IPv4 header
 * checksum and the TCP/UDP/ICMP checksum.
 */
export function refPacketVerifies(pkt: Uint8Array): boolean {
  const b = Array.from(pkt);
  const version = b[0]! >> 4;
  if (version === 4) {
    const ihl = (b[0]! & 15) * 4;
    const total = b[2]! * 256 + b[3]!;
    if (!refVerifies(b.slice(0, ihl))) return false;
    const proto = b[9]!;
    const l4 = b.slice(ihl, total);
    if (proto === 1) return refVerifies(l4);
    if (proto !== 6 && proto !== 17) return true;
    if (proto === 17 && l4[6] === 0 && l4[7] === 0) return true;
    const len = proto === 17 ? l4[4]! * 256 + l4[5]! : l4.length;
    const pseudo = [...b.slice(12, 20), 0, proto, len >> 8, len & 255];
    return refVerifies([...pseudo, ...l4.slice(0, len)]);
  }
  if (version === 6) {
    const total = 40 + b[4]! * 256 + b[5]!;
    let nh = b[6]!;
    let p = 40;
    while (nh === 0 || nh === 43 || nh === 60 || nh === 44) {
      const next = b[p]!;
      p += nh === 44 ? 8 : (b[p + 1]! + 1) * 8;
      nh = next;
    }
    if (nh !== 6 && nh !== 17 && nh !== 58) return true;
    const l4 = b.slice(p, total);
    const len = nh === 17 ? l4[4]! * 256 + l4[5]! : l4.length;
    const pseudo = [...b.slice(8, 40), 0, 0, len >> 8, len & 255, 0, 0, 0, nh];
    return refVerifies([...pseudo, ...l4.slice(0, len)]);
  }
  return false;
}
