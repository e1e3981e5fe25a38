// rangeStream and download() against the fault server (tests/_fault_server.ts):
// one fault per request, then answers as RFC 9110 says.

import assert from "node:assert/strict";
import {
  download,
  type DownloadEvent,
  RangeNotHonoredError,
  rangeStream,
  ResourceChangedError,
} from "../core/range.ts";
import {
  CancelledError,
  HttpError,
  IntegrityError,
  LockedError,
} from "../core/errors.ts";
import { randomBytes, sha256 } from "./_data.ts";
import { type Fault, serveFaults } from "./_fault_server.ts";
import { tempDir } from "./_fs.ts";

const FAST = { baseDelayMs: 1, maxDelayMs: 5 };
const V1 = { etag: '"v1"' };
const resetAfter = (afterBytes: number): Fault => ({
  kind: "reset",
  afterBytes,
});

Deno.test("rangeStream() resumes a reset mid-body with an open range pinned by If-Range", async () => {
  const content = randomBytes(300_000);
  await using server = await serveFaults(content, [
    resetAfter(100_000),
    resetAfter(50_000),
  ], V1);
  const out = await new Response(rangeStream(server.url, { retry: FAST }))
    .bytes();
  assert.equal(sha256(out), sha256(content));
  assert.deepEqual(server.requests.map((r) => [r.range, r.ifRange]), [
    [null, null],
    ["bytes=100000-", '"v1"'],
    ["bytes=150000-", '"v1"'],
  ]);
  assert.ok(server.requests.every((r) => r.acceptEncoding === "identity"));
});

Deno.test("rangeStream() never sends a weak ETag in If-Range", async () => {
  const content = randomBytes(50_000);
  await using server = await serveFaults(content, [resetAfter(10_000)], {
    etag: '"weak"',
    weak: true,
  });
  const out = await new Response(rangeStream(server.url, { retry: FAST }))
    .bytes();
  assert.equal(sha256(out), sha256(content));
  assert.equal(server.requests[1]?.range, "bytes=10000-");
  assert.equal(server.requests[1]?.ifRange, null);
});

Deno.test("rangeStream() rejects a resume answered by a changed resource", async () => {
  const content = randomBytes(50_000);
  await using server = await serveFaults(content, [resetAfter(10_000)], V1);
  const stream = rangeStream(server.url, { retry: FAST });
  const reader = stream.getReader();
  let received = 0;
  while (received < 10_000) received += (await reader.read()).value!.length;
  assert.equal(received, 10_000);
  server.setContent(content, { etag: '"v2"' }); // the file changes on the server
  await assert.rejects(
    reader.read(),
    (e) => e instanceof ResourceChangedError && e.what === "content",
  );
});

Deno.test("rangeStream() rejects a 206 at the wrong offset, of the wrong length or encoded", async () => {
  const content = randomBytes(40_000);
  const wrong: Record<string, Fault> = {
    "wrong offset": { kind: "wrongOffset", shift: -1000 },
    "wrong length": { kind: "wrongLength" },
    "malformed Content-Range": {
      kind: "contentRange",
      value: "bytes 10000-/40000",
    },
    "missing Content-Range": { kind: "contentRange", value: null },
    "gzip 206": { kind: "gzip" },
  };
  for (const [name, fault] of Object.entries(wrong)) {
    await using server = await serveFaults(content, [
      resetAfter(10_000),
      fault,
    ]);
    const result = await new Response(rangeStream(server.url, { retry: FAST }))
      .bytes().catch((e) => e);
    assert.ok(result instanceof RangeNotHonoredError, `${name}: ${result}`);
    assert.equal(result.offset, 10_000, name);
  }
});

Deno.test("rangeStream() rejects a total that changed between attempts", async () => {
  const content = randomBytes(40_000);
  await using server = await serveFaults(content, [
    resetAfter(10_000),
    { kind: "contentRange", value: "bytes 10000-39999/50000" },
  ]);
  await assert.rejects(
    new Response(rangeStream(server.url, { retry: FAST })).bytes(),
    (e) => e instanceof ResourceChangedError && e.what === "size",
  );
});

Deno.test("rangeStream() follows a short 206 with more range requests", async () => {
  const content = randomBytes(30_000);
  const short: Fault = { kind: "shortRange", bytes: 1000 };
  await using server = await serveFaults(content, [short]);
  const out = await new Response(rangeStream(server.url, { end: 30_000 }))
    .bytes();
  assert.equal(sha256(out), sha256(content));
  assert.deepEqual(server.requests.map((r) => r.range), [
    "bytes=0-29999",
    "bytes=1000-29999",
  ]);
});

Deno.test("rangeStream() waits out 503 and 429 with Retry-After and fails 404 at once", async () => {
  const content = randomBytes(1000);
  const busy = (status: number, after: string): Fault => ({
    kind: "status",
    status,
    headers: { "retry-after": after },
    body: "busy",
  });
  await using server = await serveFaults(content, [
    busy(503, "0"),
    busy(429, new Date(Date.now() - 1000).toUTCString()),
  ]);
  const out = await new Response(rangeStream(server.url, { retry: FAST }))
    .bytes();
  assert.deepEqual(out, content);
  assert.equal(server.requests.length, 3);
  await using missing = await serveFaults(content, [
    { kind: "status", status: 404 },
  ]);
  await assert.rejects(
    new Response(rangeStream(missing.url, { retry: FAST })).bytes(),
    (e) => e instanceof HttpError && e.status === 404,
  );
  assert.equal(missing.requests.length, 1);
});

Deno.test("rangeStream() drops a stalled connection and resumes", async () => {
  const content = randomBytes(20_000);
  await using server = await serveFaults(content, [
    { kind: "stall", afterBytes: 5000, ms: 10_000 },
  ]);
  const out = await new Response(
    rangeStream(server.url, { stallTimeoutMs: 100, retry: FAST }),
  ).bytes();
  assert.equal(sha256(out), sha256(content));
  assert.equal(server.requests[1]?.range, "bytes=5000-");
});

Deno.test("rangeStream() gives up on a server that never answers and asks again", async () => {
  const content = randomBytes(20_000);
  // Headers never come: the handler waits until the server is disposed.
  const silent: Fault = {
    kind: "respond",
    handler: (request) =>
      new Promise((_, reject) =>
        request.signal.addEventListener(
          "abort",
          () => reject(request.signal.reason),
        )
      ),
  };
  await using server = await serveFaults(content, [silent]);
  const out = await new Response(
    rangeStream(server.url, { stallTimeoutMs: 100, retry: FAST }),
  ).bytes();
  assert.equal(sha256(out), sha256(content));
  assert.deepEqual(server.requests.map((r) => r.range), [null, null]);
});

Deno.test("rangeStream() reads an empty file", async () => {
  await using server = await serveFaults(new Uint8Array(0));
  assert.equal((await new Response(rangeStream(server.url)).bytes()).length, 0);
});

Deno.test("download() keeps the .part on failure and the next call resumes from the checkpoint it reports", async () => {
  const content = randomBytes(2_000_000);
  await using dir = await tempDir();
  const path = `${dir.path}/file.bin`;
  // The first server dies for good after 1.5 MB.
  await using broken = await serveFaults(content, [
    resetAfter(1_500_000),
    ...Array(10).fill({ kind: "status", status: 503 }),
  ], V1);
  await assert.rejects(
    download(broken.url, path, {
      checkpointBytes: 256 * 1024,
      retry: { ...FAST, maxAttempts: 2 },
    }),
    HttpError,
  );
  const manifest = JSON.parse(await Deno.readTextFile(`${path}.part.json`));
  assert.equal(
    manifest.offset,
    1_500_000,
    "a final checkpoint covers every byte written",
  );
  assert.deepEqual(manifest.validator, { header: "etag", value: '"v1"' });
  await using good = await serveFaults(content, [], V1);
  const starts: number[] = [];
  const receipt = await download(good.url, path, {
    sha256: sha256(content),
    size: content.length,
    onProgress: (e) => e.type === "start" && starts.push(e.offset),
  });
  assert.deepEqual(
    starts,
    [1_500_000],
    "the start event says where it resumes",
  );
  assert.equal(receipt.resumedFrom, 1_500_000);
  assert.equal(receipt.sha256, sha256(content));
  assert.equal(good.requests[0]?.range, "bytes=1500000-");
  assert.equal(good.requests[0]?.ifRange, '"v1"');
  assert.equal(sha256(await Deno.readFile(path)), sha256(content));
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(dir.path))).map((e) => e.name),
    ["file.bin"],
  );
});

Deno.test("download() restarts from 0 when the file changed between calls", async () => {
  const before = randomBytes(500_000);
  const after = randomBytes(600_000);
  await using dir = await tempDir();
  const path = `${dir.path}/f`;
  await using old = await serveFaults(before, [
    resetAfter(200_000),
    ...Array(5).fill({ kind: "status", status: 503 }),
  ]);
  await assert.rejects(
    download(old.url, path, { retry: { ...FAST, maxAttempts: 1 } }),
  );
  await using changed = await serveFaults(after);
  const events: DownloadEvent[] = [];
  const receipt = await download(changed.url, path, {
    onProgress: (e) => events.push(e),
  });
  assert.equal(receipt.restarts, 1);
  assert.ok(events.some((e) => e.type === "restart"));
  assert.equal(sha256(await Deno.readFile(path)), sha256(after));
});

Deno.test("download() completes a .part that is already whole when the server answers 416", async () => {
  const content = randomBytes(100_000);
  await using dir = await tempDir();
  const path = `${dir.path}/f`;
  await Deno.writeFile(`${path}.part`, content);
  await Deno.writeTextFile(
    `${path}.part.json`,
    JSON.stringify({
      version: 1,
      url: "x",
      validator: { header: "etag", value: '"v1"' },
      total: 100_000,
      offset: 100_000,
    }),
  );
  await using server = await serveFaults(content, [], V1);
  const receipt = await download(server.url, path, { sha256: sha256(content) });
  assert.equal(receipt.resumedFrom, 100_000);
  assert.equal(server.requests[0]?.range, "bytes=100000-");
  assert.equal(sha256(await Deno.readFile(path)), sha256(content));
});

Deno.test("download() with a wrong sha256 throws IntegrityError and leaves nothing behind", async () => {
  await using dir = await tempDir();
  await using server = await serveFaults(randomBytes(10_000));
  await assert.rejects(
    download(server.url, `${dir.path}/f`, { sha256: "ab".repeat(32) }),
    IntegrityError,
  );
  assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path)), []);
});

Deno.test("download() refuses a second writer of the same .part with LockedError", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/f`;
  using holder = await Deno.open(`${path}.part`, { write: true, create: true });
  await holder.lock(true);
  await using server = await serveFaults(randomBytes(1000));
  // Another process holds the lock: file locks are per open file description.
  await assert.rejects(download(server.url, path), LockedError);
  assert.equal(server.requests.length, 0);
});

Deno.test("download() aborted by its signal throws CancelledError and keeps the .part", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/f`;
  const content = randomBytes(200_000);
  const controller = new AbortController();
  await using server = await serveFaults(content, [
    { kind: "stall", afterBytes: 50_000, ms: 10_000 },
  ]);
  await assert.rejects(
    download(server.url, path, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === "progress" && e.bytes >= 50_000) controller.abort();
      },
    }),
    CancelledError,
  );
  const manifest = JSON.parse(await Deno.readTextFile(`${path}.part.json`));
  assert.equal(manifest.offset, 50_000);
  const receipt = await download(server.url, path);
  assert.equal(receipt.resumedFrom, 50_000);
  assert.equal(sha256(await Deno.readFile(path)), sha256(content));
});

Deno.test("download() fails over to the next mirror when one fails permanently", async () => {
  const content = randomBytes(100_000);
  await using dir = await tempDir();
  await using dead = await serveFaults(content, [
    { kind: "status", status: 404 },
  ]);
  await using alive = await serveFaults(content);
  const events: DownloadEvent[] = [];
  const receipt = await download([dead.url, alive.url], `${dir.path}/f`, {
    onProgress: (e) => events.push(e),
  });
  assert.equal(receipt.url, alive.url);
  assert.ok(events.some((e) => e.type === "failover"));
  assert.equal(sha256(await Deno.readFile(`${dir.path}/f`)), sha256(content));
});

Deno.test("download() that fails before any byte arrives leaves no .part; one with bytes keeps it", async () => {
  const content = randomBytes(100_000);
  await using dir = await tempDir();
  await using gone = await serveFaults(content, [
    { kind: "status", status: 404 },
  ]);
  await assert.rejects(
    download(gone.url, `${dir.path}/f`),
    (e) => e instanceof HttpError && e.status === 404,
  );
  assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path)), []);

  const controller = new AbortController();
  controller.abort();
  await assert.rejects(
    download(gone.url, `${dir.path}/f`, { signal: controller.signal }),
    CancelledError,
  );
  assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path)), []);

  await using cut = await serveFaults(content, [
    { kind: "reset", afterBytes: 30_000 },
    { kind: "status", status: 404 },
  ]);
  await assert.rejects(download(cut.url, `${dir.path}/g`), HttpError);
  const left = (await Array.fromAsync(Deno.readDir(dir.path))).map((e) =>
    e.name
  );
  assert.deepEqual(left.sort(), ["g.part", "g.part.json"]);
});
