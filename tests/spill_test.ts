// SpillStore, cleanupStale and spillStream on real directories, with a real
// second process holding a store, and with hostile entries in the root.

import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import { basename, join } from "node:path";
import { CancelledError, LimitError } from "../core/errors.ts";
import {
  cleanupStale,
  SpillNotFoundError,
  SpillStore,
  spillStream,
} from "../spill/mod.ts";
import { MiB, randomBytes, sha256, streamOf } from "./_data.ts";
import { names, tempDir } from "./_fs.ts";

const HOUR = 3_600_000;
const CHILD = new URL("./_spill_child.ts", import.meta.url).pathname;

/** A stale-looking store directory name, `hours` old. */
const oldName = (hours: number, random = "0123456789abcdef") =>
  `spill_${Math.floor((Date.now() - hours * HOUR) / 1000)}_${random}`;

Deno.test("SpillStore round-trips bytes and streams up to 64 MiB", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  const info = await Deno.stat(store.path);
  assert.ok(info.isDirectory);
  assert.equal(info.mode! & 0o777, 0o700);
  assert.match(basename(store.path), /^spill_\d+_[0-9a-f]{16}$/);

  const values: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one", randomBytes(1)],
    ["odd", randomBytes(MiB + 17)],
    ["big", randomBytes(64 * MiB)],
  ];
  let total = 0;
  for (const [key, bytes] of values) {
    const result = await store.put(key, bytes);
    assert.deepEqual(result, { size: bytes.length, sha256: sha256(bytes) });
    const streamed = await store.put(
      `${key}.stream`,
      streamOf(bytes, 65_537),
    );
    assert.deepEqual(streamed, result);
    total += 2 * bytes.length;
  }
  for (const [key, bytes] of values) {
    for (const k of [key, `${key}.stream`]) {
      const back = await new Response(store.get(k)).bytes();
      assert.equal(sha256(back), sha256(bytes), k);
      assert.ok(store.has(k));
    }
  }
  assert.equal(store.size, total);
  assert.equal([...store.keys()].length, 8);
  assert.deepEqual(await names(join(store.path, "tmp")), []);
});

Deno.test("SpillStore replaces, deletes, and a get in progress keeps its version", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  const first = randomBytes(3 * MiB);
  await store.put("k", first);
  const reading = store.get("k");
  await store.put("k", randomBytes(10)); // replaced under the reader
  assert.equal(store.size, 10);
  assert.equal(sha256(await new Response(reading).bytes()), sha256(first));
  const again = store.get("k");
  assert.equal(await store.delete("k"), true);
  assert.equal(await store.delete("k"), false);
  assert.equal((await new Response(again).bytes()).length, 10);
  assert.equal(store.size, 0);
  assert.throws(() => store.get("k"), SpillNotFoundError);
  assert.deepEqual(await names(join(store.path, "data")), []);
});

Deno.test("SpillStore rejects bad keys with a TypeError", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  for (
    const key of [
      "",
      ".",
      "..",
      "a/b",
      "../x",
      "a\\b",
      "nul\0",
      "x".repeat(201),
    ]
  ) {
    await assert.rejects(
      store.put(key, new Uint8Array(1)),
      (e) => e instanceof TypeError && /spill key/.test(e.message),
      JSON.stringify(key),
    );
    assert.throws(() => store.get(key), TypeError);
  }
  // 200 bytes is fine, and so is a name that only looks like the lock.
  await store.put("é".repeat(100), new Uint8Array(1));
  await store.put(".lock", new Uint8Array(1));
  assert.equal(store.size, 2);
  assert.deepEqual(await names(join(store.path, "tmp")), []);
});

Deno.test("SpillStore enforces maxBytes before writing and leaves no partial file", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path, maxBytes: MiB });
  await store.put("a", randomBytes(MiB - 10));
  await assert.rejects(
    store.put("b", randomBytes(11)),
    (e) => e instanceof LimitError && e.limit === MiB,
  );
  // A stream that grows past the limit is stopped and cancelled.
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(4096)),
    cancel: () => void (cancelled = true),
  });
  await assert.rejects(store.put("c", endless), LimitError);
  assert.ok(cancelled, "the source was cancelled");
  assert.deepEqual([...store.keys()], ["a"]);
  assert.equal(store.size, MiB - 10);
  assert.deepEqual(await names(join(store.path, "tmp")), []);
  assert.deepEqual(await names(join(store.path, "data")), ["a"]);
  // Replacing a value counts only the difference.
  await store.put("a", randomBytes(MiB));
  assert.equal(store.size, MiB);
});

Deno.test("SpillStore keeps minFreeBytes free on the file system", async () => {
  await using root = await tempDir();
  const stats = await statfs(root.path);
  const free = stats.bavail * stats.bsize;
  await using store = await SpillStore.open({
    root: root.path,
    minFreeBytes: free - 1024, // about 1 KiB may still be used
  });
  await assert.rejects(
    store.put("bytes", randomBytes(64 * 1024)),
    (e) => e instanceof LimitError && /below the minimum/.test(e.message),
  );
  await assert.rejects(
    store.put("stream", streamOf(randomBytes(16 * MiB), 64 * 1024)),
    LimitError,
  );
  assert.equal(store.size, 0);
  assert.deepEqual(await names(join(store.path, "tmp")), []);
  assert.deepEqual(await names(join(store.path, "data")), []);
});

Deno.test("SpillStore.put aborted by its signal throws CancelledError and leaves nothing", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  const controller = new AbortController();
  let sent = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if ((sent += 65_536) > MiB) controller.abort();
      c.enqueue(new Uint8Array(65_536));
    },
  });
  await assert.rejects(
    store.put("k", source, { signal: controller.signal }),
    CancelledError,
  );
  assert.equal(store.has("k"), false);
  assert.deepEqual(await names(join(store.path, "tmp")), []);
});

Deno.test("SpillStore.put of bytes aborted mid-write throws CancelledError and keeps the old value", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  const old = randomBytes(1000);
  await store.put("k", old);
  const controller = new AbortController();
  const putting = store.put("k", randomBytes(32 * MiB), {
    signal: controller.signal,
  });
  controller.abort();
  await assert.rejects(putting, CancelledError);
  assert.equal(store.size, 1000);
  assert.equal(sha256(await new Response(store.get("k")).bytes()), sha256(old));
  assert.deepEqual(await names(join(store.path, "tmp")), []);
});

Deno.test("SpillStore.get aborted by its signal errors the stream with CancelledError", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  for (const size of [100, 3 * MiB]) { // read whole, and read in pieces
    await store.put("k", randomBytes(size));
    const controller = new AbortController();
    const reader = store.get("k", { signal: controller.signal }).getReader();
    controller.abort();
    await assert.rejects(reader.read(), CancelledError, `size ${size}`);
    assert.ok(store.has("k"));
  }
});

Deno.test("two SpillStores on one root stay separate", async () => {
  await using root = await tempDir();
  const a = await SpillStore.open({ root: root.path });
  await using b = await SpillStore.open({ root: root.path });
  assert.notEqual(a.path, b.path);
  await a.put("k", new TextEncoder().encode("from a"));
  await b.put("k", new TextEncoder().encode("from b"));
  assert.equal(await new Response(a.get("k")).text(), "from a");
  await a.close();
  await a.close(); // idempotent
  await assert.rejects(a.put("x", new Uint8Array(1)), /closed/);
  assert.equal(await new Response(b.get("k")).text(), "from b");
  assert.deepEqual(await names(root.path), [basename(b.path)]);
});

Deno.test("await using deletes the store and releases its lock when the scope throws", async () => {
  await using root = await tempDir();
  let path = "";
  await assert.rejects(async () => {
    await using store = await SpillStore.open({ root: root.path });
    path = store.path;
    await store.put("k", randomBytes(1000));
    throw new Error("boom");
  }, /boom/);
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  assert.deepEqual(await names(root.path), []);
});

Deno.test("cleanupStale skips a store a live process holds, and removes it once that process is killed", async () => {
  await using root = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, root.path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the child printed its store");
    line += value;
  }
  const held = line.trim();
  const later = Date.now() + 48 * HOUR; // old enough to go, were it dead
  try {
    const report = await cleanupStale(root.path, { now: later });
    assert.deepEqual(report.skippedLocked, [held]);
    assert.deepEqual(report.removed, []);
    assert.deepEqual(await names(join(root.path, held, "data")), ["held"]);
    // A store in this process is just as safe.
    await using mine = await SpillStore.open({
      root: root.path,
      cleanupStale: false,
    });
    const again = await cleanupStale(root.path, { now: later });
    assert.deepEqual(
      again.skippedLocked.sort(),
      [held, basename(mine.path)].sort(),
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
  }
  const report = await cleanupStale(root.path, { now: later });
  assert.deepEqual(report.removed, [held]);
  assert.deepEqual(await names(root.path), []);
});

Deno.test("cleanupStale never follows a symlink named like a store, nor touches anything but stale stores", async () => {
  await using root = await tempDir();
  await using outside = await tempDir();
  const victimDir = join(outside.path, "victim");
  await Deno.mkdir(victimDir);
  await Deno.writeTextFile(join(victimDir, "precious"), "keep");
  const victimFile = join(outside.path, "beside-root.txt");
  await Deno.writeTextFile(victimFile, "keep");

  const link = oldName(100, "deadbeefdeadbeef");
  await Deno.symlink(victimDir, join(root.path, link));
  const fileLike = oldName(100, "feedfacefeedface");
  await Deno.writeTextFile(join(root.path, fileLike), "a file, not a store");
  const others = ["foo", "spill_abc", "spill_123", "spill_1_XYZ", ".lock"];
  for (const name of others) await Deno.mkdir(join(root.path, name));
  const stale = oldName(100);
  await Deno.mkdir(join(root.path, stale, "data"), { recursive: true });
  // A stale store holding a symlink out: removed without following it.
  await Deno.symlink(victimDir, join(root.path, stale, "data", "out"));

  const report = await cleanupStale(root.path);
  assert.deepEqual(report.removed, [stale]);
  assert.deepEqual(
    report.ignored.sort(),
    [...others, link, fileLike].sort(),
  );
  assert.equal(await Deno.readTextFile(join(victimDir, "precious")), "keep");
  assert.equal(await Deno.readTextFile(victimFile), "keep");
  assert.ok((await Deno.lstat(join(root.path, link))).isSymlink);
  assert.deepEqual(
    await names(root.path),
    [...others, link, fileLike].sort(),
  );
});

Deno.test("cleanupStale removes nothing when the clock is broken, and skips names from the future", async () => {
  await using root = await tempDir();
  const stale = oldName(100);
  const future = `spill_${
    Math.floor(Date.now() / 1000) + 86_400
  }_0123456789abcdef`;
  const young = oldName(1);
  for (const name of [stale, future, young]) {
    await Deno.mkdir(join(root.path, name));
  }
  const broken = await cleanupStale(root.path, { now: Date.UTC(1970, 0, 2) });
  assert.equal(broken.brokenClock, true);
  assert.deepEqual(broken.removed, []);
  assert.equal(broken.skippedYoung.length, 3);

  const report = await cleanupStale(root.path);
  assert.equal(report.brokenClock, false);
  assert.deepEqual(report.removed, [stale]);
  assert.deepEqual(report.skippedYoung.sort(), [future, young].sort());
  assert.deepEqual(await names(root.path), [future, young].sort());
});

Deno.test("SpillStore.open collects stale stores on its root unless told not to", async () => {
  await using root = await tempDir();
  const stale = oldName(30);
  await Deno.mkdir(join(root.path, stale));
  await Deno.writeTextFile(join(root.path, stale, ".lock"), "");
  {
    await using _kept = await SpillStore.open({
      root: root.path,
      cleanupStale: false,
    });
    assert.ok((await names(root.path)).includes(stale));
  }
  {
    await using _young = await SpillStore.open({
      root: root.path,
      staleAfterMs: 48 * HOUR,
    });
    assert.ok((await names(root.path)).includes(stale));
  }
  await using store = await SpillStore.open({ root: root.path });
  assert.deepEqual(await names(root.path), [basename(store.path)]);
});

Deno.test("spillStream replays a one-shot stream any number of times, and disposal deletes it", async () => {
  await using root = await tempDir();
  await using store = await SpillStore.open({ root: root.path });
  const bytes = randomBytes(5 * MiB + 3);
  let pulls = 0;
  const once = streamOf(bytes, 100_000).pipeThrough(
    new TransformStream({
      transform(piece, c) {
        pulls++;
        c.enqueue(piece);
      },
    }),
  );
  {
    await using spilled = await spillStream(once, store);
    assert.equal(spilled.size, bytes.length);
    assert.equal(spilled.sha256, sha256(bytes));
    const seen = pulls;
    for (let i = 0; i < 3; i++) {
      const back = await new Response(spilled.replay()).bytes();
      assert.equal(sha256(back), sha256(bytes));
    }
    assert.equal(pulls, seen, "replays read the disk, not the source");
    assert.ok(store.has(spilled.key));
  }
  assert.deepEqual([...store.keys()], []);
  assert.equal(store.size, 0);
});
