import assert from "node:assert/strict";
import {
  collect,
  concat,
  drain,
  randomBytes,
  streamOf,
} from "../tests/_data.ts";
import { deriveFileKeys } from "./_sealed.ts";
import {
  ChunkNotFoundError,
  type ChunkStore,
  memoryStore,
  type StoreOptions,
} from "./chunk_store.ts";
import { type DataMap, parseDataMap, type Suite, SUITES } from "./data_map.ts";
import { type DecryptEvent, decryptStream } from "./decrypt_stream.ts";
import { dirStore } from "./dir_store.ts";
import {
  CancelledError,
  HttpError,
  IntegrityError,
  PartialFailureError,
} from "./errors.ts";
import { multiStore } from "./multi_store.ts";
import { seal, SealIncompleteError } from "./seal.ts";

const CHUNK = 65536;
const FAST = { baseDelayMs: 1, maxDelayMs: 2 };

/** A store wrapper that counts calls and can fail or corrupt them. */
function instrumented(inner: ChunkStore, hooks: {
  beforeGet?: (
    address: string,
    call: number,
    signal?: AbortSignal,
  ) => Promise<void> | void;
  afterGet?: (address: string, bytes: Uint8Array) => Uint8Array;
  beforePut?: (address: string, call: number) => void;
} = {}) {
  const calls = { get: 0, put: 0, has: 0, getsInFlight: 0, aborted: 0 };
  const perAddress = new Map<string, number>();
  const store: ChunkStore = {
    async get(address: string, options?: StoreOptions) {
      calls.get++;
      const n = (perAddress.get(address) ?? 0) + 1;
      perAddress.set(address, n);
      calls.getsInFlight++;
      try {
        await hooks.beforeGet?.(address, n, options?.signal);
        const bytes = await inner.get(address, options);
        return hooks.afterGet ? hooks.afterGet(address, bytes) : bytes;
      } catch (error) {
        if (options?.signal?.aborted) calls.aborted++;
        throw error;
      } finally {
        calls.getsInFlight--;
      }
    },
    put(address: string, bytes: Uint8Array, options?: StoreOptions) {
      calls.put++;
      try {
        hooks.beforePut?.(address, calls.put);
      } catch (error) {
        return Promise.reject(error);
      }
      return inner.put(address, bytes, options);
    },
    has(address: string, options?: StoreOptions) {
      calls.has++;
      return inner.has(address, options);
    },
  };
  return { store, calls, perAddress };
}

async function sealBytes(
  plain: Uint8Array,
  store: ChunkStore,
  suite: Suite = "aes-256-gcm",
  chunkSize = CHUNK,
) {
  return await seal(streamOf(plain), store, { suite, chunkSize });
}

function flipped(bytes: Uint8Array, at = 5): Uint8Array {
  const copy = bytes.slice();
  copy[at]! ^= 1;
  return copy;
}

for (const suite of SUITES) {
  Deno.test(`seal() and decryptStream() round-trip every edge size (${suite})`, async () => {
    const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 5];
    for (const size of sizes) {
      const plain = randomBytes(size);
      const store = memoryStore();
      const { dataMap, key } = await sealBytes(plain, store, suite);
      assert.equal(dataMap.size, size);
      assert.equal(dataMap.chunks.length, Math.max(1, Math.ceil(size / CHUNK)));
      const pieces = await collect(decryptStream(dataMap, key, store));
      assert.ok(pieces.every((p) => p.length > 0), "no empty pieces");
      if (size > CHUNK) assert.ok(pieces.length >= 2, "streams chunk by chunk");
      const out = concat(pieces);
      assert.equal(out.length, size);
      assert.deepEqual(out, plain);
    }
  });
}

Deno.test("seal() cuts the same chunks whatever the source's piece sizes", async () => {
  const plain = randomBytes(5 * CHUNK + 17);
  const key = randomBytes(32);
  const salt = randomBytes(32);
  const maps: DataMap[] = [];
  for (const piece of [1000, CHUNK, 3 * CHUNK + 1, plain.length]) {
    const { dataMap } = await seal(streamOf(plain, piece), memoryStore(), {
      chunkSize: CHUNK,
      key,
      salt,
    });
    maps.push(dataMap);
  }
  for (const map of maps) assert.deepEqual(map, maps[0]);
});

Deno.test("seal() and decryptStream() round-trip 1 MiB default chunks through a dirStore", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plain = randomBytes(3 * 1024 * 1024 + 333);
    const store = dirStore(dir);
    const { dataMap, key } = await seal(streamOf(plain, 100_000), store);
    assert.equal(dataMap.chunkSize, 1024 * 1024);
    assert.equal(dataMap.chunks.length, 4);
    const pieces = await collect(decryptStream(dataMap, key, store));
    assert.ok(pieces.length >= 2);
    assert.deepEqual(concat(pieces), plain);
    // Four chunk files, no temp files left behind.
    const files: string[] = [];
    for await (const shard of Deno.readDir(dir)) {
      for await (const f of Deno.readDir(`${dir}/${shard.name}`)) {
        files.push(f.name);
      }
    }
    assert.deepEqual(files.sort(), dataMap.chunks.map((c) => c.address).sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dirStore() refuses a chunk that does not match its address and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = dirStore(dir);
    await assert.rejects(
      store.put("ab".repeat(32), new Uint8Array(100)),
      (e) => e instanceof IntegrityError && e.check === "address",
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
    await assert.rejects(store.get("ab".repeat(32)), ChunkNotFoundError);
    assert.throws(() => store.pathOf("../../etc/passwd"), TypeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dirStore() with verifyOnRead catches a chunk corrupted on disk", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { dataMap } = await sealBytes(randomBytes(1000), dirStore(dir));
    const address = dataMap.chunks[0]!.address;
    const file = dirStore(dir).pathOf(address);
    await Deno.writeFile(file, flipped(await Deno.readFile(file)));
    await assert.rejects(
      dirStore(dir, { verifyOnRead: true }).get(address),
      (e) => e instanceof IntegrityError && e.retryable,
    );
    assert.equal((await dirStore(dir).get(address)).length, 1016);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const suite of SUITES) {
  Deno.test(`decryptStream() stops at a flipped bit and delivers nothing after it (${suite})`, async () => {
    const plain = randomBytes(4 * CHUNK);
    const base = memoryStore();
    const { dataMap, key } = await sealBytes(plain, base, suite);
    const bad = dataMap.chunks[2]!.address;
    const { store, perAddress } = instrumented(base, {
      afterGet: (address, bytes) =>
        address === bad ? flipped(bytes, 70) : bytes,
    });
    const { bytes, error } = await drain(
      decryptStream(dataMap, key, store, {
        retry: { ...FAST, maxAttempts: 3 },
      }),
    );
    assert.ok(error instanceof IntegrityError, String(error));
    assert.equal(error.check, "authentication tag");
    assert.deepEqual(bytes, plain.subarray(0, 2 * CHUNK));
    assert.equal(perAddress.get(bad), 3, "refetched per the retry policy");
  });
}

Deno.test("decryptStream() rejects chunks served in the wrong order (STREAM nonces)", async () => {
  const plain = randomBytes(3 * CHUNK);
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(plain, base);
  const [a, b] = [dataMap.chunks[0]!.address, dataMap.chunks[1]!.address];
  // A store that swaps the contents of chunks 0 and 1; sizes match, addresses are not checked.
  const { store } = instrumented(base);
  const swapped: ChunkStore = {
    ...store,
    get: (address, o) =>
      store.get(address === a ? b : address === b ? a : address, o),
  };
  const { bytes, error } = await drain(
    decryptStream(dataMap, key, swapped, {
      retry: { ...FAST, maxAttempts: 1 },
    }),
  );
  assert.ok(error instanceof IntegrityError);
  assert.equal(bytes.length, 0);
  // With verifyAddress the mismatch is named as such.
  const checked = await drain(
    decryptStream(dataMap, key, swapped, {
      verifyAddress: true,
      retry: { maxAttempts: 1 },
    }),
  );
  assert.ok(checked.error instanceof IntegrityError);
  assert.equal(checked.error.check, "address");
});

Deno.test("a chunk opens only at its own index and with its own last flag", async () => {
  for (const suite of SUITES) {
    const { cipher } = await deriveFileKeys(
      randomBytes(32),
      randomBytes(32),
      suite,
    );
    const plain = randomBytes(100);
    const sealed = await cipher.seal(1, false, plain);
    assert.deepEqual(await cipher.open(1, false, sealed), plain);
    await assert.rejects(cipher.open(0, false, sealed), IntegrityError);
    await assert.rejects(cipher.open(2, false, sealed), IntegrityError);
    await assert.rejects(
      cipher.open(1, true, sealed),
      IntegrityError,
      "truncation",
    );
    const final = await cipher.seal(1, true, plain);
    await assert.rejects(
      cipher.open(1, false, final),
      IntegrityError,
      "extension",
    );
  }
});

Deno.test("decryptStream() fails an altered data map before fetching any chunk", async () => {
  const plain = randomBytes(3 * CHUNK + 10);
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(plain, base);
  const chunks = dataMap.chunks;
  const last = chunks[chunks.length - 1]!;
  const edits: Record<string, DataMap> = {
    "dropped last chunk": {
      ...dataMap,
      size: 3 * CHUNK,
      chunks: chunks.slice(0, 3).map((c, i) => i === 2 ? { ...c } : c),
    },
    "extra chunk": {
      ...dataMap,
      size: 4 * CHUNK + 10,
      chunks: [...chunks.slice(0, 3), { ...chunks[0]! }, last],
    },
    "swapped chunks": {
      ...dataMap,
      chunks: [chunks[1]!, chunks[0]!, ...chunks.slice(2)],
    },
    "wrong salt": { ...dataMap, salt: "00".repeat(32) },
  };
  for (const [name, map] of Object.entries(edits)) {
    const { store, calls } = instrumented(base);
    const { bytes, error } = await drain(decryptStream(map, key, store));
    assert.ok(error instanceof IntegrityError, name);
    assert.equal(error.check, "commitment", name);
    assert.equal(bytes.length, 0, name);
    assert.equal(calls.get, 0, `${name}: nothing fetched`);
  }
});

Deno.test("decryptStream() with the wrong key fails cleanly before any fetch", async () => {
  const base = memoryStore();
  const { dataMap } = await sealBytes(randomBytes(2 * CHUNK), base);
  const { store, calls } = instrumented(base);
  const { bytes, error } = await drain(
    decryptStream(dataMap, randomBytes(32), store),
  );
  assert.ok(error instanceof IntegrityError);
  assert.match(error.message, /key does not match the data map/);
  assert.equal(error.retryable, false);
  assert.equal(bytes.length, 0);
  assert.equal(calls.get, 0);
  assert.throws(
    () => decryptStream(dataMap, new Uint8Array(16), store),
    TypeError,
  );
});

Deno.test("parseDataMap() rejects every malformed map with a TypeError naming the problem", async () => {
  const { dataMap } = await sealBytes(randomBytes(CHUNK + 1), memoryStore());
  const good = JSON.parse(JSON.stringify(dataMap));
  const bad: [unknown, RegExp][] = [
    ["{not json", /not valid JSON/],
    [[], /not a JSON object/],
    [{ ...good, format: "sluice/2" }, /unsupported format version "sluice\/2"/],
    [{ ...good, format: undefined }, /"format" must be "sluice\/1"/],
    [{ ...good, suite: "rot13" }, /"suite" must be one of/],
    [{ ...good, chunkSize: 1024 }, /"chunkSize" must be an integer/],
    [{ ...good, size: -1 }, /"size" must be a non-negative/],
    [{ ...good, size: 1.5 }, /"size" must be a non-negative/],
    [{ ...good, salt: "XY".repeat(32) }, /"salt" must be 64 lowercase hex/],
    [{ ...good, commitment: "ab" }, /"commitment" must be 64/],
    [{ ...good, chunks: {} }, /"chunks" must be an array/],
    [
      { ...good, chunks: good.chunks.slice(1) },
      /needs 2 chunks, but 1 are listed/,
    ],
    [
      { ...good, chunks: [good.chunks[0], { ...good.chunks[1], size: 99 }] },
      /chunk 1 "size" must be 17/,
    ],
    [{
      ...good,
      chunks: [good.chunks[0], { ...good.chunks[1], address: "AB".repeat(32) }],
    }, /chunk 1 "address"/],
    [
      { ...good, chunks: [good.chunks[0], { ...good.chunks[1], extra: 1 }] },
      /chunk 1 has unknown member "extra"/,
    ],
    [{ ...good, chunks: [good.chunks[0], null] }, /chunk 1 is not an object/],
    [{ ...good, key: "00" }, /unknown member "key"/],
  ];
  for (const [input, message] of bad) {
    assert.throws(
      () =>
        parseDataMap(typeof input === "string" ? input : JSON.stringify(input)),
      (e) => e instanceof TypeError && message.test(e.message),
      String(message),
    );
  }
  assert.throws(
    () =>
      decryptStream(
        { ...good, size: 5 } as DataMap,
        randomBytes(32),
        memoryStore(),
      ),
    TypeError,
  );
});

Deno.test("decryptStream() survives a store that fails transiently, reporting the retries", async () => {
  const plain = randomBytes(4 * CHUNK);
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(plain, base);
  const { store } = instrumented(base, {
    beforeGet: (_, call) => {
      if (call <= 2) {
        throw new HttpError({ status: 503, url: "http://127.0.0.1/" });
      }
    },
  });
  const events: DecryptEvent[] = [];
  const out = await new Response(
    decryptStream(dataMap, key, store, {
      retry: FAST,
      onProgress: (e) => events.push(e),
    }),
  ).bytes();
  assert.deepEqual(out, plain);
  assert.equal(events.filter((e) => e.type === "retry").length, 8);
  assert.equal(events[0]?.type, "verified");
  const progress = events.filter((e) => e.type === "progress");
  assert.deepEqual(progress.at(-1), {
    type: "progress",
    delivered: plain.length,
    total: plain.length,
  });
});

Deno.test("multiStore() fails over from a store serving a corrupt chunk to a good one", async () => {
  const plain = randomBytes(3 * CHUNK);
  const good = memoryStore();
  const { dataMap, key } = await sealBytes(plain, good);
  const corrupt = instrumented(good, {
    afterGet: (_, bytes) => flipped(bytes),
  });
  const healthy = instrumented(good);
  const both = multiStore([corrupt.store, healthy.store]);
  const out = await new Response(
    decryptStream(dataMap, key, both, { concurrency: 1 }),
  ).bytes();
  assert.deepEqual(out, plain);
  assert.equal(healthy.calls.get, 3);
  // The corrupt store was tried once, then ranked behind the good one.
  assert.equal(corrupt.calls.get, 1);
  assert.equal(both.ranking[0], healthy.store);
});

Deno.test("multiStore() reports a missing chunk only when no store has it", async () => {
  const good = memoryStore();
  const { dataMap } = await sealBytes(randomBytes(10), good);
  const address = dataMap.chunks[0]!.address;
  assert.equal(
    (await multiStore([memoryStore(), good]).get(address)).length,
    26,
  );
  await assert.rejects(
    multiStore([memoryStore(), memoryStore()]).get(address),
    ChunkNotFoundError,
  );
});

Deno.test("decryptStream() cancel aborts in-flight fetches and starts no new ones", async () => {
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(randomBytes(20 * CHUNK), base);
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const { store, calls } = instrumented(base, {
    beforeGet: async (address, _, signal) => {
      if (address === dataMap.chunks[0]!.address) return;
      // Later chunks hang until aborted.
      await new Promise<void>((_, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), {
          once: true,
        });
        gate.then(() => {});
      });
    },
  });
  const stream = decryptStream(dataMap, key, store, { concurrency: 4 });
  const reader = stream.getReader();
  const first = await reader.read();
  assert.equal(first.value?.length, CHUNK);
  await new Promise((r) => setTimeout(r, 20));
  const started = calls.get;
  assert.equal(started, 5, "chunk 0 plus a window of 4");
  await reader.cancel("client went away");
  await new Promise((r) => setTimeout(r, 50));
  release();
  assert.equal(calls.get, started, "no fetch starts after cancel");
  assert.equal(calls.getsInFlight, 0);
  assert.equal(calls.aborted, 4, "every in-flight fetch was aborted");
});

Deno.test("decryptStream() turns an abort of its signal into a CancelledError, never a retry", async () => {
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(randomBytes(8 * CHUNK), base);
  const controller = new AbortController();
  const events: DecryptEvent[] = [];
  const { store } = instrumented(base, {
    beforeGet: (_, __, signal) =>
      new Promise((resolve, reject) => {
        setTimeout(resolve, 30);
        signal?.addEventListener("abort", () => reject(signal.reason), {
          once: true,
        });
      }),
  });
  const stream = decryptStream(dataMap, key, store, {
    signal: controller.signal,
    onProgress: (e) => events.push(e),
  });
  setTimeout(() => controller.abort(new Error("user stop")), 50);
  const { error } = await drain(stream);
  assert.ok(error instanceof CancelledError, String(error));
  assert.equal(events.filter((e) => e.type === "retry").length, 0);
});

Deno.test("decryptStream() keeps fetches within the window of a slow consumer", async () => {
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(randomBytes(16 * CHUNK), base);
  const { store, calls } = instrumented(base);
  const reader = decryptStream(dataMap, key, store, { concurrency: 3 })
    .getReader();
  let consumed = 0;
  while (true) {
    const { done } = await reader.read();
    if (done) break;
    consumed++;
    await new Promise((r) => setTimeout(r, 10)); // a slow consumer
    assert.ok(
      calls.get <= consumed + 3,
      `${calls.get} fetched for ${consumed} consumed`,
    );
  }
  assert.equal(consumed, 16);
  assert.equal(calls.get, 16);
});

Deno.test("decryptStream() with start and end fetches only the chunks the range needs", async () => {
  const plain = randomBytes(6 * CHUNK + 100);
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(plain, base);
  const ranges: [number, number, number][] = [
    [0, 1, 1],
    [CHUNK - 1, CHUNK + 1, 2],
    [2 * CHUNK, 3 * CHUNK, 1],
    [5 * CHUNK + 3, plain.length, 2],
    [10, 10, 0],
  ];
  for (const [start, end, fetched] of ranges) {
    const { store, calls } = instrumented(base);
    const out = await new Response(
      decryptStream(dataMap, key, store, { start, end }),
    ).bytes();
    assert.deepEqual(out, plain.subarray(start, end), `${start}-${end}`);
    assert.equal(calls.get, fetched, `${start}-${end}`);
  }
  const onlyStart = await new Response(
    decryptStream(dataMap, key, base, { start: 6 * CHUNK }),
  ).bytes();
  assert.deepEqual(onlyStart, plain.subarray(6 * CHUNK));
  const badRanges: [number, number][] = [
    [-1, 5],
    [5, 4],
    [0, plain.length + 1],
    [0.5, 2],
  ];
  for (const [start, end] of badRanges) {
    assert.throws(
      () => decryptStream(dataMap, key, base, { start, end }),
      RangeError,
    );
  }
});

Deno.test("seal() lists exactly the chunks it could not store, and a reseal with its key fills them in", async () => {
  const plain = randomBytes(6 * CHUNK + 1);
  const key = randomBytes(32);
  const salt = randomBytes(32);
  const { dataMap: expected } = await seal(streamOf(plain), memoryStore(), {
    chunkSize: CHUNK,
    key,
    salt,
  });
  const doomed = new Set([
    expected.chunks[1]!.address,
    expected.chunks[4]!.address,
  ]);
  const target = memoryStore();
  const attempts = new Map<string, number>();
  const { store } = instrumented(target, {
    beforePut: (address) => {
      attempts.set(address, (attempts.get(address) ?? 0) + 1);
      if (doomed.has(address)) {
        throw new HttpError({ status: 503, url: "http://127.0.0.1/" });
      }
    },
  });
  const error = await seal(streamOf(plain), store, {
    chunkSize: CHUNK,
    key,
    salt,
    retry: FAST,
  })
    .catch((e) => e);
  assert.ok(error instanceof SealIncompleteError);
  assert.ok(error instanceof PartialFailureError);
  assert.equal(error.retryable, true);
  assert.deepEqual(error.failed.map((f) => f.item), [...doomed]);
  assert.ok(error.failed.every((f) => f.error instanceof HttpError));
  assert.deepEqual(
    error.succeeded,
    expected.chunks.map((c) => c.address).filter((a) => !doomed.has(a)),
  );
  assert.deepEqual(error.dataMap, expected);
  for (const address of doomed) {
    assert.equal(attempts.get(address), 4, "3 retries after the first try");
  }
  assert.equal(target.size, 5);
  // Resume: the same key and salt give the same chunks; only the missing two are written.
  const resumed = await seal(streamOf(plain), target, {
    chunkSize: CHUNK,
    key: error.key,
    salt: Uint8Array.from(
      error.dataMap.salt.match(/../g)!,
      (h: string) => parseInt(h, 16),
    ),
  });
  assert.equal(resumed.stored, 2);
  assert.equal(resumed.skipped, 5);
  const out = await new Response(
    decryptStream(resumed.dataMap, resumed.key, target),
  ).bytes();
  assert.deepEqual(out, plain);
});

Deno.test("seal() in convergent mode stores nothing new when the same file is sealed again", async () => {
  const plain = randomBytes(3 * CHUNK + 9);
  const target = memoryStore();
  const { store, calls } = instrumented(target);
  const open = () => streamOf(plain);
  const first = await seal(open, store, { convergent: true, chunkSize: CHUNK });
  assert.equal(first.stored, 4);
  const putsBefore = calls.put;
  const again = await seal(open, store, { convergent: true, chunkSize: CHUNK });
  assert.equal(calls.put, putsBefore, "no chunk written again");
  assert.equal(again.stored, 0);
  assert.equal(again.skipped, 4);
  assert.deepEqual(again.dataMap, first.dataMap);
  assert.deepEqual(again.key, first.key);
  const secret = await seal(open, memoryStore(), {
    convergent: { secret: new TextEncoder().encode("team") },
    chunkSize: CHUNK,
  });
  assert.notEqual(
    secret.dataMap.chunks[0]!.address,
    first.dataMap.chunks[0]!.address,
  );
  await assert.rejects(
    seal(streamOf(plain), memoryStore(), { convergent: true }),
    /pass a function that opens the source/,
  );
});

Deno.test("seal() rejects bad options before reading the source", async () => {
  const cases: [object, ErrorConstructor][] = [
    [{ chunkSize: 1000 }, RangeError],
    [{ chunkSize: 32 * 1024 * 1024 }, RangeError],
    [{ concurrency: 0 }, RangeError],
    [{ key: new Uint8Array(31) }, TypeError],
    [{ salt: new Uint8Array(8) }, TypeError],
    [{ suite: "des" }, TypeError],
  ];
  for (const [options, type] of cases) {
    let pulled = false;
    const source = new ReadableStream({ pull: () => void (pulled = true) }, {
      highWaterMark: 0,
    });
    await assert.rejects(
      seal(source, memoryStore(), options),
      type,
      JSON.stringify(options),
    );
    assert.equal(pulled, false);
  }
});

Deno.test("seal() aborted by its signal rejects with a CancelledError and stops reading", async () => {
  const controller = new AbortController();
  let pulls = 0;
  const source = new ReadableStream<Uint8Array>({
    async pull(c) {
      pulls++;
      await new Promise((r) => setTimeout(r, 5));
      c.enqueue(new Uint8Array(CHUNK));
    },
  });
  setTimeout(() => controller.abort(), 60);
  await assert.rejects(
    seal(source, memoryStore(), {
      chunkSize: CHUNK,
      signal: controller.signal,
    }),
    CancelledError,
  );
  const seen = pulls;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(pulls, seen);
});

Deno.test("seal() with replicas keeps every chunk on that many stores", async () => {
  const stores = [memoryStore(), memoryStore(), memoryStore()];
  const { dataMap, key } = await seal(
    streamOf(randomBytes(8 * CHUNK)),
    stores,
    {
      chunkSize: CHUNK,
      replicas: 2,
    },
  );
  for (const { address } of dataMap.chunks) {
    const holders = (await Promise.all(stores.map((s) => s.has(address))))
      .filter(Boolean);
    assert.ok(holders.length >= 2, address);
  }
  // Any single store can be lost.
  for (let lost = 0; lost < 3; lost++) {
    const rest = multiStore(stores.filter((_, i) => i !== lost));
    const out = await new Response(decryptStream(dataMap, key, rest)).bytes();
    assert.equal(out.length, 8 * CHUNK);
  }
});

Deno.test("decryptStream() fails with a throwing onProgress at once, without refetching", async () => {
  const base = memoryStore();
  const { dataMap, key } = await sealBytes(randomBytes(CHUNK), base);
  const { store, calls } = instrumented(base);
  const oops = new Error("listener bug");
  const { error } = await drain(decryptStream(dataMap, key, store, {
    onProgress: (e) => {
      if (e.type === "chunk") throw oops;
    },
  }));
  assert.equal(error, oops);
  assert.equal(calls.get, 1);
});
