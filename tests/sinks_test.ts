// channel, writableSink, deliverAll and parseSinkConfig with real readers,
// a real HTTP response body, real files and a real SQLite database.

import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { CancelledError, PartialFailureError } from "../core/errors.ts";
import {
  channel,
  deliverAll,
  type DeliveryReceipt,
  fileSink,
  parseSinkConfig,
  readDelivery,
  type Sink,
  sqliteSink,
  writableSink,
} from "../sinks/mod.ts";
import { MiB, randomBytes, sha256, streamOf } from "./_data.ts";
import { names, tempDir } from "./_fs.ts";

/** An endless source of 64 KiB chunks that counts what was pulled and records its cancel. */
function endless() {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      state.pulled += 65536;
      c.enqueue(new Uint8Array(65536));
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

Deno.test("channel streams a delivery into an HTTP response body and resolves once the reader has it all", async () => {
  const body = randomBytes(5 * MiB + 7);
  let delivered: Promise<DeliveryReceipt> | undefined;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      const { sink, readable } = channel({ highWaterMark: 256 * 1024 });
      delivered = sink.deliver(streamOf(body, 65536));
      return new Response(readable);
    },
  );
  const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  const got = await response.bytes();
  assert.equal(sha256(got), sha256(body));
  const receipt = await delivered!;
  assert.equal(receipt.sink, "channel");
  assert.equal(receipt.bytes, body.length);
  assert.equal(receipt.sha256, sha256(body));
});

Deno.test("channel pulls from its source only while its queue has room", async () => {
  const { stream, state } = endless();
  const { sink, readable } = channel({ highWaterMark: 256 * 1024 });
  const delivered = sink.deliver(stream);
  delivered.catch(() => {});
  const reader = readable.getReader();
  await tick();
  // The queue holds at most highWaterMark, plus the chunk waiting for room.
  assert.ok(state.pulled <= 256 * 1024 + 65536, `pulled ${state.pulled}`);
  let read = 0;
  for (let i = 0; i < 20; i++) read += (await reader.read()).value!.length;
  await tick();
  assert.ok(state.pulled - read <= 256 * 1024 + 65536);
  await reader.cancel();
  await assert.rejects(delivered, CancelledError);
  assert.ok(state.cancelled);
});

Deno.test("channel: the reader going away rejects the delivery with CancelledError and cancels the source; a failed delivery errors the reader", async () => {
  {
    const { stream, state } = endless();
    let delivered: Promise<DeliveryReceipt> | undefined;
    const controller = new AbortController();
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => {
        const { sink, readable } = channel();
        delivered = sink.deliver(stream);
        delivered.catch(() => {});
        return new Response(readable);
      },
    );
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/`, {
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort(); // the HTTP client goes away mid-body
    await assert.rejects(delivered!, CancelledError);
    assert.ok(state.cancelled);
  }
  {
    const boom = new Error("source broke");
    const { sink, readable } = channel();
    const delivered = sink.deliver(
      new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(10));
          c.error(boom);
        },
      }),
    );
    await assert.rejects(new Response(readable).bytes(), (e) => e === boom);
    await assert.rejects(delivered, (e) => e === boom);
    await assert.rejects(sink.deliver(streamOf(new Uint8Array(1))), TypeError);
  }
});

Deno.test("writableSink closes the writable on success, aborts it on failure, and a failing writable cancels the source", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "w.bin");
  const body = randomBytes(3 * MiB);
  {
    using file = await Deno.open(path, { write: true, create: true });
    const receipt = await writableSink(file.writable, { location: path })
      .deliver(streamOf(body));
    assert.equal(receipt.location, path);
    assert.equal(receipt.sha256, sha256(body));
  }
  assert.equal(sha256(await Deno.readFile(path)), sha256(body));
  {
    let aborted: unknown;
    const boom = new Error("source broke");
    const writable = new WritableStream<Uint8Array>({
      abort(reason) {
        aborted = reason;
      },
    });
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(1));
        c.error(boom);
      },
    });
    await assert.rejects(
      writableSink(writable).deliver(source),
      (e) => e === boom,
    );
    assert.equal(aborted, boom);
  }
  {
    const { stream, state } = endless();
    const full = new Error("disk full");
    let writes = 0;
    const writable = new WritableStream<Uint8Array>({
      write() {
        if (++writes === 3) throw full;
      },
    });
    await assert.rejects(
      writableSink(writable).deliver(stream),
      (e) => e === full,
    );
    assert.ok(state.cancelled);
  }
});

Deno.test("deliverAll gives every sink the same bytes, and one failing sink keeps the others' receipts in PartialFailureError", async () => {
  await using dir = await tempDir();
  const body = randomBytes(4 * MiB + 1);
  const db = join(dir.path, "d.sqlite");
  const receipts = await deliverAll(streamOf(body, 100_000), [
    fileSink(join(dir.path, "a.bin")),
    sqliteSink(db),
    fileSink(join(dir.path, "b.bin")),
  ], { name: "body" });
  assert.deepEqual(receipts.map((r) => r.sink), ["file", "sqlite", "file"]);
  for (const r of receipts) assert.equal(r.sha256, sha256(body));
  const id = receipts[1]!.detail!.id as number;
  assert.equal(
    sha256(await new Response(readDelivery(db, id)).bytes()),
    sha256(body),
  );

  const error = await deliverAll(streamOf(body), [
    fileSink(join(dir.path, "c.bin")),
    fileSink(join(dir.path, "a.bin")), // exists: fails at once
    fileSink(join(dir.path, "d.bin"), { root: join(dir.path, "nowhere") }),
  ]).catch((e) => e);
  assert.ok(error instanceof PartialFailureError);
  assert.equal(error.succeeded.length, 1);
  assert.equal((error.succeeded[0] as DeliveryReceipt).sha256, sha256(body));
  assert.deepEqual(error.failed.map((f) => f.item), [1, 2]);
  // Nothing half-written: no temp files, only the committed ones.
  assert.deepEqual(
    (await names(dir.path)).filter((n) => !/-(shm|wal)$/.test(n)),
    ["a.bin", "b.bin", "c.bin", "d.sqlite"],
  );
});

Deno.test("deliverAll reads the source only as fast as the slowest sink, and cancels it when every sink failed", async () => {
  const { stream, state } = endless();
  let release!: () => void;
  const slowStarted = new Promise<void>((r) => release = r);
  let fastRead = 0;
  const fast: Sink = writableSink(
    new WritableStream({ write: (c) => void (fastRead += c.length) }),
  );
  let gate!: () => void;
  const opened = new Promise<void>((r) => gate = r);
  const slow: Sink = writableSink(
    new WritableStream({
      async write() {
        release();
        await opened; // blocks on the first chunk
      },
    }),
  );
  const controller = new AbortController();
  const all = deliverAll(stream, [fast, slow], {}, {
    maxAhead: 4,
    signal: controller.signal,
  });
  await slowStarted;
  await tick();
  await tick();
  // The slow sink holds one chunk; the fast one may run 4 ahead of it.
  assert.ok(state.pulled <= 6 * 65536, `pulled ${state.pulled}`);
  assert.ok(fastRead <= 6 * 65536);
  controller.abort();
  gate();
  const error = await all.catch((e) => e);
  assert.ok(error instanceof PartialFailureError);
  assert.equal(error.failed.length, 2);
  assert.ok(error.failed.every((f) => f.error instanceof CancelledError));
  await until(() => state.cancelled);
  assert.ok(state.cancelled);
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await tick();
}

Deno.test("parseSinkConfig builds file, webhook and SQLite sinks from strings and objects", async () => {
  await using dir = await tempDir();
  const bytes = randomBytes(1000);
  const deliver = (config: unknown) =>
    parseSinkConfig(config).deliver(streamOf(bytes));

  assert.equal((await deliver(join(dir.path, "plain.bin"))).sink, "file");
  assert.equal(
    (await deliver(`file:${join(dir.path, "scheme.bin")}`)).location,
    join(dir.path, "scheme.bin"),
  );
  assert.equal(
    (await deliver(`file://${join(dir.path, "url.bin")}`)).location,
    join(dir.path, "url.bin"),
  );
  assert.equal(
    (await deliver({ type: "file", path: "obj.bin", root: dir.path }))
      .location,
    join(await Deno.realPath(dir.path), "obj.bin"),
  );
  assert.equal(
    (await deliver(JSON.stringify({
      type: "file",
      path: join(dir.path, "json.bin"),
    }))).sink,
    "file",
  );
  const db = join(dir.path, "c.sqlite");
  const row = await deliver(`sqlite:${db}#inbox`);
  assert.equal(row.location, `${db}#inbox/1`);
  await deliver({ type: "sqlite", path: db });
  {
    using conn = new DatabaseSync(db);
    const count = (t: string) =>
      (conn.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number })
        .n;
    assert.equal(count("inbox"), 1);
    assert.equal(count("deliveries"), 1);
  }

  let got = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (r) => {
      got = (await r.bytes()).length;
      return new Response(null);
    },
  );
  const hook = `http://127.0.0.1:${server.addr.port}/in`;
  const sent = await deliver({
    type: "webhook",
    url: hook,
    allowPrivateNetwork: true,
    maxAttempts: 1,
    headers: { "x-key": "k" },
  });
  assert.equal(sent.sink, "webhook");
  assert.equal(got, 1000);
  await assert.rejects(
    deliver(hook), // a short string gets the default guard
    (e) => (e as Error).name === "BlockedDestinationError",
  );
});

Deno.test("parseSinkConfig rejects what it cannot use with a message naming the problem", () => {
  const cases: [unknown, RegExp][] = [
    ["", /it is empty/],
    [{ type: "object-storage", bucket: "b" }, /unknown type "object-storage"/],
    [
      { type: "database", url: "postgres://x" },
      /databases other than SQLite are not supported yet/,
    ],
    [{ type: "channel" }, /make it in code with channel\(\)/],
    [{ type: "ftp" }, /unknown type "ftp"/],
    [{ path: "x" }, /"type" must be a string/],
    [{ type: "file" }, /"path" is required/],
    [{ type: "file", path: 7 }, /"path" must be a string/],
    [
      { type: "file", path: "x", overwrite: "yes" },
      /"overwrite" must be a boolean/,
    ],
    [{ type: "webhook", url: "not a url" }, /"url" is not a valid URL/],
    [
      { type: "webhook", url: "https://a.example", retries: 3 },
      /unknown field "retries"/,
    ],
    [
      { type: "webhook", url: "https://a.example", headers: { a: 1 } },
      /header "a" must be a string/,
    ],
    [
      { type: "webhook", url: "https://a.example", allowedHosts: "a" },
      /"allowedHosts" must be a list of strings/,
    ],
    [
      { type: "webhook", url: "https://a.example", timeoutMs: Infinity },
      /"timeoutMs" must be a number/,
    ],
    [{ type: "sqlite", path: "d.db", table: "bad name" }, /as a table name/],
    ["sqlite:#t", /the database path is empty/],
    ["sqlite:a.db#t#u", /more than one "#"/],
    ["gopher://x", /unknown scheme "gopher:"/],
    ["{not json", /not valid JSON/],
    [42, /expected a string or an object/],
    [["file"], /expected a string or an object/],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => parseSinkConfig(config), (e) => {
      assert.ok(e instanceof TypeError, `${JSON.stringify(config)}: ${e}`);
      assert.match(e.message, message);
      assert.match(e.message, /^Cannot /);
      return true;
    });
  }
});
