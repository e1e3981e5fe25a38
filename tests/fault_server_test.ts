// Tests of the test harness itself: serveFaults answers as RFC 9110 says and
// misbehaves exactly as each Fault describes, and startNginx runs a real
// nginx. Checked with plain fetch, and with raw TCP where fetch hides the wire
// (framing, missing bodies, how a connection ended).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { randomBytes } from "./_data.ts";
import { serveFaults } from "./_fault_server.ts";
import { nginxPath, startNginx } from "./_nginx.ts";

const SIZE = 10_000;
const FIRST_LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT";

/** A fetch response with its body read. */
interface Fetched {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<Fetched> {
  const response = await fetch(url, { headers });
  const body = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

/** What came back on the wire, body bytes as sent (not de-chunked or decoded). */
interface RawResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** "eof": the server closed cleanly (FIN); "reset": it sent an RST. */
  ending: "eof" | "reset";
}

/** Sends one request over a fresh TCP connection and reads until it ends. */
async function rawRequest(
  url: string,
  method = "GET",
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const head = [
      `${method} ${pathname} HTTP/1.1`,
      `host: ${hostname}:${port}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ].join("\r\n") + "\r\n\r\n";
    const request = new TextEncoder().encode(head);
    for (let at = 0; at < request.length;) {
      at += await conn.write(request.subarray(at));
    }
    const received: number[] = [];
    let ending: RawResponse["ending"] = "eof";
    try {
      const piece = new Uint8Array(65_536);
      for (let n; (n = await conn.read(piece)) !== null;) {
        for (const byte of piece.subarray(0, n)) received.push(byte);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
      ending = "reset";
    }
    return parseRaw(Uint8Array.from(received), ending);
  } finally {
    conn.close();
  }
}

function parseRaw(
  bytes: Uint8Array,
  ending: RawResponse["ending"],
): RawResponse {
  const text = new TextDecoder("latin1").decode(bytes);
  const headEnd = text.indexOf("\r\n\r\n");
  assert.ok(
    headEnd > 0,
    `no complete response head in ${JSON.stringify(text)}`,
  );
  const [statusLine = "", ...lines] = text.slice(0, headEnd).split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: bytes.subarray(headEnd + 4),
    ending,
  };
}

function strongEtagOf(content: Uint8Array): string {
  return `"${createHash("sha256").update(content).digest("hex").slice(0, 16)}"`;
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// ---------------------------------------------------------------------------
// The correct server

Deno.test("serveFaults serves the whole file with Accept-Ranges, a strong ETag and Last-Modified", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/file$/);
  const { status, headers, body } = await get(server.url);
  assert.equal(status, 200);
  assert.deepEqual(body, content);
  assert.equal(headers.get("accept-ranges"), "bytes");
  assert.equal(headers.get("content-length"), String(SIZE));
  assert.equal(headers.get("etag"), strongEtagOf(content));
  assert.equal(headers.get("last-modified"), FIRST_LAST_MODIFIED);
  assert.equal(headers.get("connection"), "close");
});

Deno.test("serveFaults paces correct answers to bytesPerSecond", async () => {
  const content = randomBytes(1024 * 1024);
  await using server = await serveFaults(content, [], {}, {
    bytesPerSecond: 4 * 1024 * 1024,
  });
  const started = performance.now();
  const { body } = await get(server.url);
  assert.deepEqual(body, content);
  // 16 pieces of 64 KiB, each followed by its share of a second.
  assert.ok(performance.now() - started >= 200);
});

Deno.test("serveFaults answers bytes=a-b, bytes=a- and bytes=-n with exact 206s", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content);
  const cases: [range: string, start: number, end: number][] = [
    ["bytes=100-199", 100, 199],
    ["bytes=9000-", 9000, 9999],
    ["bytes=-300", 9700, 9999],
    ["bytes=9990-20000", 9990, 9999], // the end is clamped to the file
    ["bytes=-20000", 0, 9999], // a suffix longer than the file is all of it
    ["bytes=0-0", 0, 0],
  ];
  for (const [range, start, end] of cases) {
    const { status, headers, body } = await get(server.url, { range });
    assert.equal(status, 206, range);
    assert.equal(headers.get("content-range"), `bytes ${start}-${end}/${SIZE}`);
    assert.equal(headers.get("content-length"), String(end - start + 1));
    assert.deepEqual(body, content.subarray(start, end + 1), range);
  }
});

Deno.test("serveFaults answers 416 past the end and ignores invalid or multiple ranges", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content);
  for (
    const range of [
      `bytes=${SIZE}-`,
      `bytes=${SIZE + 5}-${SIZE + 9}`,
      "bytes=-0",
    ]
  ) {
    const { status, headers, body } = await get(server.url, { range });
    assert.equal(status, 416, range);
    assert.equal(headers.get("content-range"), `bytes */${SIZE}`);
    assert.equal(body.length, 0);
  }
  for (const range of ["bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=x-"]) {
    const { status, body } = await get(server.url, { range });
    assert.equal(status, 200, range);
    assert.deepEqual(body, content);
  }
});

Deno.test("serveFaults honours If-Range only for the current strong ETag or the exact date", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content);
  const range = "bytes=10-19";
  const etag = strongEtagOf(content);
  const expectations: [ifRange: string, status: number][] = [
    [etag, 206],
    ['"something-else"', 200],
    [`W/${etag}`, 200], // a weak tag in If-Range never matches
    [FIRST_LAST_MODIFIED, 206],
    ["Thu, 22 Oct 2015 07:28:00 GMT", 200],
  ];
  for (const [ifRange, expected] of expectations) {
    const { status, body } = await get(server.url, {
      range,
      "if-range": ifRange,
    });
    assert.equal(status, expected, ifRange);
    assert.deepEqual(
      body,
      expected === 206 ? content.subarray(10, 20) : content,
    );
  }
});

Deno.test("serveFaults sends a weak ETag as W/ and it never satisfies If-Range", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [], { weak: true });
  const first = await get(server.url);
  const etag = first.headers.get("etag");
  assert.equal(etag, `W/${strongEtagOf(content)}`);
  for (const ifRange of [etag!, etag!.slice(2)]) {
    const { status } = await get(server.url, {
      range: "bytes=0-9",
      "if-range": ifRange,
    });
    assert.equal(status, 200, ifRange);
  }
  // A weak validator still allows a plain Range.
  assert.equal((await get(server.url, { range: "bytes=0-9" })).status, 206);
});

Deno.test("serveFaults sends custom validators and none when they are null", async () => {
  const content = randomBytes(SIZE);
  {
    await using server = await serveFaults(content, [], {
      etag: '"v1"',
      lastModified: null,
    });
    const { headers } = await get(server.url);
    assert.equal(headers.get("etag"), '"v1"');
    assert.equal(headers.has("last-modified"), false);
    const ranged = await get(server.url, {
      range: "bytes=0-9",
      "if-range": '"v1"',
    });
    assert.equal(ranged.status, 206);
  }
  {
    await using server = await serveFaults(content, [], { etag: null });
    const { headers } = await get(server.url);
    assert.equal(headers.has("etag"), false);
    const ranged = await get(server.url, {
      range: "bytes=0-9",
      "if-range": FIRST_LAST_MODIFIED,
    });
    assert.equal(ranged.status, 206);
  }
});

Deno.test("serveFaults answers HEAD with a GET's headers and no body", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content);
  const whole = await rawRequest(server.url, "HEAD");
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("content-length"), String(SIZE));
  assert.equal(whole.headers.get("etag"), strongEtagOf(content));
  assert.equal(whole.body.length, 0);
  assert.equal(whole.ending, "eof");
  const ranged = await rawRequest(server.url, "HEAD", { range: "bytes=5-9" });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get("content-range"), `bytes 5-9/${SIZE}`);
  assert.equal(ranged.headers.get("content-length"), "5");
  assert.equal(ranged.body.length, 0);
});

Deno.test("serveFaults serves an empty file as 200 with length 0, and 416 for any range", async () => {
  await using server = await serveFaults(new Uint8Array(0));
  const whole = await get(server.url);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("content-length"), "0");
  assert.equal(whole.body.length, 0);
  for (const range of ["bytes=0-", "bytes=0-0", "bytes=-5"]) {
    const { status, headers } = await get(server.url, { range });
    assert.equal(status, 416, range);
    assert.equal(headers.get("content-range"), "bytes */0");
  }
});

Deno.test("serveFaults setContent changes the bytes, the ETag and Last-Modified", async () => {
  const before = randomBytes(SIZE);
  const after = randomBytes(SIZE + 1);
  await using server = await serveFaults(before);
  const first = await get(server.url);
  server.setContent(after);
  const second = await get(server.url, {
    range: "bytes=0-9",
    "if-range": first.headers.get("etag")!,
  });
  assert.equal(second.status, 200); // the old ETag no longer matches
  assert.deepEqual(second.body, after);
  assert.equal(second.headers.get("etag"), strongEtagOf(after));
  assert.notEqual(second.headers.get("etag"), first.headers.get("etag"));
  assert.notEqual(
    second.headers.get("last-modified"),
    first.headers.get("last-modified"),
  );
  server.setContent(after, { etag: '"v2"', weak: true });
  assert.equal((await get(server.url)).headers.get("etag"), 'W/"v2"');
});

Deno.test("serveFaults records every request in order and counts them all for the script", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    undefined,
    { kind: "status", status: 404 },
  ]);
  const head = await fetch(server.url, { method: "HEAD" });
  await head.body?.cancel();
  const second = await get(server.url, {
    range: "bytes=1-2",
    "if-range": '"x"',
    "accept-encoding": "identity",
    "x-test": "yes",
  });
  const third = await get(server.url);
  assert.deepEqual(
    [head.status, second.status, third.status],
    [200, 404, 200],
  );
  assert.equal(server.requests.length, 3);
  const [first, recorded] = server.requests;
  assert.equal(first?.method, "HEAD");
  assert.equal(first?.range, null);
  assert.equal(recorded?.method, "GET");
  assert.equal(recorded?.range, "bytes=1-2");
  assert.equal(recorded?.ifRange, '"x"');
  assert.equal(recorded?.acceptEncoding, "identity");
  assert.equal(recorded?.headers.get("x-test"), "yes");
});

// ---------------------------------------------------------------------------
// Each fault

Deno.test("fault reset: full headers, afterBytes of the body, then a TCP RST", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "reset", afterBytes: 1000 },
    { kind: "reset", afterBytes: 5 },
    { kind: "reset", afterBytes: 3000 },
  ]);
  const raw = await rawRequest(server.url);
  assert.equal(raw.status, 200);
  assert.equal(raw.headers.get("content-length"), String(SIZE));
  assert.deepEqual(raw.body, content.subarray(0, 1000));
  assert.equal(raw.ending, "reset");

  const ranged = await rawRequest(server.url, "GET", {
    range: "bytes=100-199",
  });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get("content-range"), `bytes 100-199/${SIZE}`);
  assert.equal(ranged.headers.get("content-length"), "100");
  assert.deepEqual(ranged.body, content.subarray(100, 105));
  assert.equal(ranged.ending, "reset");

  const response = await fetch(server.url);
  await assert.rejects(response.arrayBuffer(), TypeError);
});

Deno.test("fault stall: afterBytes at once, then silence for ms, then the connection dies", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "stall", afterBytes: 500, ms: 150 },
  ]);
  const started = performance.now();
  const response = await fetch(server.url);
  assert.equal(response.headers.get("content-length"), String(SIZE));
  const reader = response.body!.getReader();
  let received = 0;
  while (received < 500) {
    const { value } = await reader.read();
    received += value!.length;
  }
  assert.equal(received, 500);
  assert.ok(performance.now() - started < 100, "the first bytes came late");
  await assert.rejects(reader.read(), TypeError);
  assert.ok(performance.now() - started >= 140, "the stall ended early");
});

Deno.test("fault stall ends at once when the server is disposed, and so do idle connections", async () => {
  const server = await serveFaults(randomBytes(SIZE), [
    { kind: "stall", afterBytes: 10, ms: 60_000 },
  ]);
  const { hostname, port } = new URL(server.url);
  const idle = await Deno.connect({ hostname, port: Number(port) });
  try {
    const response = await fetch(server.url);
    const reader = response.body!.getReader();
    await reader.read();
    const started = performance.now();
    await server[Symbol.asyncDispose]();
    await assert.rejects(reader.read(), TypeError);
    assert.ok(
      performance.now() - started < 1000,
      "disposal waited for the stall",
    );
    const ended = await idle.read(new Uint8Array(1)).catch((error) => error);
    assert.ok(ended === null || ended instanceof Deno.errors.ConnectionReset);
  } finally {
    idle.close();
  }
});

Deno.test("fault status: the given status, headers and body", async () => {
  await using server = await serveFaults(randomBytes(SIZE), [
    {
      kind: "status",
      status: 503,
      headers: { "retry-after": "1" },
      body: "busy",
    },
    {
      kind: "status",
      status: 429,
      headers: { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" },
    },
  ]);
  const busy = await get(server.url, { range: "bytes=0-9" });
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("retry-after"), "1");
  assert.equal(new TextDecoder().decode(busy.body), "busy");
  assert.equal(busy.headers.has("etag"), false);
  const limited = await get(server.url);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), FIRST_LAST_MODIFIED);
  assert.equal(limited.body.length, 0);
});

Deno.test("fault ignoreRange: 200 with the full body despite Range", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [{ kind: "ignoreRange" }]);
  const { status, headers, body } = await get(server.url, {
    range: "bytes=100-199",
  });
  assert.equal(status, 200);
  assert.equal(headers.has("content-range"), false);
  assert.equal(headers.has("accept-ranges"), false);
  assert.deepEqual(body, content);
});

Deno.test("fault wrongOffset: a 206 for the range moved by shift", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "wrongOffset", shift: 7 },
  ]);
  const { status, headers, body } = await get(server.url, {
    range: "bytes=100-199",
  });
  assert.equal(status, 206);
  assert.equal(headers.get("content-range"), `bytes 107-206/${SIZE}`);
  assert.deepEqual(body, content.subarray(107, 207));
});

Deno.test("fault wrongLength: Content-Length and body one byte longer than Content-Range", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "wrongLength" },
    { kind: "wrongLength" },
  ]);
  const raw = await rawRequest(server.url, "GET", { range: "bytes=100-199" });
  assert.equal(raw.status, 206);
  assert.equal(raw.headers.get("content-range"), `bytes 100-199/${SIZE}`);
  assert.equal(raw.headers.get("content-length"), "101");
  assert.equal(raw.body.length, 101);
  assert.deepEqual(raw.body.subarray(0, 100), content.subarray(100, 200));
  assert.notEqual(raw.body[100], content[200]);
  assert.equal(raw.ending, "eof");
  // The framing is intact, so fetch hands over all 101 bytes without error.
  const fetched = await get(server.url, { range: "bytes=100-199" });
  assert.equal(fetched.body.length, 101);
});

Deno.test("fault contentRange: a 206 with the given Content-Range, or none", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "contentRange", value: "bytes 0-9/99" },
    { kind: "contentRange", value: null },
  ]);
  const lying = await get(server.url, { range: "bytes=10-19" });
  assert.equal(lying.status, 206);
  assert.equal(lying.headers.get("content-range"), "bytes 0-9/99");
  assert.deepEqual(lying.body, content.subarray(10, 20));
  const missing = await get(server.url, { range: "bytes=10-19" });
  assert.equal(missing.status, 206);
  assert.equal(missing.headers.has("content-range"), false);
  assert.deepEqual(missing.body, content.subarray(10, 20));
});

Deno.test("fault shortRange: an honest 206 for only the first bytes of the range", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "shortRange", bytes: 10 },
  ]);
  const { status, headers, body } = await get(server.url, {
    range: "bytes=100-",
  });
  assert.equal(status, 206);
  assert.equal(headers.get("content-range"), `bytes 100-109/${SIZE}`);
  assert.equal(headers.get("content-length"), "10");
  assert.deepEqual(body, content.subarray(100, 110));
});

Deno.test("fault gzip: the 200 or 206 body gzipped, with Content-Encoding: gzip", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [{ kind: "gzip" }, {
    kind: "gzip",
  }]);
  const ranged = await rawRequest(server.url, "GET", {
    range: "bytes=100-199",
    "accept-encoding": "identity",
  });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get("content-encoding"), "gzip");
  assert.equal(ranged.headers.get("content-range"), `bytes 100-199/${SIZE}`);
  assert.equal(
    ranged.headers.get("content-length"),
    String(ranged.body.length),
  );
  assert.deepEqual(await gunzip(ranged.body), content.subarray(100, 200));
  const whole = await rawRequest(server.url);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("content-encoding"), "gzip");
  assert.deepEqual(await gunzip(whole.body), content);
});

Deno.test("fault closeEarly: afterBytes of the body, then a clean close, with or without the full length", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "closeEarly", afterBytes: 1000, withLength: true },
    { kind: "closeEarly", afterBytes: 1000, withLength: false },
    { kind: "closeEarly", afterBytes: 1000, withLength: true },
    { kind: "closeEarly", afterBytes: 1000, withLength: false },
  ]);
  const declared = await rawRequest(server.url);
  assert.equal(declared.headers.get("content-length"), String(SIZE));
  assert.deepEqual(declared.body, content.subarray(0, 1000));
  assert.equal(declared.ending, "eof");

  const undeclared = await rawRequest(server.url, "GET", {
    range: "bytes=0-4999",
  });
  assert.equal(undeclared.status, 206);
  assert.equal(undeclared.headers.has("content-length"), false);
  assert.equal(undeclared.headers.get("connection"), "close");
  assert.equal(undeclared.headers.get("content-range"), `bytes 0-4999/${SIZE}`);
  assert.deepEqual(undeclared.body, content.subarray(0, 1000));
  assert.equal(undeclared.ending, "eof");

  // fetch sees the first as broken, the second as a complete 1000-byte body.
  const broken = await fetch(server.url);
  await assert.rejects(broken.arrayBuffer(), TypeError);
  const looksWhole = await get(server.url);
  assert.equal(looksWhole.status, 200);
  assert.deepEqual(looksWhole.body, content.subarray(0, 1000));
});

Deno.test("fault contentRangeOn200: the full body with a Content-Range for what was asked", async () => {
  const content = randomBytes(SIZE);
  await using server = await serveFaults(content, [
    { kind: "contentRangeOn200" },
    { kind: "contentRangeOn200" },
  ]);
  const ranged = await get(server.url, { range: "bytes=100-199" });
  assert.equal(ranged.status, 200);
  assert.equal(ranged.headers.get("content-range"), `bytes 100-199/${SIZE}`);
  assert.deepEqual(ranged.body, content);
  const plain = await get(server.url);
  assert.equal(plain.headers.get("content-range"), `bytes 0-9999/${SIZE}`);
});

Deno.test("fault status416: 416 with the real or the given total", async () => {
  await using server = await serveFaults(randomBytes(SIZE), [
    { kind: "status416" },
    { kind: "status416", total: 5 },
  ]);
  const real = await get(server.url, { range: "bytes=0-9" });
  assert.equal(real.status, 416);
  assert.equal(real.headers.get("content-range"), `bytes */${SIZE}`);
  const given = await get(server.url, { range: "bytes=0-9" });
  assert.equal(given.status, 416);
  assert.equal(given.headers.get("content-range"), "bytes */5");
});

Deno.test("fault respond: the handler sees the Request and its Response goes out as given", async () => {
  await using server = await serveFaults(randomBytes(SIZE), [
    {
      kind: "respond",
      handler: (request) =>
        new Response(`you asked for ${request.headers.get("range")}`, {
          status: 418,
          statusText: "Teapot",
          headers: { "x-handler": request.method },
        }),
    },
    {
      kind: "respond",
      handler: () =>
        new Response("abc", { headers: { "transfer-encoding": "chunked" } }),
    },
  ]);
  const teapot = await rawRequest(server.url, "GET", { range: "bytes=1-2" });
  assert.equal(teapot.status, 418);
  assert.equal(teapot.headers.get("x-handler"), "GET");
  assert.equal(teapot.headers.has("content-length"), false); // ends at the close
  assert.equal(
    new TextDecoder().decode(teapot.body),
    "you asked for bytes=1-2",
  );
  const chunked = await get(server.url);
  assert.equal(new TextDecoder().decode(chunked.body), "abc");
});

// ---------------------------------------------------------------------------
// nginx

Deno.test("startNginx serves a file with a correct 206 and a strong ETag, and stops cleanly", async () => {
  assert.ok(nginxPath(), "nginx is not installed");
  const root = await Deno.makeTempDir({ prefix: "nginx_root_" });
  try {
    const content = randomBytes(SIZE);
    await Deno.writeFile(`${root}/data.bin`, content);
    let url: string;
    {
      await using nginx = await startNginx(root);
      url = `${nginx.url}data.bin`;
      const whole = await get(url);
      assert.equal(whole.status, 200);
      assert.deepEqual(whole.body, content);
      const etag = whole.headers.get("etag");
      assert.match(etag ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/); // strong: no W/
      const ranged = await get(url, {
        range: "bytes=100-199",
        "if-range": etag!,
      });
      assert.equal(ranged.status, 206);
      assert.equal(
        ranged.headers.get("content-range"),
        `bytes 100-199/${SIZE}`,
      );
      assert.deepEqual(ranged.body, content.subarray(100, 200));
      const unsatisfiable = await get(url, { range: `bytes=${SIZE}-` });
      assert.equal(unsatisfiable.status, 416);
      assert.equal(
        unsatisfiable.headers.get("content-range"),
        `bytes */${SIZE}`,
      );
    }
    await assert.rejects(fetch(url), TypeError); // nothing listens any more
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
