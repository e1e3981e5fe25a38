// The cryptography of docs/FORMAT.md: key derivation, STREAM nonces, the
// per-chunk AEAD of both suites and the data map's commitment.

import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { fromHex } from "./_bytes.ts";
import type { ChunkRef, DataMap, Suite } from "./data_map.ts";
import { DATA_MAP_FORMAT } from "./data_map.ts";
import { IntegrityError } from "./errors.ts";

/** Bytes in a file key. */
export const KEY_SIZE = 32;

const encoder = new TextEncoder();

/** Seals and opens the chunks of one file under its payload key. */
export interface ChunkCipher {
  seal(index: number, last: boolean, plain: Uint8Array): Promise<Uint8Array>;
  /** Opens a sealed chunk; an `IntegrityError` (retryable) when its tag fails. */
  open(index: number, last: boolean, sealed: Uint8Array): Promise<Uint8Array>;
}

/** The keys of one sealed file, derived once per seal or stream. */
export interface FileKeys {
  cipher: ChunkCipher;
  commitKey: CryptoKey;
}

function asBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/** HKDF-SHA-256 with a 32-byte output. */
export async function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const base = await crypto.subtle.importKey(
    "raw",
    asBuffer(ikm),
    "HKDF",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: asBuffer(salt),
      info: encoder.encode(info),
    },
    base,
    256,
  );
  return new Uint8Array(bits);
}

/** The STREAM nonce of chunk `index`: zeros, u64be(index), then the last flag. */
export function streamNonce(
  length: number,
  index: number,
  last: boolean,
): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(length);
  new DataView(nonce.buffer).setBigUint64(length - 9, BigInt(index));
  nonce[length - 1] = last ? 1 : 0;
  return nonce;
}

function tagFailure(index: number, cause?: unknown): IntegrityError {
  return new IntegrityError({
    check: "authentication tag",
    subject: `chunk ${index}`,
    retryable: true,
    cause,
  });
}

async function aesCipher(payloadKey: Uint8Array): Promise<ChunkCipher> {
  // Imported once per file: importing per chunk shows up in the benchmark.
  const key = await crypto.subtle.importKey(
    "raw",
    asBuffer(payloadKey),
    "AES-GCM",
    false,
    ["encrypt", "decrypt"],
  );
  return {
    async seal(index, last, plain) {
      const iv = streamNonce(12, index, last);
      const sealed = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv },
        key,
        asBuffer(plain),
      );
      return new Uint8Array(sealed);
    },
    async open(index, last, sealed) {
      const iv = streamNonce(12, index, last);
      try {
        const plain = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv },
          key,
          asBuffer(sealed),
        );
        return new Uint8Array(plain);
      } catch (error) {
        // WebCrypto reports a failed tag as an OperationError; anything else
        // (a bad buffer) is a bug that another fetch cannot fix.
        if (error instanceof DOMException && error.name === "OperationError") {
          throw tagFailure(index, error);
        }
        throw error;
      }
    },
  };
}

function xchachaCipher(payloadKey: Uint8Array): ChunkCipher {
  return {
    seal(index, last, plain) {
      const nonce = streamNonce(24, index, last);
      return Promise.resolve(
        xchacha20poly1305(payloadKey, nonce).encrypt(plain),
      );
    },
    open(index, last, sealed) {
      const nonce = streamNonce(24, index, last);
      try {
        return Promise.resolve(
          xchacha20poly1305(payloadKey, nonce).decrypt(sealed),
        );
      } catch (error) {
        return Promise.reject(tagFailure(index, error));
      }
    },
  };
}

/** Derives the payload cipher and the commitment key of a file. */
export async function deriveFileKeys(
  key: Uint8Array,
  salt: Uint8Array,
  suite: Suite,
): Promise<FileKeys> {
  const payloadKey = await hkdf(key, salt, "sluice payload");
  const commitKey = await crypto.subtle.importKey(
    "raw",
    await hkdf(key, salt, "sluice commitment"),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  const cipher = suite === "aes-256-gcm"
    ? await aesCipher(payloadKey)
    : xchachaCipher(payloadKey);
  return { cipher, commitKey };
}

/** The header bytes the commitment covers (docs/FORMAT.md, "Commitment"). */
export function headerBytes(
  map: Omit<DataMap, "commitment" | "format">,
): Uint8Array<ArrayBuffer> {
  const suite = encoder.encode(map.suite);
  const chunks: readonly ChunkRef[] = map.chunks;
  const length = 8 + 1 + 1 + suite.length + 4 + 8 + 32 + 8 + chunks.length * 36;
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(encoder.encode(DATA_MAP_FORMAT), at);
  at += 9; // the format tag and its 0x00 terminator
  out[at++] = suite.length;
  out.set(suite, at);
  at += suite.length;
  view.setUint32(at, map.chunkSize);
  view.setBigUint64(at + 4, BigInt(map.size));
  at += 12;
  out.set(fromHex(map.salt), at);
  at += 32;
  view.setBigUint64(at, BigInt(chunks.length));
  at += 8;
  for (const chunk of chunks) {
    out.set(fromHex(chunk.address), at);
    view.setUint32(at + 32, chunk.size);
    at += 36;
  }
  return out;
}

/** The commitment tag of a data map's header. */
export async function commit(
  commitKey: CryptoKey,
  map: Omit<DataMap, "commitment" | "format">,
): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", commitKey, headerBytes(map)),
  );
}

/** Whether the map's commitment verifies under `commitKey` (constant time). */
export function verifyCommitment(
  commitKey: CryptoKey,
  map: DataMap,
): Promise<boolean> {
  return crypto.subtle.verify(
    "HMAC",
    commitKey,
    fromHex(map.commitment),
    headerBytes(map),
  );
}

/** The convergent key and salt of a plaintext whose SHA-256 is `digest`. */
export async function convergentKeys(
  digest: Uint8Array,
  secret: Uint8Array,
  suite: Suite,
  chunkSize: number,
): Promise<{ key: Uint8Array; salt: Uint8Array }> {
  return {
    key: await hkdf(digest, secret, "sluice convergent key"),
    salt: await hkdf(
      digest,
      secret,
      `sluice convergent salt ${suite} ${chunkSize}`,
    ),
  };
}
