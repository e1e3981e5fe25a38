// Test data: random bytes of any length, and streams that hand them out in
// pieces of a chosen size.

import { createHash } from "node:crypto";

/** One mebibyte. */
export const MiB = 1024 * 1024;

/** SHA-256 of `bytes`, lowercase hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `length` random bytes (getRandomValues gives at most 64 KiB per call). */
export function randomBytes(length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(length, at + 65536)));
  }
  return out;
}

/** A stream of `bytes` in pieces of `piece` bytes (the last may be shorter). */
export function streamOf(
  bytes: Uint8Array,
  piece = 7919,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

/** Drains a stream into its pieces. */
export async function collect(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array[]> {
  return await Array.fromAsync(stream);
}

/** Concatenates pieces. */
export function concat(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Drains a stream, keeping what arrived before the error that ended it, if any. */
export async function drain(stream: ReadableStream<Uint8Array>): Promise<{
  parts: Uint8Array[];
  bytes: Uint8Array;
  error: unknown;
}> {
  const parts: Uint8Array[] = [];
  let error: unknown;
  try {
    for await (const part of stream) parts.push(part);
  } catch (e) {
    error = e;
  }
  return { parts, bytes: concat(parts), error };
}
