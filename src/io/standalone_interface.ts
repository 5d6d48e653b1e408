/**
 * Puts a standalone configuration on the TUN device like wg-quick: the `Address` networks, the MTU,
 * link up, and a route per peer `AllowedIPs` network into the device (main table). A default route
 * (`/0`) is not installed: it would send the tunnel's own UDP datagrams into the tunnel. Such a
 * network still counts for cryptokey routing.
 *
 * @module
 */

import { EEXIST } from "../../ffi/errno.ts";
import { Errno } from "../../ffi/errno.ts";
import { logger } from "../log.ts";
import type { StandaloneConfig } from "../standalone/config.ts";
import type { TunDevice } from "./tun_device.ts";

const log = logger("fz_gateway::standalone");
const MAIN_TABLE = 254;

export function configureStandaloneInterface(tun: TunDevice, cfg: StandaloneConfig): void {
  const nl = tun.netlink;
  nl.flushAddresses(tun.ifIndex);
  nl.setLink(tun.ifIndex, { mtu: cfg.mtu });
  for (const a of cfg.addresses) nl.addAddress(tun.ifIndex, a.family, a.bytes, a.prefix);
  nl.setLink(tun.ifIndex, { up: true });
  for (const peer of cfg.peers) {
    for (const net of peer.allowedIps) {
      if (net.prefix === 0) {
        log.warn("Not routing a default route into the tunnel (it would carry the tunnel itself)", {
          allowed_ips: `${net.ip}/0`,
          hint: "use specific networks, or add policy routing on the host",
        });
        continue;
      }
      try {
        nl.addRoute({
          family: net.family,
          dst: net.bytes,
          prefixLen: net.prefix,
          table: MAIN_TABLE,
          oif: tun.ifIndex,
        });
      } catch (error) {
        if (!Errno.is(error, EEXIST)) throw error;
      }
    }
  }
}
