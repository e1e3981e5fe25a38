import assert from "node:assert/strict";
import { blockedReason, parseIpLiteral } from "./_address.ts";

/** What the WHATWG URL parser makes of `host`: an IP, another hostname, or failure. */
function urlHost(host: string): { ip: string } | { name: string } | undefined {
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  if (hostname.startsWith("[")) return { ip: hostname.slice(1, -1) };
  if (/^\d+\.\d+\.\d+\.\d+$/.test(hostname)) return { ip: hostname };
  return { name: hostname };
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const IPV4_SPELLINGS: readonly [string, string][] = [
  ["127.0.0.1", "127.0.0.1"],
  ["127.1", "127.0.0.1"],
  ["127.0.1", "127.0.0.1"],
  ["0x7f.1", "127.0.0.1"],
  ["0X7F.0.0.1", "127.0.0.1"],
  ["0x7f.0x0.0x0.0x1", "127.0.0.1"],
  ["0177.0.0.1", "127.0.0.1"],
  ["0177.1", "127.0.0.1"],
  ["00000177.0.0.01", "127.0.0.1"],
  ["0x00007f.1", "127.0.0.1"],
  ["2130706433", "127.0.0.1"],
  ["0x7f000001", "127.0.0.1"],
  ["017700000001", "127.0.0.1"],
  ["127.0.0.1.", "127.0.0.1"],
  ["2130706433.", "127.0.0.1"],
  ["127.0.0.\t1", "127.0.0.1"],
  ["%31%32%37.0.0.1", "127.0.0.1"],
  ["127%2E0%2e0%2E1", "127.0.0.1"],
  ["\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11", "127.0.0.1"],
  ["0", "0.0.0.0"],
  ["0x", "0.0.0.0"],
  ["0x.0x.0x.0x", "0.0.0.0"],
  ["00", "0.0.0.0"],
  ["10.1", "10.0.0.1"],
  ["1.65535", "1.0.255.255"],
  ["1.2.65535", "1.2.255.255"],
  ["1.16777215", "1.255.255.255"],
  ["4294967295", "255.255.255.255"],
  ["0xffffffff", "255.255.255.255"],
  ["037777777777", "255.255.255.255"],
  ["169.254.43518", "169.254.169.254"],
  ["0xa9fea9fe", "169.254.169.254"],
  ["2852039166", "169.254.169.254"],
  ["0251.0376.0251.0376", "169.254.169.254"],
  ["0xA9.0xFE.0xA9.0xFE", "169.254.169.254"],
  ["8.8.8.8", "8.8.8.8"],
];

const IPV6_SPELLINGS: readonly [string, string][] = [
  ["::1", "::1"],
  ["[::1]", "::1"],
  ["0:0:0:0:0:0:0:1", "::1"],
  ["[0000:0000:0000:0000:0000:0000:0000:0001]", "::1"],
  ["::", "::"],
  ["[::]", "::"],
  ["::FFFF:127.0.0.1", "::ffff:7f00:1"],
  ["[::ffff:7F00:1]", "::ffff:7f00:1"],
  ["[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe"],
  ["::127.0.0.1", "::7f00:1"],
  ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
  ["2001:DB8::1", "2001:db8::1"],
  ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
  ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
  ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
  ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
  ["fe80::1%eth0", "fe80::1"],
  ["[fe80::1%25eth0]", "fe80::1"],
  ["FE80::1%2", "fe80::1"],
  ["2606:4700:4700::1111", "2606:4700:4700::1111"],
];

const NOT_LITERALS: readonly string[] = [
  "",
  ".",
  "..",
  "example.com",
  "localhost",
  "1.2.3.a",
  "0x7g",
  "0x7f.1.example",
  "1.2.3.4.5",
  "1.2.3.4.5.",
  "256.0.0.0",
  "1.2.3.256",
  "1.2.65536",
  "1.16777216",
  "4294967296",
  "0x100000000",
  "040000000000",
  "99999999999999999999999",
  "08.0.0.1",
  "09",
  "1..2",
  ".1.2.3",
  "1.2.3.4..",
  "-1",
  "+1",
  "1e3",
  " 127.0.0.1",
  "127.0.0.1:80",
  "127.0.0.1/8",
  "user@127.0.0.1",
  "127.0.0.1%eth0",
  "%3A%3A1",
  "[127.0.0.1]",
  "[::1",
  "::1]",
  ":::",
  ":1::",
  "1:::2",
  "1::2::3",
  "1:2:3:4:5:6:7",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7:8::",
  "::1:2:3:4:5:6:7:8",
  "1:2:3:4::5:6:7:8",
  "12345::",
  "::g",
  "::1.2.3",
  "::1.2.3.4.5",
  "::01.2.3.4",
  "::256.0.0.0",
  "1.2.3.4::",
  "::1.2.3.4:1",
  "1:2:3:4:5:6:7:1.2.3.4",
  "fe80::1%",
  "fe80::1%eth 0",
  "[fe80::1]%eth0",
];

Deno.test("parseIpLiteral() turns every WHATWG IPv4 number spelling into a dotted quad", () => {
  for (const [input, expected] of IPV4_SPELLINGS) {
    assert.equal(parseIpLiteral(input), expected, JSON.stringify(input));
  }
});

Deno.test("parseIpLiteral() turns bracketed, bare, upper-case, IPv4-tailed and zoned IPv6 into lowercase compressed text", () => {
  for (const [input, expected] of IPV6_SPELLINGS) {
    assert.equal(parseIpLiteral(input), expected, JSON.stringify(input));
  }
});

Deno.test("parseIpLiteral() returns undefined for hostnames and malformed literals", () => {
  for (const input of NOT_LITERALS) {
    assert.equal(parseIpLiteral(input), undefined, JSON.stringify(input));
  }
});

Deno.test("parseIpLiteral() gives the hostname the URL parser gives whenever that is an IP, and undefined when it is a name or fails", () => {
  const inputs = [
    ...IPV4_SPELLINGS.map(([input]) => input),
    ...IPV6_SPELLINGS.map(([input]) => input),
    ...NOT_LITERALS,
  ];
  // A port, path or credentials would make the URL parser read another host.
  const hostShaped = (input: string) =>
    !/[/?#@\\]/.test(input) && (input.startsWith("[") || !input.includes(":"));
  let compared = 0;
  for (const input of inputs.filter(hostShaped)) {
    const url = urlHost(input);
    const message = `${JSON.stringify(input)} → URL ${JSON.stringify(url)}`;
    if (url !== undefined && "ip" in url) {
      assert.equal(parseIpLiteral(input), url.ip, message);
      compared++;
    } else if (!/^\[.*%/.test(input)) {
      // A name or refused; zoned IPv6 is the one IP the URL parser refuses.
      assert.equal(parseIpLiteral(input), undefined, message);
    }
  }
  assert.ok(compared >= 40, `only ${compared} inputs compared`);
});

Deno.test("parseIpLiteral() agrees with the URL parser on random IPv4 values in every part count, radix and case", () => {
  const next = random(0x5eed);
  const pick = <T>(items: readonly T[]): T =>
    items[Math.floor(next() * items.length)]!;
  const spell = (n: number) =>
    pick([
      () => String(n),
      () => `0${n.toString(8)}`,
      () => `0x${n.toString(16)}`,
      () => `0X${n.toString(16).toUpperCase()}`,
      () => `0x00${n.toString(16)}`,
    ])();
  for (let i = 0; i < 1000; i++) {
    const value = Math.floor(next() * 2 ** 32);
    const bytes = [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff);
    const count = 1 + Math.floor(next() * 4);
    const leading = bytes.slice(0, count - 1);
    const last = value % 256 ** (5 - count);
    const host = [...leading, last].map(spell).join(".") +
      (next() < 0.2 ? "." : "");
    const expected = bytes.join(".");
    assert.equal(parseIpLiteral(host), expected, host);
    assert.deepEqual(urlHost(host), { ip: expected }, host);
  }
});

Deno.test("parseIpLiteral() agrees with the URL parser on random IPv6 addresses with zero runs, and its output is a fixed point", () => {
  const next = random(0xc0ffee);
  for (let i = 0; i < 1000; i++) {
    const groups = Array.from(
      { length: 8 },
      () => next() < 0.5 ? 0 : Math.floor(next() * 0x10000),
    );
    const full = groups.map((group) =>
      next() < 0.5
        ? group.toString(16).toUpperCase().padStart(4, "0")
        : group.toString(16)
    ).join(":");
    const canonical = parseIpLiteral(full);
    assert.deepEqual(urlHost(`[${full}]`), { ip: canonical }, full);
    assert.equal(parseIpLiteral(canonical!), canonical, full);
    assert.equal(parseIpLiteral(`[${canonical}]`), canonical, full);
  }
});

const IPV4_BOUNDARIES: readonly [string, string | undefined][] = [
  ["0.0.0.0", "unspecified (0.0.0.0/32)"],
  ["0.0.0.1", "this network (0.0.0.0/8)"],
  ["0.255.255.255", "this network (0.0.0.0/8)"],
  ["1.0.0.0", undefined],
  ["9.255.255.255", undefined],
  ["10.0.0.0", "private-use (10.0.0.0/8)"],
  ["10.255.255.255", "private-use (10.0.0.0/8)"],
  ["11.0.0.0", undefined],
  ["100.63.255.255", undefined],
  ["100.64.0.0", "shared address space, CGNAT (100.64.0.0/10)"],
  ["100.127.255.255", "shared address space, CGNAT (100.64.0.0/10)"],
  ["100.128.0.0", undefined],
  ["126.255.255.255", undefined],
  ["127.0.0.0", "loopback (127.0.0.0/8)"],
  ["127.0.0.1", "loopback (127.0.0.0/8)"],
  ["127.255.255.255", "loopback (127.0.0.0/8)"],
  ["128.0.0.0", undefined],
  ["169.253.255.255", undefined],
  ["169.254.0.0", "link-local (169.254.0.0/16)"],
  ["169.254.169.253", "link-local (169.254.0.0/16)"],
  [
    "169.254.169.254",
    "cloud metadata service, link-local (169.254.169.254/32)",
  ],
  ["169.254.169.255", "link-local (169.254.0.0/16)"],
  ["169.254.255.255", "link-local (169.254.0.0/16)"],
  ["169.255.0.0", undefined],
  ["172.15.255.255", undefined],
  ["172.16.0.0", "private-use (172.16.0.0/12)"],
  ["172.31.255.255", "private-use (172.16.0.0/12)"],
  ["172.32.0.0", undefined],
  ["191.255.255.255", undefined],
  ["192.0.0.0", "IETF protocol assignments (192.0.0.0/24)"],
  ["192.0.0.255", "IETF protocol assignments (192.0.0.0/24)"],
  ["192.0.1.0", undefined],
  ["192.0.1.255", undefined],
  ["192.0.2.0", "documentation, TEST-NET-1 (192.0.2.0/24)"],
  ["192.0.2.255", "documentation, TEST-NET-1 (192.0.2.0/24)"],
  ["192.0.3.0", undefined],
  ["192.88.98.255", undefined],
  ["192.88.99.0", "6to4 relay anycast (192.88.99.0/24)"],
  ["192.88.99.255", "6to4 relay anycast (192.88.99.0/24)"],
  ["192.88.100.0", undefined],
  ["192.167.255.255", undefined],
  ["192.168.0.0", "private-use (192.168.0.0/16)"],
  ["192.168.255.255", "private-use (192.168.0.0/16)"],
  ["192.169.0.0", undefined],
  ["198.17.255.255", undefined],
  ["198.18.0.0", "benchmarking (198.18.0.0/15)"],
  ["198.19.255.255", "benchmarking (198.18.0.0/15)"],
  ["198.20.0.0", undefined],
  ["198.51.99.255", undefined],
  ["198.51.100.0", "documentation, TEST-NET-2 (198.51.100.0/24)"],
  ["198.51.100.255", "documentation, TEST-NET-2 (198.51.100.0/24)"],
  ["198.51.101.0", undefined],
  ["203.0.112.255", undefined],
  ["203.0.113.0", "documentation, TEST-NET-3 (203.0.113.0/24)"],
  ["203.0.113.255", "documentation, TEST-NET-3 (203.0.113.0/24)"],
  ["203.0.114.0", undefined],
  ["223.255.255.255", undefined],
  ["224.0.0.0", "multicast (224.0.0.0/4)"],
  ["239.255.255.255", "multicast (224.0.0.0/4)"],
  ["240.0.0.0", "reserved (240.0.0.0/4)"],
  ["255.255.255.254", "reserved (240.0.0.0/4)"],
  ["255.255.255.255", "limited broadcast (255.255.255.255/32)"],
];

Deno.test("blockedReason() refuses both ends of every IPv4 special-purpose range and allows the public addresses just outside", () => {
  for (const [address, expected] of IPV4_BOUNDARIES) {
    assert.equal(blockedReason(address), expected, address);
  }
});

const NOT_GLOBAL = "not global unicast";
const IPV6_BOUNDARIES: readonly [string, string | undefined][] = [
  ["::", "unspecified (::/128)"],
  ["::1", "loopback (::1/128)"],
  ["::2", "IPv4-compatible IPv6 of this network (0.0.0.0/8)"],
  [
    "::ffff:ffff",
    "IPv4-compatible IPv6 of limited broadcast (255.255.255.255/32)",
  ],
  ["::1:0:0", `${NOT_GLOBAL} (::/3)`],
  ["::fffe:ffff:ffff", `${NOT_GLOBAL} (::/3)`],
  ["::ffff:0:0", "IPv4-mapped IPv6 of unspecified (0.0.0.0/32)"],
  [
    "::ffff:ffff:ffff",
    "IPv4-mapped IPv6 of limited broadcast (255.255.255.255/32)",
  ],
  ["::1:0:0:0", `${NOT_GLOBAL} (::/3)`],
  ["64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (::/3)`],
  ["64:ff9b::", "NAT64 IPv6 of unspecified (0.0.0.0/32)"],
  [
    "64:ff9b::ffff:ffff",
    "NAT64 IPv6 of limited broadcast (255.255.255.255/32)",
  ],
  ["64:ff9b::1:0:0", `${NOT_GLOBAL} (::/3)`],
  ["64:ff9b:0:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (::/3)`],
  ["64:ff9b:1::", "local-use NAT64 (64:ff9b:1::/48)"],
  [
    "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
    "local-use NAT64 (64:ff9b:1::/48)",
  ],
  ["64:ff9b:2::", `${NOT_GLOBAL} (::/3)`],
  ["ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (::/3)`],
  ["100::", "discard-only (100::/64)"],
  ["100::ffff:ffff:ffff:ffff", "discard-only (100::/64)"],
  ["100:0:0:1::", `${NOT_GLOBAL} (::/3)`],
  ["1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (::/3)`],
  ["2000::", undefined],
  ["2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", undefined],
  ["2001::", "Teredo (2001::/32)"],
  ["2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo (2001::/32)"],
  ["2001:1::", "IETF protocol assignments (2001::/23)"],
  [
    "2001:1:ffff:ffff:ffff:ffff:ffff:ffff",
    "IETF protocol assignments (2001::/23)",
  ],
  ["2001:2::", "benchmarking (2001:2::/48)"],
  ["2001:2:0:ffff:ffff:ffff:ffff:ffff", "benchmarking (2001:2::/48)"],
  ["2001:2:1::", "IETF protocol assignments (2001::/23)"],
  [
    "2001:f:ffff:ffff:ffff:ffff:ffff:ffff",
    "IETF protocol assignments (2001::/23)",
  ],
  ["2001:10::", "ORCHID (2001:10::/28)"],
  ["2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", "ORCHID (2001:10::/28)"],
  ["2001:20::", "ORCHIDv2 (2001:20::/28)"],
  ["2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", "ORCHIDv2 (2001:20::/28)"],
  ["2001:30::", "IETF protocol assignments (2001::/23)"],
  [
    "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
    "IETF protocol assignments (2001::/23)",
  ],
  ["2001:200::", undefined],
  ["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", undefined],
  ["2001:db8::", "documentation (2001:db8::/32)"],
  ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation (2001:db8::/32)"],
  ["2001:db9::", undefined],
  ["2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", undefined],
  ["2002::", "6to4 IPv6 of unspecified (0.0.0.0/32)"],
  [
    "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "6to4 IPv6 of limited broadcast (255.255.255.255/32)",
  ],
  ["2003::", undefined],
  ["3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", undefined],
  ["3fff::", "documentation (3fff::/20)"],
  ["3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation (3fff::/20)"],
  ["3fff:1000::", undefined],
  ["3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", undefined],
  ["4000::", `${NOT_GLOBAL} (4000::/2)`],
  ["5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (4000::/2)`],
  ["5f00::", "SRv6 segment identifiers (5f00::/16)"],
  [
    "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "SRv6 segment identifiers (5f00::/16)",
  ],
  ["5f01::", `${NOT_GLOBAL} (4000::/2)`],
  ["7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (4000::/2)`],
  ["8000::", `${NOT_GLOBAL} (8000::/1)`],
  ["fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (8000::/1)`],
  ["fc00::", "unique local (fc00::/7)"],
  ["fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local (fc00::/7)"],
  ["fe00::", `${NOT_GLOBAL} (8000::/1)`],
  ["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", `${NOT_GLOBAL} (8000::/1)`],
  ["fe80::", "link-local (fe80::/10)"],
  ["febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local (fe80::/10)"],
  ["fec0::", "site-local (fec0::/10)"],
  ["feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local (fec0::/10)"],
  ["ff00::", "multicast (ff00::/8)"],
  ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast (ff00::/8)"],
];

Deno.test("blockedReason() refuses both ends of every IPv6 special-purpose range and judges the addresses just outside by their own range", () => {
  for (const [address, expected] of IPV6_BOUNDARIES) {
    assert.equal(blockedReason(address), expected, address);
  }
});

Deno.test("blockedReason() judges IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 by the embedded IPv4 address", () => {
  const cases: [string, string | undefined][] = [
    ["::ffff:127.0.0.1", "IPv4-mapped IPv6 of loopback (127.0.0.0/8)"],
    ["[::ffff:7f00:1]", "IPv4-mapped IPv6 of loopback (127.0.0.0/8)"],
    [
      "::ffff:169.254.169.254",
      "IPv4-mapped IPv6 of cloud metadata service, link-local (169.254.169.254/32)",
    ],
    ["::ffff:10.0.0.1", "IPv4-mapped IPv6 of private-use (10.0.0.0/8)"],
    ["::ffff:8.8.8.8", undefined],
    ["::127.0.0.1", "IPv4-compatible IPv6 of loopback (127.0.0.0/8)"],
    ["::192.168.1.1", "IPv4-compatible IPv6 of private-use (192.168.0.0/16)"],
    ["::8.8.8.8", undefined],
    ["64:ff9b::127.0.0.1", "NAT64 IPv6 of loopback (127.0.0.0/8)"],
    [
      "64:ff9b::a9fe:a9fe",
      "NAT64 IPv6 of cloud metadata service, link-local (169.254.169.254/32)",
    ],
    ["64:ff9b::8.8.8.8", undefined],
    ["2002:7f00:1::", "6to4 IPv6 of loopback (127.0.0.0/8)"],
    ["2002:a00:1:1::1", "6to4 IPv6 of private-use (10.0.0.0/8)"],
    [
      "2002:c000:201::",
      "6to4 IPv6 of documentation, TEST-NET-1 (192.0.2.0/24)",
    ],
    ["2002:808:808::1", undefined],
  ];
  for (const [address, expected] of cases) {
    assert.equal(blockedReason(address), expected, address);
  }
});

Deno.test("blockedReason() allows public unicast addresses, including IPv4-mapped public ones", () => {
  const addresses = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.32.0.1",
    "100.128.0.1",
    "192.169.0.1",
    "2606:4700:4700::1111",
    "[2606:4700:4700::1111]",
    "2a00:1450:4001::200e",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
  ];
  for (const address of addresses) {
    assert.equal(blockedReason(address), undefined, address);
  }
});

Deno.test("blockedReason() gives every numeric spelling of an address the reason of its dotted quad", () => {
  for (const [input, canonical] of IPV4_SPELLINGS) {
    assert.equal(blockedReason(input), blockedReason(canonical), input);
  }
  assert.equal(blockedReason("0x7f.1"), "loopback (127.0.0.0/8)");
  assert.equal(blockedReason("2130706433"), "loopback (127.0.0.0/8)");
  assert.equal(blockedReason("017700000001"), "loopback (127.0.0.0/8)");
  assert.equal(
    blockedReason("0xa9fea9fe"),
    "cloud metadata service, link-local (169.254.169.254/32)",
  );
  assert.equal(blockedReason("0"), "unspecified (0.0.0.0/32)");
  assert.equal(blockedReason("10.1"), "private-use (10.0.0.0/8)");
});

Deno.test("blockedReason() keeps the classification of a zoned IPv6 address", () => {
  assert.equal(blockedReason("fe80::1%eth0"), "link-local (fe80::/10)");
  assert.equal(blockedReason("[fe80::1%25eth0]"), "link-local (fe80::/10)");
  assert.equal(blockedReason("ff02::1%2"), "multicast (ff00::/8)");
  assert.equal(blockedReason("2606:4700:4700::1111%eth0"), undefined);
});

Deno.test("blockedReason() throws a TypeError with a 'Cannot …' message for anything that is not an IP literal", () => {
  for (const input of NOT_LITERALS) {
    assert.throws(
      () => blockedReason(input),
      (error: unknown) =>
        error instanceof TypeError &&
        /^Cannot classify address: .+ is not an IP literal$/s.test(
          error.message,
        ),
      JSON.stringify(input),
    );
  }
});
