/**
 * Benchmarks {@linkcode decryptStream} against the raw AEAD loop a user would
 * write by hand, for both suites.
 *
 * Setup (once, before any bench runs): 256 MiB of pseudo-random plaintext,
 * generated 64 KiB at a time and never held whole, is sealed into a
 * `memoryStore` with 1 MiB chunks under each suite. The stores hold the
 * sealed chunks (about 512 MiB in all) for the whole run.
 *
 * - "decrypt 256 MiB, aes-256-gcm": the baseline imports the payload key once
 *   (HKDF-SHA-256 of the file key and salt, info `"sluice payload"`, as
 *   `docs/FORMAT.md` says) and awaits `crypto.subtle.decrypt` on each sealed
 *   chunk in turn, with its STREAM nonce. The sealed bytes are taken from the
 *   store beforehand, so only decryption is timed. Compared:
 *   `decryptStream` with its default concurrency (4), and with
 *   `concurrency: 1`.
 * - "decrypt 256 MiB, xchacha20-poly1305": the same baseline with
 *   `xchacha20poly1305(key, nonce).decrypt` from `@noble/ciphers`, against
 *   `decryptStream` with its default concurrency.
 *
 * Every `decryptStream` iteration drains the stream and counts the bytes, and
 * every baseline iteration counts the plaintext it got; either throws unless
 * the count is exactly 256 MiB, so a broken path cannot look fast.
 * Throughput in MB/s is 268 435 456 bytes divided by the time per iteration.
 *
 * Run it with:
 *
 * ```sh
 * deno bench -A bench/decrypt_bench.ts
 * ```
 *
 * @module
 */

import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import {
  type DataMap,
  decryptStream,
  memoryStore,
  seal,
  type Suite,
} from "../core/chunks.ts";

/** Plaintext bytes sealed per suite. */
const SIZE = 256 * 1024 * 1024;
/** Plaintext bytes per chunk. */
const CHUNK_SIZE = 1024 * 1024;
/** The most `crypto.getRandomValues` fills in one call. */
const RANDOM_PIECE = 64 * 1024;
/** Few samples: each iteration moves 256 MiB, so one run stays short. */
const SAMPLES = { n: 5, warmup: 1 };

const encoder = new TextEncoder();

/** `size` pseudo-random bytes, made 64 KiB at a time as the reader asks. */
function randomStream(size: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left === 0) return controller.close();
      const piece = new Uint8Array(Math.min(RANDOM_PIECE, left));
      crypto.getRandomValues(piece);
      left -= piece.length;
      controller.enqueue(piece);
    },
  }, { highWaterMark: 0 });
}

/** Lowercase or uppercase hex to bytes. */
function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

/** The STREAM nonce of chunk `index` (docs/FORMAT.md). */
function streamNonce(
  length: number,
  index: number,
  last: boolean,
): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(length);
  new DataView(nonce.buffer).setBigUint64(length - 9, BigInt(index));
  nonce[length - 1] = last ? 1 : 0;
  return nonce;
}

/** HKDF-SHA-256 parameters of the payload key of a sealed file. */
function payloadHkdf(dataMap: DataMap): HkdfParams {
  return {
    name: "HKDF",
    hash: "SHA-256",
    salt: fromHex(dataMap.salt),
    info: encoder.encode("sluice payload"),
  };
}

/** One sealed file and what the baselines need, ready before timing. */
interface Fixture {
  dataMap: DataMap;
  key: Uint8Array;
  store: ReturnType<typeof memoryStore>;
  /** Every sealed chunk (ciphertext ‖ tag), in order. */
  sealed: Uint8Array<ArrayBuffer>[];
}

async function sealFixture(suite: Suite): Promise<Fixture> {
  const store = memoryStore();
  const { dataMap, key } = await seal(randomStream(SIZE), store, {
    chunkSize: CHUNK_SIZE,
    suite,
  });
  if (dataMap.size !== SIZE || dataMap.chunks.length !== SIZE / CHUNK_SIZE) {
    throw new Error(
      `${suite}: sealed ${dataMap.size} bytes in ${dataMap.chunks.length} chunks`,
    );
  }
  const sealed: Uint8Array<ArrayBuffer>[] = [];
  for (const chunk of dataMap.chunks) {
    sealed.push(await store.get(chunk.address) as Uint8Array<ArrayBuffer>);
  }
  return { dataMap, key, store, sealed };
}

/** Throws unless `count` is the whole plaintext. */
function checkCount(name: string, count: number): void {
  if (count !== SIZE) {
    throw new Error(`${name}: got ${count} bytes, expected ${SIZE}`);
  }
}

/** Reads `stream` to its end and returns how many bytes it gave. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stream.getReader();
  let count = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) return count;
    count += value.length;
  }
}

const aes = await sealFixture("aes-256-gcm");
const xchacha = await sealFixture("xchacha20-poly1305");

// ---------------------------------------------------------------------------
// Group 1: aes-256-gcm

const AES = "decrypt 256 MiB, aes-256-gcm";

/** The payload key, derived and imported once, as a careful user would. */
const aesPayloadKey = await crypto.subtle.deriveKey(
  payloadHkdf(aes.dataMap),
  await crypto.subtle.importKey(
    "raw",
    aes.key as Uint8Array<ArrayBuffer>,
    "HKDF",
    false,
    ["deriveKey"],
  ),
  { name: "AES-GCM", length: 256 },
  false,
  ["decrypt"],
);

Deno.bench({
  name: "raw crypto.subtle.decrypt loop",
  group: AES,
  baseline: true,
  ...SAMPLES,
  async fn() {
    const { sealed } = aes;
    let count = 0;
    for (let i = 0; i < sealed.length; i++) {
      const iv = streamNonce(12, i, i === sealed.length - 1);
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv },
        aesPayloadKey,
        sealed[i]!,
      );
      count += plain.byteLength;
    }
    checkCount("raw aes loop", count);
  },
});

Deno.bench({
  name: "decryptStream (concurrency 4, the default)",
  group: AES,
  ...SAMPLES,
  async fn() {
    const { dataMap, key, store } = aes;
    checkCount(
      "decryptStream aes",
      await drain(decryptStream(dataMap, key, store)),
    );
  },
});

Deno.bench({
  name: "decryptStream (concurrency 1)",
  group: AES,
  ...SAMPLES,
  async fn() {
    const { dataMap, key, store } = aes;
    checkCount(
      "decryptStream aes, concurrency 1",
      await drain(decryptStream(dataMap, key, store, { concurrency: 1 })),
    );
  },
});

// ---------------------------------------------------------------------------
// Group 2: xchacha20-poly1305

const XCHACHA = "decrypt 256 MiB, xchacha20-poly1305";

/** The payload key bytes, derived once. */
const xchachaPayloadKey = new Uint8Array(
  await crypto.subtle.deriveBits(
    payloadHkdf(xchacha.dataMap),
    await crypto.subtle.importKey(
      "raw",
      xchacha.key as Uint8Array<ArrayBuffer>,
      "HKDF",
      false,
      ["deriveBits"],
    ),
    256,
  ),
);

Deno.bench({
  name: "raw noble xchacha20poly1305 loop",
  group: XCHACHA,
  baseline: true,
  ...SAMPLES,
  fn() {
    const { sealed } = xchacha;
    let count = 0;
    for (let i = 0; i < sealed.length; i++) {
      const nonce = streamNonce(24, i, i === sealed.length - 1);
      count += xchacha20poly1305(xchachaPayloadKey, nonce)
        .decrypt(sealed[i]!).length;
    }
    checkCount("raw xchacha loop", count);
  },
});

Deno.bench({
  name: "decryptStream (concurrency 4, the default)",
  group: XCHACHA,
  ...SAMPLES,
  async fn() {
    const { dataMap, key, store } = xchacha;
    checkCount(
      "decryptStream xchacha",
      await drain(decryptStream(dataMap, key, store)),
    );
  },
});
