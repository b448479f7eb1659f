/**
 * The address range a remote IP belongs to, for limits that must not be
 * dodged by moving to the next address: an IPv4 address's /24, an IPv6
 * address's /64 (what one customer of a host or ISP usually holds). An
 * IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is its IPv4 address.
 * Platform-free (no `node:net`): the node runs in browsers too.
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `a.b.c.0/24` or `xxxx:xxxx:xxxx:xxxx::/64`; undefined for something that is not an IP. */
export function addressRange(ip: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const v4 = IPV4.exec(mapped ? mapped[1]! : ip);
  if (v4) return v4.slice(1).some((part) => Number(part) > 255) ? undefined : `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  const groups = ipv6Groups(ip);
  return groups ? `${groups.slice(0, 4).join(":")}::/64` : undefined;
}

/**
 * A coarser range, for memory an attacker could flush from many ranges: an
 * IPv4 address's /24 as above, an IPv6 address's /48 (a site: one customer's
 * usual allocation, 65,536 /64s, so a /64 each costs an attacker nothing).
 */
export function addressSite(ip: string): string | undefined {
  const range = addressRange(ip);
  if (range === undefined || !range.endsWith("::/64")) return range;
  return `${range.split(":").slice(0, 3).join(":")}::/48`;
}

/** The eight groups of an IPv6 address, without leading zeros; undefined when it is not one. */
function ipv6Groups(ip: string): string[] | undefined {
  const address = ip.split("%")[0]!.toLowerCase(); // a zone id (fe80::1%eth0) is not part of the address
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const part = (s: string) => (s === "" ? [] : s.split(":"));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => g.replace(/^0+(?=.)/, ""));
}
