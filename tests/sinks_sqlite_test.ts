// sqliteSink and readDelivery against real SQLite files in a temp dir.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { CancelledError, IntegrityError } from "../core/errors.ts";
import {
  DatabaseBusyError,
  DeliveryNotFoundError,
  readDelivery,
  sqliteSink,
} from "../sinks/sqlite.ts";
import { concat, drain, MiB, randomBytes, streamOf } from "./_data.ts";

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Runs `fn` with a fresh temp dir and the path of a database in it. */
async function withDatabase(
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_sqlite_" });
  try {
    await fn(`${dir}/test.db`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The rows each table holds, seen from a connection of its own. A table
 * that does not exist (its creation was rolled back with the delivery that
 * made it) holds none.
 */
function rowCounts(
  path: string,
  table = "deliveries",
): { deliveries: number; chunks: number } {
  using db = new DatabaseSync(path);
  const count = (name: string) => {
    const exists = db.prepare(
      "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
    ).get(name)!.n;
    return exists
      ? Number(db.prepare(`SELECT count(*) AS n FROM "${name}"`).get()!.n)
      : 0;
  };
  return { deliveries: count(table), chunks: count(`${table}_chunks`) };
}

/** A stream of `bytes` in pieces whose sizes cycle through `sizes`. */
function streamOfSizes(
  bytes: Uint8Array,
  sizes: readonly number[],
): ReadableStream<Uint8Array> {
  let at = 0;
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      const size = sizes[i++ % sizes.length]!;
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/**
 * A stream that gives `first`, then waits for `release()` before giving
 * `rest`; `pulled` resolves once the first piece has been asked for (so the
 * delivery reading it holds the write lock), `cancelled` with the reason
 * the stream was cancelled for.
 */
function gatedStream(first: Uint8Array, rest: Uint8Array) {
  const pulled = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const cancelled = Promise.withResolvers<unknown>();
  let step = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (step === 0) {
        step++;
        pulled.resolve();
        controller.enqueue(first);
        return;
      }
      await gate.promise;
      controller.enqueue(rest);
      controller.close();
    },
    cancel(reason) {
      cancelled.resolve(reason);
      gate.resolve();
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    pulled: pulled.promise,
    cancelled: cancelled.promise,
    release: () => gate.resolve(),
  };
}

Deno.test("sqliteSink() stores 5 MiB from odd-sized pieces in ceil(size / chunkBytes) chunk rows, and readDelivery() gives the same bytes back", async () => {
  await withDatabase(async (path) => {
    const bytes = randomBytes(5 * MiB + 17);
    const receipt = await sqliteSink(path).deliver(
      streamOfSizes(bytes, [1, 7919, MiB + 3, 65_537, 3]),
      {
        name: "big.bin",
        contentType: "application/octet-stream",
        size: bytes.length,
        extra: { owner: "ana", tries: 2 },
        headers: { "x-trace": "abc" },
      },
    );
    assert.equal(receipt.sink, "sqlite");
    assert.equal(receipt.bytes, bytes.length);
    assert.equal(receipt.sha256, sha256(bytes));
    assert.equal(receipt.location, `${path}#deliveries/1`);
    assert.deepEqual(receipt.detail, { table: "deliveries", id: 1 });
    assert.ok(receipt.finishedAt >= receipt.startedAt);

    {
      using db = new DatabaseSync(path);
      const row = db.prepare("SELECT * FROM deliveries WHERE id = 1").get()!;
      assert.equal(row.name, "big.bin");
      assert.equal(row.content_type, "application/octet-stream");
      assert.equal(row.bytes, bytes.length);
      assert.equal(row.sha256, sha256(bytes));
      assert.equal(
        new Date(String(row.created)).toISOString(),
        receipt.startedAt.toISOString(),
      );
      assert.deepEqual(JSON.parse(String(row.metadata)), {
        extra: { owner: "ana", tries: 2 },
        headers: { "x-trace": "abc" },
      });
      const lengths = db.prepare(
        "SELECT length(data) AS n FROM deliveries_chunks WHERE delivery_id = 1 ORDER BY seq",
      ).all().map((r) => r.n);
      assert.deepEqual(lengths, [MiB, MiB, MiB, MiB, MiB, 17]);
      assert.equal(
        db.prepare("PRAGMA journal_mode").get()!.journal_mode,
        "wal",
      );
    }

    const pieces = await Array.fromAsync(readDelivery(path, 1));
    assert.equal(pieces.length, Math.ceil(bytes.length / MiB));
    assert.deepEqual(concat(pieces), bytes);
  });
});

Deno.test("sqliteSink() cuts chunk rows at exactly chunkBytes, with no empty last row", async () => {
  await withDatabase(async (path) => {
    const sink = sqliteSink(path, { chunkBytes: 1000 });
    const a = randomBytes(2500);
    const b = randomBytes(3000);
    await sink.deliver(streamOf(a, 7));
    await sink.deliver(streamOf(b, 4096));
    using db = new DatabaseSync(path);
    const lengths = (id: number) =>
      db.prepare(
        "SELECT length(data) AS n FROM deliveries_chunks WHERE delivery_id = ? ORDER BY seq",
      ).all(id).map((r) => r.n);
    assert.deepEqual(lengths(1), [1000, 1000, 500]);
    assert.deepEqual(lengths(2), [1000, 1000, 1000]);
    assert.deepEqual(concat(await Array.fromAsync(readDelivery(path, 1))), a);
    assert.deepEqual(concat(await Array.fromAsync(readDelivery(path, 2))), b);
  });
});

Deno.test("sqliteSink() stores an empty delivery as a row with no chunk rows and NULL metadata", async () => {
  await withDatabase(async (path) => {
    const receipt = await sqliteSink(path).deliver(
      ReadableStream.from<Uint8Array>([]),
      { size: 0 },
    );
    assert.equal(receipt.bytes, 0);
    assert.equal(receipt.sha256, sha256(new Uint8Array()));
    assert.deepEqual(rowCounts(path), { deliveries: 1, chunks: 0 });
    {
      using db = new DatabaseSync(path);
      const row = db.prepare("SELECT * FROM deliveries").get()!;
      assert.equal(row.name, null);
      assert.equal(row.content_type, null);
      assert.equal(row.metadata, null);
    }
    assert.deepEqual(await Array.fromAsync(readDelivery(path, 1)), []);
  });
});

Deno.test("sqliteSink() rejects with the source's error, leaves no rows, and the next delivery works", async () => {
  await withDatabase(async (path) => {
    const boom = new Error("source broke");
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 3) return controller.error(boom);
        sent++;
        controller.enqueue(randomBytes(600));
      },
    });
    const sink = sqliteSink(path, { chunkBytes: 500 });
    await assert.rejects(sink.deliver(failing), (error) => error === boom);
    assert.deepEqual(rowCounts(path), { deliveries: 0, chunks: 0 });

    const bytes = randomBytes(1234);
    const receipt = await sink.deliver(streamOf(bytes, 100));
    assert.equal(receipt.sha256, sha256(bytes));
    assert.deepEqual(rowCounts(path), { deliveries: 1, chunks: 3 });
    assert.deepEqual(
      concat(
        await Array.fromAsync(readDelivery(path, receipt.detail!.id as number)),
      ),
      bytes,
    );
  });
});

Deno.test("sqliteSink() rejects with CancelledError when aborted mid-stream, cancels the source and leaves no rows", async () => {
  await withDatabase(async (path) => {
    const source = gatedStream(randomBytes(3000), randomBytes(3000));
    const controller = new AbortController();
    const delivery = sqliteSink(path, { chunkBytes: 1000 }).deliver(
      source.stream,
      {},
      { signal: controller.signal },
    );
    await source.pulled;
    controller.abort(new Error("user gave up"));
    await assert.rejects(delivery, CancelledError);
    assert.ok(await source.cancelled instanceof CancelledError);
    assert.deepEqual(rowCounts(path), { deliveries: 0, chunks: 0 });
  });
});

Deno.test("sqliteSink() rejects with CancelledError and reads nothing when the signal is already aborted", async () => {
  await withDatabase(async (path) => {
    const source = gatedStream(randomBytes(10), randomBytes(10));
    await assert.rejects(
      sqliteSink(path).deliver(source.stream, {}, {
        signal: AbortSignal.abort(),
      }),
      CancelledError,
    );
    assert.ok(await source.cancelled instanceof CancelledError);
    assert.deepEqual(rowCounts(path), { deliveries: 0, chunks: 0 });
  });
});

Deno.test("sqliteSink() rejects with IntegrityError when meta.size differs, and leaves no rows", async () => {
  await withDatabase(async (path) => {
    const sink = sqliteSink(path, { chunkBytes: 100 });
    await sink.deliver(streamOf(randomBytes(50)));
    await assert.rejects(
      sink.deliver(streamOf(randomBytes(1000), 64), { size: 999 }),
      (error) => error instanceof IntegrityError && error.check === "size",
    );
    await assert.rejects(
      sink.deliver(streamOf(randomBytes(1000), 64), { size: 1001 }),
      IntegrityError,
    );
    assert.deepEqual(rowCounts(path), { deliveries: 1, chunks: 1 });
  });
});

Deno.test("sqliteSink() shows other connections no row of a delivery in progress, and does not block their reads", async () => {
  await withDatabase(async (path) => {
    const sink = sqliteSink(path, { chunkBytes: 1000 });
    const earlier = randomBytes(2500);
    await sink.deliver(streamOf(earlier));
    const source = gatedStream(randomBytes(5000), randomBytes(5000));
    const delivery = sink.deliver(source.stream);
    await source.pulled;
    await new Promise((resolve) => setTimeout(resolve, 20));

    assert.deepEqual(rowCounts(path), { deliveries: 1, chunks: 3 });
    assert.deepEqual(
      concat(await Array.fromAsync(readDelivery(path, 1))),
      earlier,
    );
    assert.throws(() => readDelivery(path, 2), DeliveryNotFoundError);

    source.release();
    const receipt = await delivery;
    assert.equal(receipt.bytes, 10_000);
    assert.deepEqual(rowCounts(path), { deliveries: 2, chunks: 13 });
  });
});

Deno.test("readDelivery() keeps reading the delivery as it was when opened, even if it is deleted meanwhile", async () => {
  await withDatabase(async (path) => {
    const bytes = randomBytes(3000);
    await sqliteSink(path, { chunkBytes: 1000 }).deliver(streamOf(bytes));
    const reader = readDelivery(path, 1).getReader();
    const first = await reader.read();
    {
      using db = new DatabaseSync(path);
      db.exec("DELETE FROM deliveries WHERE id = 1");
    }
    assert.deepEqual(rowCounts(path), { deliveries: 0, chunks: 0 });
    const pieces = [first.value!];
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      pieces.push(r.value);
    }
    assert.deepEqual(concat(pieces), bytes);
  });
});

Deno.test("sqliteSink() lets a second delivery in this process wait asynchronously for the first to commit", async () => {
  await withDatabase(async (path) => {
    const sink = sqliteSink(path, { chunkBytes: 1000 });
    const slow = gatedStream(randomBytes(1500), randomBytes(1500));
    const first = sink.deliver(slow.stream, { name: "first" });
    await slow.pulled;
    const secondBytes = randomBytes(2000);
    let secondDone = false;
    const second = sink.deliver(streamOf(secondBytes), { name: "second" })
      .finally(() => secondDone = true);

    // Timers still fire while the second delivery waits for the lock.
    let ticks = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      ticks++;
    }
    assert.equal(ticks, 5);
    assert.equal(secondDone, false);

    slow.release();
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(a.detail, { table: "deliveries", id: 1 });
    assert.deepEqual(b.detail, { table: "deliveries", id: 2 });
    assert.equal(b.sha256, sha256(secondBytes));
    assert.deepEqual(rowCounts(path), { deliveries: 2, chunks: 5 });
  });
});

Deno.test("sqliteSink() rejects with a retryable DatabaseBusyError when another connection holds the write lock past busyTimeoutMs", async () => {
  await withDatabase(async (path) => {
    await sqliteSink(path).deliver(streamOf(randomBytes(10)));
    using holder = new DatabaseSync(path);
    holder.exec("BEGIN IMMEDIATE");
    const source = gatedStream(randomBytes(10), randomBytes(10));
    const started = performance.now();
    const error = await sqliteSink(path, { busyTimeoutMs: 100 })
      .deliver(source.stream)
      .then(() => assert.fail("the delivery should fail"), (e: unknown) => e);
    const elapsed = performance.now() - started;
    assert.ok(error instanceof DatabaseBusyError);
    assert.equal(error.retryable, true);
    assert.equal(error.path, path);
    assert.equal(
      error.message,
      `Cannot deliver to ${path}: the database is locked by another writer`,
    );
    assert.ok(elapsed >= 90, `gave up after ${elapsed} ms`);
    assert.ok(await source.cancelled instanceof DatabaseBusyError);
    holder.exec("ROLLBACK");
    assert.deepEqual(rowCounts(path), { deliveries: 1, chunks: 1 });
  });
});

Deno.test("sqliteSink() stops waiting for the write lock with CancelledError when aborted", async () => {
  await withDatabase(async (path) => {
    using holder = new DatabaseSync(path);
    holder.exec("PRAGMA journal_mode = WAL; BEGIN IMMEDIATE");
    const controller = new AbortController();
    const delivery = sqliteSink(path).deliver(streamOf(randomBytes(10)), {}, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 30);
    await assert.rejects(delivery, CancelledError);
    holder.exec("ROLLBACK");
  });
});

Deno.test("sqliteSink() and readDelivery() throw TypeError for table names SQLite would misread or reserves", () => {
  const bad = [
    "",
    "1abc",
    "a-b",
    "a b",
    'x"; DROP TABLE t; --',
    "x".repeat(64),
    "sqlite_stat1",
    "SQLITE_x",
    "naïve",
  ];
  for (const table of bad) {
    assert.throws(
      () => sqliteSink("x.db", { table }),
      (error) =>
        error instanceof TypeError &&
        /^Cannot use .* as a table name: /.test(error.message),
      table,
    );
    assert.throws(() => readDelivery("x.db", 1, { table }), TypeError, table);
  }
  sqliteSink("x.db", { table: "_" + "x".repeat(62) });
  sqliteSink("x.db", { table: "Uploads_2" });
});

Deno.test("sqliteSink() throws RangeError for bad chunkBytes or busyTimeoutMs, and TypeError for an empty or in-memory path", () => {
  for (const chunkBytes of [0, -1, 1.5, NaN, Infinity, 1024 * MiB]) {
    assert.throws(() => sqliteSink("x.db", { chunkBytes }), RangeError);
  }
  for (const busyTimeoutMs of [-1, NaN]) {
    assert.throws(() => sqliteSink("x.db", { busyTimeoutMs }), RangeError);
  }
  assert.throws(() => sqliteSink(""), TypeError);
  assert.throws(() => sqliteSink(":memory:"), TypeError);
  assert.throws(() => readDelivery("x.db", 1.5), RangeError);
});

Deno.test("readDelivery() throws DeliveryNotFoundError for a missing id or a missing table", async () => {
  await withDatabase(async (path) => {
    await sqliteSink(path).deliver(streamOf(randomBytes(10)));
    assert.throws(
      () => readDelivery(path, 2),
      (error) =>
        error instanceof DeliveryNotFoundError && error.id === 2 &&
        error.retryable === false &&
        error.message ===
          `Cannot read delivery 2 from ${path}#deliveries: no such delivery`,
    );
    assert.throws(
      () => readDelivery(path, 1, { table: "uploads" }),
      DeliveryNotFoundError,
    );
  });
});

Deno.test("readDelivery() errors with IntegrityError when a chunk row was tampered with", async () => {
  await withDatabase(async (path) => {
    await sqliteSink(path, { chunkBytes: 1000 }).deliver(
      streamOf(randomBytes(3000)),
    );
    {
      using db = new DatabaseSync(path);
      const row = db.prepare(
        "SELECT data FROM deliveries_chunks WHERE delivery_id = 1 AND seq = 1",
      ).get()!;
      const data = row.data as Uint8Array;
      data[500] = data[500]! ^ 0xff;
      db.prepare(
        "UPDATE deliveries_chunks SET data = ? WHERE delivery_id = 1 AND seq = 1",
      ).run(data);
    }
    const { parts, error } = await drain(readDelivery(path, 1));
    assert.ok(error instanceof IntegrityError);
    assert.equal(error.check, "sha256");
    assert.equal(parts.length, 3);
  });
});

Deno.test("readDelivery() errors with IntegrityError when a chunk row is missing or one too many", async () => {
  await withDatabase(async (path) => {
    const sink = sqliteSink(path, { chunkBytes: 1000 });
    await sink.deliver(streamOf(randomBytes(3000)));
    await sink.deliver(streamOf(randomBytes(3000)));
    {
      using db = new DatabaseSync(path);
      db.exec(
        "DELETE FROM deliveries_chunks WHERE delivery_id = 1 AND seq = 1",
      );
      db.exec(
        "INSERT INTO deliveries_chunks VALUES (2, 3, zeroblob(10))",
      );
    }
    const missing = await drain(readDelivery(path, 1));
    assert.ok(missing.error instanceof IntegrityError);
    assert.equal(missing.error.check, "size");
    assert.equal(missing.bytes.length, 1000);
    const extra = await drain(readDelivery(path, 2));
    assert.ok(extra.error instanceof IntegrityError);
    assert.equal(extra.error.check, "size");
    assert.equal(extra.bytes.length, 3000);
  });
});

Deno.test("readDelivery() errors with CancelledError when its signal aborts mid-stream", async () => {
  await withDatabase(async (path) => {
    await sqliteSink(path, { chunkBytes: 100 }).deliver(
      streamOf(randomBytes(1000)),
    );
    const controller = new AbortController();
    const reader = readDelivery(path, 1, { signal: controller.signal })
      .getReader();
    assert.equal((await reader.read()).value?.length, 100);
    controller.abort();
    await assert.rejects(reader.read(), CancelledError);
    assert.throws(
      () => readDelivery(path, 1, { signal: controller.signal }),
      CancelledError,
    );
  });
});

Deno.test("sqliteSink() with a custom table keeps its deliveries in tables of their own", async () => {
  await withDatabase(async (path) => {
    const uploadBytes = randomBytes(300);
    const defaultBytes = randomBytes(200);
    const uploads = await sqliteSink(path, {
      table: "uploads",
      chunkBytes: 100,
    })
      .deliver(streamOf(uploadBytes), { name: "u" });
    const deliveries = await sqliteSink(path, { chunkBytes: 100 })
      .deliver(streamOf(defaultBytes), { name: "d" });
    assert.equal(uploads.location, `${path}#uploads/1`);
    assert.equal(deliveries.location, `${path}#deliveries/1`);
    assert.deepEqual(rowCounts(path, "uploads"), { deliveries: 1, chunks: 3 });
    assert.deepEqual(rowCounts(path), { deliveries: 1, chunks: 2 });
    {
      using db = new DatabaseSync(path);
      const tables = db.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
      ).all().map((r) => r.name);
      assert.deepEqual(tables, [
        "deliveries",
        "deliveries_chunks",
        "uploads",
        "uploads_chunks",
      ]);
    }
    assert.deepEqual(
      concat(
        await Array.fromAsync(readDelivery(path, 1, { table: "uploads" })),
      ),
      uploadBytes,
    );
    assert.deepEqual(
      concat(await Array.fromAsync(readDelivery(path, 1))),
      defaultBytes,
    );
  });
});
