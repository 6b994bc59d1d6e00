import { BlockList, isIP } from "node:net";

/**
 * The private-address guard (LEADPUSH_ALLOW_PRIVATE_NETWORKS=false): which hosts and addresses a
 * push or an auth handshake may not reach. Literal addresses are checked before a request is
 * made; names are checked on what they resolve to, in the connection's own DNS lookup
 * (`http-client.ts`), so a name cannot resolve differently between check and connect.
 */

/** IPv4 ranges that are not the public internet (RFC 6890 special-purpose and private). */
const V4 = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], // "this network"; 0.0.0.0 reaches the local host
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata services
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  V4.addSubnet(net, bits, "ipv4");
}

/** IPv6 ranges that are not the public internet (addresses embedding IPv4 are checked below). */
const V6 = new BlockList();
for (const [net, bits] of [
  ["::", 128], // unspecified
  ["::1", 128],
  ["100::", 64], // discard
  ["64:ff9b:1::", 48], // local-use NAT64: translates to whatever the local network chooses
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated, still routed by some stacks)
  ["ff00::", 8], // multicast
] as const) {
  V6.addSubnet(net, bits, "ipv6");
}

/** The 16 bytes of an IPv6 address (any spelling `isIP` accepts, a dotted IPv4 tail included). */
function ipv6Bytes(ip: string): Uint8Array | undefined {
  let text = ip.split("%")[0] ?? "";
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split(".").map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parts = (s: string) => (s === "" ? [] : s.split(":"));
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  if (groups.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  });
  return bytes;
}

const zero = (b: Uint8Array, from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
const v4At = (b: Uint8Array, at: number, xor = 0) =>
  [0, 1, 2, 3].map((i) => ((b[at + i] ?? 0) ^ xor).toString()).join(".");

/**
 * The IPv4 addresses an IPv6 address carries and that a stack or a translator may deliver to:
 * IPv4-compatible (`::a.b.c.d`), IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated
 * (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`), 6to4 (`2002:AABB:CCDD::`) and Teredo
 * (`2001:0:SERVER:…:~CLIENT`).
 */
export function embeddedIpv4(bytes: Uint8Array): string[] {
  const b = bytes;
  const prefix = (...xs: number[]) => xs.every((x, i) => b[i] === x);
  if (zero(b, 0, 12)) return [v4At(b, 12)];
  if (zero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return [v4At(b, 12)];
  if (zero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && zero(b, 10, 12)) return [v4At(b, 12)];
  if (prefix(0x00, 0x64, 0xff, 0x9b) && zero(b, 4, 12)) return [v4At(b, 12)];
  if (prefix(0x20, 0x02)) return [v4At(b, 2)];
  if (prefix(0x20, 0x01, 0x00, 0x00)) return [v4At(b, 4), v4At(b, 12, 0xff)];
  return [];
}

/** Whether an IP address (v4 or v6, any form) is loopback, private, link-local or otherwise not public. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return V4.check(ip, "ipv4");
  if (family !== 6) return false;
  if (V6.check(ip, "ipv6")) return true;
  const bytes = ipv6Bytes(ip);
  if (!bytes) return true; // isIP accepted what we cannot read: refuse rather than guess
  return embeddedIpv4(bytes).some((v4) => V4.check(v4, "ipv4"));
}

/**
 * Why a URL's host may not be reached without resolving it, or undefined: a private literal
 * address, or a name that always means this machine (`localhost`, `*.localhost`, RFC 6761).
 * `new URL` has already turned decimal, octal and hex IPv4 spellings into dotted form.
 */
export function blockedHost(hostname: string): string | undefined {
  const host = hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || isPrivateAddress(host)) {
    return `${host} is a private address (LEADPUSH_ALLOW_PRIVATE_NETWORKS=false)`;
  }
  return undefined;
}
