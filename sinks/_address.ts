// SSRF guard for the webhook sink: recognises an IP literal in every spelling
// a URL parser or socket API would turn into an address, and says why an
// address must not be connected to.

import { domainToASCII } from "node:url";

/**
 * If `host` is an IP literal, its canonical text (IPv4 dotted quad, IPv6
 * lowercase compressed without brackets); otherwise undefined.
 *
 * IPv4 follows the WHATWG URL host parser, so every spelling that
 * `new URL("http://" + host + "/")` turns into an IPv4 address is recognised:
 * one to four decimal, octal (`0177`) or hex (`0x7f`) parts where the last
 * part fills the remaining bytes (`127.1`, `2130706433`), a trailing dot,
 * percent-encoding, full-width digits and dots, and tabs or newlines. IPv6 is
 * accepted with or without brackets, with `::`, an IPv4 tail and a zone id
 * (`fe80::1%eth0`, dropped from the canonical text). The canonical text is what
 * `URL.hostname` shows for the same address, brackets stripped.
 *
 * @param host A host as written in a URL or passed to a socket API; not a URL.
 * @returns The canonical address, or undefined when `host` is a hostname or
 * malformed.
 */
export function parseIpLiteral(host: string): string | undefined {
  const bytes = parseIpBytes(host);
  if (bytes === undefined) return undefined;
  return bytes.length === 4 ? bytes.join(".") : formatIpv6(bytes);
}

/**
 * Why connecting to `address` must be refused, e.g.
 * `"loopback (127.0.0.0/8)"`; undefined when it is a public unicast address.
 *
 * Covers the IANA IPv4 and IPv6 special-purpose registries, multicast, and
 * IPv6 outside global unicast (2000::/3). An IPv6 address that embeds an IPv4
 * one (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4) is judged by
 * the embedded address: `"IPv4-mapped IPv6 of loopback (127.0.0.0/8)"`.
 *
 * @param address An IP literal in any form {@linkcode parseIpLiteral} accepts.
 * @returns A short reason naming the range, or undefined when allowed.
 * @throws {TypeError} If `address` is not an IP literal.
 */
export function blockedReason(address: string): string | undefined {
  const bytes = parseIpBytes(address);
  if (bytes === undefined) {
    throw new TypeError(
      `Cannot classify address: ${
        JSON.stringify(address)
      } is not an IP literal`,
    );
  }
  return reasonFor(bytes);
}

interface Range {
  readonly bytes: Uint8Array;
  readonly prefix: number;
  readonly reason: string;
  /** Where an embedded IPv4 address starts, for ranges judged by it. */
  readonly ipv4At?: number;
}

function range(cidr: string, name: string, ipv4At?: number): Range {
  const [address = "", prefix = ""] = cidr.split("/");
  const bytes = parseIpBytes(address)!;
  if (ipv4At === undefined) {
    return { bytes, prefix: Number(prefix), reason: `${name} (${cidr})` };
  }
  return { bytes, prefix: Number(prefix), reason: name, ipv4At };
}

// Most specific first, so the first match names the narrowest range.
const bySpecificity = (a: Range, b: Range) => b.prefix - a.prefix;

const IPV4_RANGES: readonly Range[] = [
  range("0.0.0.0/32", "unspecified"),
  range("0.0.0.0/8", "this network"),
  range("10.0.0.0/8", "private-use"),
  range("100.64.0.0/10", "shared address space, CGNAT"),
  range("127.0.0.0/8", "loopback"),
  range("169.254.169.254/32", "cloud metadata service, link-local"),
  range("169.254.0.0/16", "link-local"),
  range("172.16.0.0/12", "private-use"),
  range("192.0.0.0/24", "IETF protocol assignments"),
  range("192.0.2.0/24", "documentation, TEST-NET-1"),
  range("192.88.99.0/24", "6to4 relay anycast"),
  range("192.168.0.0/16", "private-use"),
  range("198.18.0.0/15", "benchmarking"),
  range("198.51.100.0/24", "documentation, TEST-NET-2"),
  range("203.0.113.0/24", "documentation, TEST-NET-3"),
  range("224.0.0.0/4", "multicast"),
  range("240.0.0.0/4", "reserved"),
  range("255.255.255.255/32", "limited broadcast"),
].sort(bySpecificity);

const IPV6_RANGES: readonly Range[] = [
  range("::/128", "unspecified"),
  range("::1/128", "loopback"),
  range("::ffff:0:0/96", "IPv4-mapped IPv6", 12),
  range("::/96", "IPv4-compatible IPv6", 12),
  range("64:ff9b::/96", "NAT64 IPv6", 12),
  range("64:ff9b:1::/48", "local-use NAT64"),
  range("100::/64", "discard-only"),
  range("2001::/32", "Teredo"),
  range("2001:2::/48", "benchmarking"),
  range("2001:10::/28", "ORCHID"),
  range("2001:20::/28", "ORCHIDv2"),
  range("2001::/23", "IETF protocol assignments"),
  range("2001:db8::/32", "documentation"),
  range("2002::/16", "6to4 IPv6", 2),
  range("3fff::/20", "documentation"),
  range("5f00::/16", "SRv6 segment identifiers"),
  range("fc00::/7", "unique local"),
  range("fe80::/10", "link-local"),
  range("fec0::/10", "site-local"),
  range("ff00::/8", "multicast"),
  // IANA assigns unicast only from 2000::/3; the rest is reserved by IETF.
  range("::/3", "not global unicast"),
  range("4000::/2", "not global unicast"),
  range("8000::/1", "not global unicast"),
].sort(bySpecificity);

function reasonFor(bytes: Uint8Array): string | undefined {
  const ranges = bytes.length === 4 ? IPV4_RANGES : IPV6_RANGES;
  const match = ranges.find((range) => inRange(bytes, range));
  if (match?.ipv4At === undefined) return match?.reason;
  const inner = reasonFor(bytes.subarray(match.ipv4At, match.ipv4At + 4));
  return inner === undefined ? undefined : `${match.reason} of ${inner}`;
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  const whole = range.prefix >> 3;
  for (let i = 0; i < whole; i++) {
    if (bytes[i] !== range.bytes[i]) return false;
  }
  const rest = range.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((bytes[whole]! ^ range.bytes[whole]!) & mask) === 0;
}

function parseIpBytes(host: string): Uint8Array | undefined {
  // The URL parser drops tabs and newlines anywhere in its input.
  const text = host.replace(/[\t\n\r]/g, "");
  if (text.startsWith("[")) {
    return text.endsWith("]") ? parseIpv6(text.slice(1, -1)) : undefined;
  }
  if (text.includes(":")) return parseIpv6(text);
  return parseIpv4(domainToASCII(percentDecode(text)));
}

function percentDecode(text: string): string {
  return text.replace(
    /(?:%[\da-f]{2})+/gi,
    (run) =>
      new TextDecoder().decode(
        Uint8Array.from(run.slice(1).split("%"), (hex) => parseInt(hex, 16)),
      ),
  );
}

/** The WHATWG URL IPv4 parser: https://url.spec.whatwg.org/#concept-ipv4-parser */
function parseIpv4(host: string): Uint8Array | undefined {
  const parts = host.split(".");
  if (parts.length > 1 && parts.at(-1) === "") parts.pop();
  if (parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const number = parseIpv4Number(part);
    if (number === undefined) return undefined;
    numbers.push(number);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255)) return undefined;
  if (last >= 256 ** (4 - numbers.length)) return undefined;
  const value = numbers.reduce((sum, n, i) => sum + n * 256 ** (3 - i), last);
  return Uint8Array.of(value >>> 24, value >>> 16, value >>> 8, value);
}

function parseIpv4Number(part: string): number | undefined {
  if (part === "") return undefined;
  let radix = 10;
  let digits = part;
  if (/^0x/i.test(part)) [radix, digits] = [16, part.slice(2)];
  else if (part.length > 1 && part.startsWith("0")) {
    [radix, digits] = [8, part.slice(1)];
  }
  if (digits === "") return 0;
  const valid = radix === 16
    ? /^[\da-f]+$/i
    : radix === 8
    ? /^[0-7]+$/
    : /^\d+$/;
  return valid.test(digits) ? parseInt(digits, radix) : undefined;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf("%");
  if (zone >= 0 && !/^[\w.-]+$/.test(text.slice(zone + 1))) return undefined;
  const halves = (zone >= 0 ? text.slice(0, zone) : text).split("::");
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  const head = ipv6Groups(halves[0]!, !compressed);
  const tail = compressed ? ipv6Groups(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  // "::" stands for at least one zero group.
  if (compressed ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<number>(missing).fill(0), ...tail];
  return Uint8Array.from(groups.flatMap((group) => [group >> 8, group & 0xff]));
}

/** The 16-bit groups of `text`, whose last item may be a dotted quad. */
function ipv6Groups(text: string, mayEndInIpv4: boolean): number[] | undefined {
  if (text === "") return [];
  const items = text.split(":");
  const groups: number[] = [];
  for (const [i, item] of items.entries()) {
    if (/^[\da-f]{1,4}$/i.test(item)) {
      groups.push(parseInt(item, 16));
      continue;
    }
    const quad = mayEndInIpv4 && i === items.length - 1
      ? parseDottedQuad(item)
      : undefined;
    if (quad === undefined) return undefined;
    groups.push((quad[0]! << 8) | quad[1]!, (quad[2]! << 8) | quad[3]!);
  }
  return groups;
}

/** Strict dotted-decimal, as an IPv6 tail allows: no leading zeros. */
function parseDottedQuad(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  if (!parts.every((part) => /^(?:0|[1-9]\d{0,2})$/.test(part))) {
    return undefined;
  }
  const numbers = parts.map(Number);
  return numbers.every((n) => n <= 255) ? numbers : undefined;
}

/** WHATWG serialisation: lowercase, first longest run of 2+ zero groups as "::". */
function formatIpv6(bytes: Uint8Array): string {
  const groups = Array.from(
    { length: 8 },
    (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!,
  );
  let [start, length] = [-1, 1];
  for (let i = 0; i < 8; i++) {
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > length) [start, length] = [i, end - i];
    i = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (start < 0) return hex.join(":");
  return `${hex.slice(0, start).join(":")}::${
    hex.slice(start + length).join(":")
  }`;
}
