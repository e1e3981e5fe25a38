// fileSink and AtomicFile on real directories: round trips, every way a
// delivery can fail leaving nothing behind, and escapes from a root.

import assert from "node:assert/strict";
import { join } from "node:path";
import { AtomicFile } from "../core/atomic_file.ts";
import {
  CancelledError,
  IntegrityError,
  TargetExistsError,
  UnsafeEntryError,
} from "../core/errors.ts";
import { fileSink } from "../sinks/mod.ts";
import { MiB, randomBytes, sha256, streamOf } from "./_data.ts";
import { names, tempDir } from "./_fs.ts";

/** A stream of `bytes` that errors with `error` after `after` bytes, and records being cancelled. */
function failingSource(bytes: Uint8Array, after: number, error: Error) {
  const state = { cancelled: false as boolean, reason: undefined as unknown };
  let at = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= after) return controller.error(error);
      controller.enqueue(bytes.slice(at, at + 65536));
      at += 65536;
    },
    cancel(reason) {
      state.cancelled = true;
      state.reason = reason;
    },
  });
  return { stream, state };
}

Deno.test("fileSink writes a multi-MiB stream atomically and its receipt has the bytes and SHA-256", async () => {
  await using dir = await tempDir();
  const bytes = randomBytes(9 * MiB + 3);
  const path = join(dir.path, "out.bin");
  const before = Date.now();
  const receipt = await fileSink(path, { mode: 0o600 }).deliver(
    streamOf(bytes, 100_003),
  );
  assert.equal(receipt.sink, "file");
  assert.equal(receipt.location, path);
  assert.equal(receipt.bytes, bytes.length);
  assert.equal(receipt.sha256, sha256(bytes));
  assert.equal(receipt.attempts, 1);
  assert.ok(receipt.startedAt.getTime() >= before - 1);
  assert.ok(receipt.finishedAt >= receipt.startedAt);
  assert.equal(sha256(await Deno.readFile(path)), sha256(bytes));
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.deepEqual(await names(dir.path), ["out.bin"]);
});

Deno.test("fileSink with a source that errors halfway rejects with its error and leaves the old file and no temp file", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "out.bin");
  await Deno.writeTextFile(path, "old");
  const boom = new Error("source broke");
  const { stream } = failingSource(randomBytes(4 * MiB), 2 * MiB, boom);
  await assert.rejects(
    fileSink(path, { overwrite: true }).deliver(stream),
    (e) => e === boom,
  );
  assert.equal(await Deno.readTextFile(path), "old");
  assert.deepEqual(await names(dir.path), ["out.bin"]);
});

Deno.test("fileSink aborted mid-stream rejects with CancelledError, cancels the source and writes nothing", async () => {
  await using dir = await tempDir();
  const controller = new AbortController();
  let pulled = 0;
  let cancelled = false;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if ((pulled += 65536) > MiB) controller.abort(new Error("user stop"));
      c.enqueue(new Uint8Array(65536));
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(
    fileSink(join(dir.path, "out.bin")).deliver(source, {}, {
      signal: controller.signal,
    }),
    CancelledError,
  );
  assert.ok(cancelled);
  assert.deepEqual(await names(dir.path), []);
});

Deno.test("fileSink rejects a delivery whose length differs from meta.size with IntegrityError and writes nothing", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "out.bin");
  await assert.rejects(
    fileSink(path).deliver(streamOf(randomBytes(1000)), { size: 1001 }),
    (e) => e instanceof IntegrityError && e.check === "size",
  );
  await assert.rejects(
    fileSink(path).deliver(streamOf(randomBytes(1000)), { size: -1 }),
    RangeError,
  );
  assert.deepEqual(await names(dir.path), []);
  const receipt = await fileSink(path).deliver(streamOf(randomBytes(1000)), {
    size: 1000,
  });
  assert.equal(receipt.bytes, 1000);
});

Deno.test("fileSink refuses to replace an existing file unless overwrite is set, and cancels the source", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "out.bin");
  await Deno.writeTextFile(path, "keep me");
  let cancelled = false;
  const source = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(10)),
    cancel: () => {
      cancelled = true;
    },
  });
  await assert.rejects(fileSink(path).deliver(source), TargetExistsError);
  assert.ok(cancelled);
  assert.equal(await Deno.readTextFile(path), "keep me");
  await fileSink(path, { overwrite: true }).deliver(streamOf(randomBytes(5)));
  assert.equal((await Deno.stat(path)).size, 5);
  assert.deepEqual(await names(dir.path), ["out.bin"]);
});

Deno.test("fileSink with root rejects .., absolute escapes and symlinked parents that lead outside, before writing", async () => {
  await using outside = await tempDir();
  await using dir = await tempDir();
  const root = join(dir.path, "root");
  await Deno.mkdir(join(root, "sub"), { recursive: true });
  await Deno.symlink(outside.path, join(root, "out-link"));
  await Deno.symlink(join(root, "sub"), join(root, "in-link"));
  const attempts = [
    "../escape.bin",
    "sub/../../escape.bin",
    join(outside.path, "abs.bin"),
    "out-link/victim.bin",
    ".",
    "",
  ];
  for (const path of attempts) {
    if (path === "") {
      assert.throws(() => fileSink(path, { root }), TypeError);
      continue;
    }
    let pulled = false;
    const source = new ReadableStream<Uint8Array>({
      pull: (c) => {
        pulled = true;
        c.enqueue(new Uint8Array(1));
        c.close();
      },
    }, { highWaterMark: 0 });
    await assert.rejects(
      fileSink(path, { root }).deliver(source),
      UnsafeEntryError,
      path,
    );
    assert.equal(pulled, false, `${path}: nothing read before the check`);
  }
  assert.deepEqual(await names(outside.path), []);
  assert.deepEqual(await names(dir.path), ["root"]);
  assert.deepEqual(await names(root), ["in-link", "out-link", "sub"]);
  assert.deepEqual(await names(join(root, "sub")), []);

  // Inside the root, through a link that stays inside, and by absolute path.
  const a = await fileSink("in-link/a.bin", { root }).deliver(
    streamOf(randomBytes(10)),
  );
  assert.equal(a.location, join(await Deno.realPath(root), "sub", "a.bin"));
  await fileSink(join(root, "b.bin"), { root }).deliver(
    streamOf(randomBytes(10)),
  );
  // Paths are normalized before the file system sees them, so ".." after a
  // link climbs back out of the link's name, not out of its target.
  const c = await fileSink("out-link/../c.bin", { root }).deliver(
    streamOf(randomBytes(10)),
  );
  assert.equal(c.location, join(await Deno.realPath(root), "c.bin"));
  assert.deepEqual(await names(join(root, "sub")), ["a.bin"]);
  assert.deepEqual(await names(root), [
    "b.bin",
    "c.bin",
    "in-link",
    "out-link",
    "sub",
  ]);
  assert.deepEqual(await names(outside.path), []);
});

Deno.test("AtomicFile removes its temp file when the scope throws, and never replaces a file without overwrite", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "f.bin");
  await assert.rejects(async () => {
    await using file = await AtomicFile.create(path);
    await file.write(randomBytes(3 * MiB));
    assert.equal(file.size, 3 * MiB);
    throw new Error("stop");
  }, { message: "stop" });
  assert.deepEqual(await names(dir.path), []);

  // Another writer takes the path between create and commit.
  {
    await using file = await AtomicFile.create(path);
    await file.write(new TextEncoder().encode("mine"));
    await Deno.writeTextFile(path, "theirs");
    await assert.rejects(file.commit(), TargetExistsError);
  }
  assert.equal(await Deno.readTextFile(path), "theirs");
  assert.deepEqual(await names(dir.path), ["f.bin"]);
  await assert.rejects(AtomicFile.create(path), TargetExistsError);

  {
    await using file = await AtomicFile.create(path, { overwrite: true });
    await file.write(new TextEncoder().encode("new"));
    await file.commit();
    await assert.rejects(file.write(new Uint8Array(1)), TypeError);
  }
  assert.equal(await Deno.readTextFile(path), "new");
  assert.deepEqual(await names(dir.path), ["f.bin"]);
});
