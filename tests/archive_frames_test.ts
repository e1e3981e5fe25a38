// encodeFrames and decodeFrames: round trips, the byte layout FORMAT.md
// specifies (checked with an independent parser and frame builder here),
// corruption and truncation anywhere, draining, backpressure, cancellation,
// and real tar entries carried over a loopback HTTP connection.

import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { decodeFrames, encodeFrames, install } from "../archive/mod.ts";
import type { ArchiveEntry, EntryType } from "../archive/types.ts";
import { untar } from "../archive/untar.ts";
import {
  CancelledError,
  FormatError,
  IncompleteStreamError,
  IntegrityError,
  LimitError,
} from "../core/errors.ts";
import { concat, MiB, randomBytes, sha256, streamOf } from "./_data.ts";
import { tempDir } from "./_fs.ts";
import { serveLoopback } from "./_loopback.ts";

const HEADER = 0x01;
const DATA = 0x02;
const ENTRY_END = 0x03;
const END = 0x04;
const MTIME = new Date(1_700_000_000_123);
const encoder = new TextEncoder();

// --- entries from plain objects --------------------------------------------

interface Spec {
  path: string;
  type?: EntryType;
  bytes?: Uint8Array;
  mode?: number;
  mtime?: Date;
  linkTarget?: string;
  /** Size of the pieces the body yields. */
  piece?: number;
}

/** An ArchiveEntry from a path and bytes (a file unless `type` says otherwise). */
function entry(spec: Spec): ArchiveEntry {
  const bytes = spec.bytes ?? new Uint8Array(0);
  return {
    path: spec.path,
    type: spec.type ?? "file",
    size: bytes.length,
    mode: spec.mode ?? (spec.type === "directory" ? 0o755 : 0o644),
    mtime: spec.mtime ?? MTIME,
    ...(spec.linkTarget === undefined ? {} : { linkTarget: spec.linkTarget }),
    body: streamOf(bytes, spec.piece),
  };
}

async function* source(specs: Spec[]): AsyncGenerator<ArchiveEntry> {
  for (const spec of specs) yield entry(spec);
}

async function encode(specs: Spec[]): Promise<Uint8Array> {
  return await new Response(encodeFrames(source(specs))).bytes();
}

interface Decoded {
  path: string;
  type: EntryType;
  size: number;
  mode: number;
  mtime: number;
  linkTarget: string | undefined;
  hasLinkTarget: boolean;
  bytes: Uint8Array;
}

/** An entry's fields and its whole body. */
async function decodedEntry(e: ArchiveEntry): Promise<Decoded> {
  return {
    path: e.path,
    type: e.type,
    size: e.size,
    mode: e.mode,
    mtime: e.mtime.getTime(),
    linkTarget: e.linkTarget,
    hasLinkTarget: "linkTarget" in e,
    bytes: await new Response(e.body).bytes(),
  };
}

/** Decodes everything, reading every body to its end. */
async function decodeAll(
  input: Uint8Array | ReadableStream<Uint8Array>,
  options: { maxPathBytes?: number; signal?: AbortSignal } = {},
): Promise<Decoded[]> {
  const stream = input instanceof Uint8Array ? streamOf(input, 4099) : input;
  const out: Decoded[] = [];
  for await (const e of decodeFrames(stream, options)) {
    out.push(await decodedEntry(e));
  }
  return out;
}

// --- an independent reading of the format (FORMAT.md, "Install frames") ----

const PREAMBLE = concat([encoder.encode("sluicefr"), new Uint8Array([1])]);

/** One frame: head (type, length, head check), payload, CRC-32. */
function frameOf(type: number, payload: Uint8Array): Uint8Array {
  const head = new Uint8Array(9);
  const view = new DataView(head.buffer);
  head[0] = type;
  view.setUint32(1, payload.length);
  view.setUint32(5, crc32(head.subarray(0, 5)));
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(
    0,
    crc32(concat([head.subarray(0, 5), payload])),
  );
  return concat([head, payload, crc]);
}

interface HeaderFields {
  kind?: number;
  flags?: number;
  size?: bigint;
  mode?: number;
  mtime?: bigint;
  path?: Uint8Array;
  link?: Uint8Array;
  extra?: Uint8Array;
}

function headerPayload(fields: HeaderFields): Uint8Array {
  const path = fields.path ?? encoder.encode("a.txt");
  const fixed = new Uint8Array(24);
  const view = new DataView(fixed.buffer);
  fixed[0] = fields.kind ?? 0;
  fixed[1] = fields.flags ?? (fields.link === undefined ? 0 : 1);
  view.setBigUint64(2, fields.size ?? 0n);
  view.setUint32(10, fields.mode ?? 0o644);
  view.setBigInt64(14, fields.mtime ?? 0n);
  view.setUint16(22, path.length);
  const parts = [fixed, path];
  if (fields.link !== undefined) {
    const length = new Uint8Array(2);
    new DataView(length.buffer).setUint16(0, fields.link.length);
    parts.push(length, fields.link);
  }
  if (fields.extra !== undefined) parts.push(fields.extra);
  return concat(parts);
}

function u64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

interface ParsedFrame {
  offset: number;
  type: number;
  payload: Uint8Array;
}

/** Splits a frame stream, checking the preamble and both CRCs of every frame. */
function parseFrames(bytes: Uint8Array): ParsedFrame[] {
  assert.deepEqual(bytes.subarray(0, 9), PREAMBLE);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: ParsedFrame[] = [];
  for (let at = 9; at < bytes.length;) {
    const length = view.getUint32(at + 1);
    assert.equal(view.getUint32(at + 5), crc32(bytes.subarray(at, at + 5)));
    const payload = bytes.subarray(at + 9, at + 9 + length);
    assert.equal(
      view.getUint32(at + 9 + length),
      crc32(concat([bytes.subarray(at, at + 5), payload])),
    );
    frames.push({ offset: at, type: bytes[at]!, payload });
    at += 13 + length;
  }
  return frames;
}

function isFramesError(
  reason: string | RegExp,
  offset?: number,
): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof FormatError, `not a FormatError: ${error}`);
    assert.equal(error.format, "frames");
    if (typeof reason === "string") {
      assert.match(error.reason, new RegExp(reason));
    } else assert.match(error.reason, reason);
    if (offset !== undefined) assert.equal(error.offset, offset);
    return true;
  };
}

/** Compares by length and hash: a failing deepEqual would try to diff megabytes. */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(actual.length, expected.length);
  assert.equal(sha256(actual), sha256(expected));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- round trips -------------------------------------------------------------

Deno.test("decodeFrames(encodeFrames()) round-trips every field and byte of files, directories and links", async () => {
  const big = randomBytes(5 * MiB + 123);
  const oneChunk = randomBytes(3 * MiB + 7);
  const specs: Spec[] = [
    { path: "données", type: "directory" },
    { path: "données/日本語.txt", bytes: encoder.encode("こんにちは") },
    { path: "empty", bytes: new Uint8Array(0) },
    { path: "big.bin", bytes: big, piece: 7919 },
    // One piece bigger than a data frame: the encoder must split it.
    { path: "one-chunk.bin", bytes: oneChunk, piece: oneChunk.length },
    { path: "🦕/tiny", bytes: new Uint8Array([0]), mode: 0o4755 },
    {
      path: "old",
      bytes: encoder.encode("x"),
      mtime: new Date(-315_619_200_001),
    },
    {
      path: "link",
      type: "symlink",
      linkTarget: "données/日本語.txt",
      mode: 0o777,
    },
    { path: "hard", type: "hardlink", linkTarget: "empty" },
    { path: "empty-link", type: "symlink", linkTarget: "" },
  ];
  const frames = await encode(specs);
  const decoded = decodeFrames(streamOf(frames, 65536));
  const seen: Decoded[] = [];
  for await (const e of decoded) {
    seen.push(await decodedEntry(e));
  }
  assert.equal(seen.length, specs.length);
  for (const [i, spec] of specs.entries()) {
    const got = seen[i]!;
    const bytes = spec.bytes ?? new Uint8Array(0);
    assert.equal(got.path, spec.path);
    assert.equal(got.type, spec.type ?? "file");
    assert.equal(got.size, bytes.length);
    assert.equal(got.mode, entry(spec).mode);
    assert.equal(got.mtime, (spec.mtime ?? MTIME).getTime());
    assert.equal(got.linkTarget, spec.linkTarget);
    assert.equal(got.hasLinkTarget, spec.linkTarget !== undefined);
    assertSameBytes(got.bytes, bytes);
  }
  assert.equal(decoded.bytesRead, frames.length);
});

Deno.test("decodeFrames(encodeFrames()) round-trips an empty entry list", async () => {
  const frames = await encode([]);
  assert.deepEqual(frames, concat([PREAMBLE, frameOf(END, u64(0))]));
  assert.deepEqual(await decodeAll(frames), []);
});

Deno.test("encodeFrames writes the layout FORMAT.md specifies: checked heads and CRCs, data frames of at most 1 MiB, the body's SHA-256 after its data, the entry count last", async () => {
  const big = randomBytes(2 * MiB + 5);
  const small = randomBytes(100);
  const frames = parseFrames(
    await encode([
      { path: "big", bytes: big, piece: 3 * MiB },
      { path: "dir", type: "directory" },
      { path: "small", bytes: small, piece: 7 },
    ]),
  );
  assert.deepEqual(frames.map((f) => f.type), [
    HEADER,
    DATA,
    DATA,
    DATA,
    ENTRY_END,
    HEADER,
    ENTRY_END,
    HEADER,
    DATA,
    ENTRY_END,
    END,
  ]);
  const data = frames.filter((f) => f.type === DATA);
  for (const f of data) {
    assert.ok(f.payload.length >= 1 && f.payload.length <= MiB);
  }
  assertSameBytes(concat(data.slice(0, 3).map((f) => f.payload)), big);
  // 7-byte pieces are gathered into one frame, not one frame per piece.
  assert.deepEqual(data[3]!.payload, small);
  const ends = frames.filter((f) => f.type === ENTRY_END);
  assert.equal(Buffer.from(ends[0]!.payload).toString("hex"), sha256(big));
  assert.equal(
    Buffer.from(ends[1]!.payload).toString("hex"),
    sha256(new Uint8Array(0)),
  );
  assert.equal(Buffer.from(ends[2]!.payload).toString("hex"), sha256(small));
  assert.deepEqual(frames.at(-1)!.payload, u64(3));
  // The header of "big": file, no link, its size, mode, mtime, path.
  assert.deepEqual(
    frames[0]!.payload,
    headerPayload({
      size: BigInt(big.length),
      mtime: BigInt(MTIME.getTime()),
      path: encoder.encode("big"),
    }),
  );
});

Deno.test("encodeFrames matches the vector in FORMAT.md byte for byte, and decodeFrames reads it", async () => {
  const doc = await Deno.readTextFile(
    new URL("../docs/FORMAT.md", import.meta.url),
  );
  const section = doc.slice(doc.indexOf("## Install frames"));
  const block = section.match(/<!-- frames vector[^>]*-->\s*```\n([^`]*)```/);
  assert.ok(block, "FORMAT.md has the frames vector");
  const vector = hexBytes(block[1]!.replace(/\s+/g, ""));
  assert.equal(vector.length, 236);
  const mtime = new Date(1_700_000_000_000);
  const frames = await encode([
    { path: "hello.txt", bytes: encoder.encode("hello"), mtime },
    {
      path: "link",
      type: "symlink",
      linkTarget: "hello.txt",
      mode: 0o777,
      mtime,
    },
  ]);
  assert.deepEqual(frames, vector);
  const decoded = await decodeAll(vector);
  assert.deepEqual(decoded.map((d) => [d.path, d.type, d.linkTarget]), [
    ["hello.txt", "file", undefined],
    ["link", "symlink", "hello.txt"],
  ]);
});

Deno.test("decodeFrames accepts a stream built by hand from the FORMAT.md rules", async () => {
  const stream = concat([
    PREAMBLE,
    frameOf(
      HEADER,
      headerPayload({
        kind: 1,
        path: encoder.encode("d"),
        mode: 0o700,
        mtime: -5n,
      }),
    ),
    frameOf(ENTRY_END, hexBytes(sha256(new Uint8Array(0)))),
    frameOf(HEADER, headerPayload({ size: 6n, path: encoder.encode("d/f") })),
    frameOf(DATA, encoder.encode("abc")),
    frameOf(DATA, encoder.encode("def")),
    frameOf(ENTRY_END, hexBytes(sha256(encoder.encode("abcdef")))),
    frameOf(END, u64(2)),
  ]);
  const decoded = await decodeAll(stream);
  assert.equal(decoded.length, 2);
  assert.equal(decoded[0]!.type, "directory");
  assert.equal(decoded[0]!.mode, 0o700);
  assert.equal(decoded[0]!.mtime, -5);
  assert.equal(new TextDecoder().decode(decoded[1]!.bytes), "abcdef");
});

// --- corruption ---------------------------------------------------------------

Deno.test("decodeFrames rejects any single corrupted byte of a stream with a FormatError at the damaged frame", async () => {
  const mtime = new Date(1_700_000_000_000);
  const frames = await encode([
    { path: "hello.txt", bytes: encoder.encode("hello"), mtime },
    { path: "link", type: "symlink", linkTarget: "hello.txt", mtime },
  ]);
  const starts = parseFrames(frames).map((f) => f.offset);
  const frameAt = (i: number) => starts.findLast((s) => s <= i)!;
  for (let i = 0; i < frames.length; i++) {
    for (const flip of [0x01, 0x80, 0xff]) {
      const damaged = frames.slice();
      damaged[i]! ^= flip;
      const expected = i < 8
        ? { reason: "bad magic", offset: 0 }
        : i === 8
        ? { reason: "unsupported version", offset: 8 }
        : { reason: "head check|CRC-32", offset: frameAt(i) };
      await assert.rejects(
        decodeAll(damaged),
        isFramesError(expected.reason, expected.offset),
        `byte ${i} ^ ${flip}`,
      );
    }
  }
});

Deno.test("decodeFrames rejects a corrupted byte inside a large body, before handing out that frame's bytes", async () => {
  const body = randomBytes(3 * MiB);
  const frames = await encode([{ path: "big", bytes: body, piece: MiB }]);
  const parsed = parseFrames(frames);
  const second = parsed.filter((f) => f.type === DATA)[1]!;
  const damaged = frames.slice();
  damaged[second.offset + 9 + 12345]! ^= 0x10;
  const received: Uint8Array[] = [];
  let error: unknown;
  try {
    for await (const e of decodeFrames(streamOf(damaged, 65536))) {
      for await (const piece of e.body) received.push(piece);
    }
  } catch (e) {
    error = e;
  }
  assert.ok(isFramesError("bad data frame CRC-32", second.offset)(error));
  // Only the first (intact) data frame was handed out.
  assertSameBytes(concat(received), body.subarray(0, MiB));
});

Deno.test("decodeFrames rejects a body whose SHA-256 differs from its entry-end frame with IntegrityError (sha256), from the body and the iterator", async () => {
  const stream = concat([
    PREAMBLE,
    frameOf(HEADER, headerPayload({ size: 5n })),
    frameOf(DATA, encoder.encode("hellp")),
    frameOf(ENTRY_END, hexBytes(sha256(encoder.encode("hello")))),
    frameOf(END, u64(1)),
  ]);
  const isSha = (error: unknown) => {
    assert.ok(error instanceof IntegrityError);
    assert.equal(error.check, "sha256");
    assert.equal(error.expected, sha256(encoder.encode("hello")));
    assert.equal(error.actual, sha256(encoder.encode("hellp")));
    return true;
  };
  const iterator = decodeFrames(streamOf(stream))[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal(first.done, false);
  await assert.rejects(new Response(first.value!.body).bytes(), isSha);
  await assert.rejects(iterator.next(), isSha);
});

Deno.test("decodeFrames catches data frames delivered in the wrong order through the SHA-256", async () => {
  const stream = concat([
    PREAMBLE,
    frameOf(HEADER, headerPayload({ size: 6n })),
    frameOf(DATA, encoder.encode("def")),
    frameOf(DATA, encoder.encode("abc")),
    frameOf(ENTRY_END, hexBytes(sha256(encoder.encode("abcdef")))),
    frameOf(END, u64(1)),
  ]);
  await assert.rejects(
    decodeAll(stream),
    (e) => e instanceof IntegrityError && e.check === "sha256",
  );
});

Deno.test("decodeFrames rejects malformed frames whose CRCs are valid with a FormatError naming the problem", async () => {
  const file = frameOf(HEADER, headerPayload({ size: 3n }));
  const afterFile = PREAMBLE.length + file.length;
  const emptySha = frameOf(ENTRY_END, hexBytes(sha256(new Uint8Array(0))));
  const abc = encoder.encode("abc");
  const cases: {
    name: string;
    bytes: Uint8Array;
    reason: string;
    offset: number;
  }[] = [
    {
      name: "unknown frame type 5",
      bytes: concat([PREAMBLE, frameOf(5, new Uint8Array(8))]),
      reason: "unknown frame type 5",
      offset: 9,
    },
    {
      name: "frame type 0",
      bytes: concat([PREAMBLE, frameOf(0, new Uint8Array(0))]),
      reason: "unknown frame type 0",
      offset: 9,
    },
    {
      // Only the head is sent: the length must be refused before any wait for the payload.
      name: "a data frame longer than 1 MiB",
      bytes: concat([
        PREAMBLE,
        file,
        frameOf(DATA, new Uint8Array(MiB + 1)).subarray(0, 9),
      ]),
      reason: "the data frame is 1048577 bytes",
      offset: afterFile,
    },
    {
      name: "an empty data frame",
      bytes: concat([PREAMBLE, file, frameOf(DATA, new Uint8Array(0))]),
      reason: "the data frame is 0 bytes",
      offset: afterFile,
    },
    {
      name: "a short entry-end frame",
      bytes: concat([
        PREAMBLE,
        file,
        frameOf(DATA, abc),
        frameOf(ENTRY_END, new Uint8Array(31)),
      ]),
      reason: "the entry-end frame is 31 bytes \\(allowed: exactly 32\\)",
      offset: afterFile + 16,
    },
    {
      name: "a data frame between entries",
      bytes: concat([PREAMBLE, frameOf(DATA, abc)]),
      reason: "unexpected data frame between entries",
      offset: 9,
    },
    {
      name: "a header inside an entry",
      bytes: concat([PREAMBLE, file, file]),
      reason: "unexpected header frame inside an entry",
      offset: afterFile,
    },
    {
      name: "an end frame inside an entry",
      bytes: concat([PREAMBLE, file, frameOf(END, u64(1))]),
      reason: "unexpected end frame inside an entry",
      offset: afterFile,
    },
    {
      name: "data longer than the declared size",
      bytes: concat([PREAMBLE, file, frameOf(DATA, encoder.encode("abcd"))]),
      reason: "longer than its declared 3 bytes",
      offset: afterFile,
    },
    {
      name: "data shorter than the declared size",
      bytes: concat([
        PREAMBLE,
        file,
        frameOf(DATA, encoder.encode("ab")),
        emptySha,
      ]),
      reason: "ends after 2 of its declared 3 bytes",
      offset: afterFile + 15,
    },
    {
      name: "a directory with a size",
      bytes: concat([
        PREAMBLE,
        frameOf(HEADER, headerPayload({ kind: 1, size: 1n })),
      ]),
      reason: "a directory entry declares 1 bytes",
      offset: 9,
    },
    {
      name: "an unknown entry type",
      bytes: concat([PREAMBLE, frameOf(HEADER, headerPayload({ kind: 4 }))]),
      reason: "unknown entry type 4",
      offset: 9,
    },
    {
      name: "unknown header flags",
      bytes: concat([PREAMBLE, frameOf(HEADER, headerPayload({ flags: 2 }))]),
      reason: "unknown header flags 2",
      offset: 9,
    },
    {
      name: "a size beyond 2^53 - 1",
      bytes: concat([
        PREAMBLE,
        frameOf(HEADER, headerPayload({ size: 2n ** 53n })),
      ]),
      reason: "beyond 2\\^53 - 1",
      offset: 9,
    },
    {
      name: "an mtime no Date can hold",
      bytes: concat([
        PREAMBLE,
        frameOf(HEADER, headerPayload({ mtime: 8_640_000_000_000_001n })),
      ]),
      reason: "mtime .* is out of range",
      offset: 9,
    },
    {
      name: "bytes after the header fields",
      bytes: concat([
        PREAMBLE,
        frameOf(HEADER, headerPayload({ extra: new Uint8Array(1) })),
      ]),
      reason: "bytes after its fields",
      offset: 9,
    },
    {
      name: "a path length past the end of the header",
      bytes: concat([
        PREAMBLE,
        frameOf(
          HEADER,
          headerPayload({ path: encoder.encode("abc") }).subarray(0, 26),
        ),
      ]),
      reason: "ends inside its path",
      offset: 9,
    },
    {
      name: "a link flag without a link target",
      bytes: concat([
        PREAMBLE,
        frameOf(HEADER, headerPayload({ kind: 2, flags: 1 })),
      ]),
      reason: "ends before its link target",
      offset: 9,
    },
    {
      name: "a path that is not UTF-8",
      bytes: concat([
        PREAMBLE,
        frameOf(HEADER, headerPayload({ path: new Uint8Array([0x61, 0xff]) })),
      ]),
      reason: "path is not valid UTF-8",
      offset: 9,
    },
    {
      name: "an end frame with the wrong count",
      bytes: concat([PREAMBLE, frameOf(END, u64(1))]),
      reason: "counts 1 entries, the stream carried 0",
      offset: 9,
    },
    {
      name: "an unsupported version",
      bytes: concat([
        encoder.encode("sluicefr"),
        new Uint8Array([2]),
        frameOf(END, u64(0)),
      ]),
      reason: "unsupported version 2",
      offset: 8,
    },
    {
      name: "another format's magic",
      bytes: encoder.encode("PK\x03\x04 not frames"),
      reason: "bad magic",
      offset: 0,
    },
  ];
  for (const c of cases) {
    await assert.rejects(
      decodeAll(c.bytes),
      isFramesError(c.reason, c.offset),
      c.name,
    );
  }
});

Deno.test("decodeFrames rejects bytes after the end frame with a FormatError at their offset", async () => {
  const frames = await encode([{ path: "a", bytes: encoder.encode("a") }]);
  for (const extra of [new Uint8Array(1), frames]) {
    await assert.rejects(
      decodeAll(concat([frames, extra])),
      isFramesError("data after the end frame", frames.length),
    );
  }
});

// --- truncation -------------------------------------------------------------

Deno.test("decodeFrames reports a stream cut at any offset as an IncompleteStreamError", async () => {
  const mtime = new Date(1_700_000_000_000);
  const frames = await encode([
    { path: "hello.txt", bytes: encoder.encode("hello"), mtime },
    { path: "dir", type: "directory", mtime },
  ]);
  for (let cut = 0; cut < frames.length; cut++) {
    await assert.rejects(
      decodeAll(frames.subarray(0, cut)),
      (error) => {
        assert.ok(
          error instanceof IncompleteStreamError,
          `cut at ${cut}: ${error}`,
        );
        assert.equal(error.received, cut);
        assert.ok(error.expected > cut);
        return true;
      },
    );
  }
});

Deno.test("decodeFrames reports a large body cut short as an IncompleteStreamError from the body", async () => {
  const frames = await encode([{ path: "big", bytes: randomBytes(3 * MiB) }]);
  for (
    const cut of [
      100,
      MiB,
      MiB + 30,
      2 * MiB + 13,
      frames.length - 60,
      frames.length - 1,
    ]
  ) {
    await assert.rejects(
      decodeAll(streamOf(frames.subarray(0, cut), 65536)),
      (error) =>
        error instanceof IncompleteStreamError && error.received === cut,
      `cut at ${cut}`,
    );
  }
});

// --- bodies: draining and pulling --------------------------------------------

Deno.test("decodeFrames drains an unread body, and the next entry still arrives intact", async () => {
  const first = randomBytes(3 * MiB + 1);
  const second = randomBytes(1000);
  const frames = await encode([
    { path: "skipped", bytes: first },
    { path: "cancelled", bytes: randomBytes(2 * MiB) },
    { path: "half-read", bytes: randomBytes(2 * MiB) },
    { path: "read", bytes: second },
  ]);
  const decoded = decodeFrames(streamOf(frames, 65536));
  const seen: string[] = [];
  let skipped: ReadableStream<Uint8Array> | undefined;
  let halfRead: ReadableStreamDefaultReader<Uint8Array> | undefined;
  for await (const e of decoded) {
    seen.push(e.path);
    if (e.path === "skipped") skipped = e.body;
    if (e.path === "cancelled") await e.body.cancel();
    if (e.path === "half-read") {
      halfRead = e.body.getReader();
      await halfRead.read();
    }
    if (e.path === "read") {
      assertSameBytes(await new Response(e.body).bytes(), second);
    }
  }
  assert.deepEqual(seen, ["skipped", "cancelled", "half-read", "read"]);
  assert.equal(decoded.bytesRead, frames.length);
  // A body read after the iterator moved on fails rather than looking empty.
  await assert.rejects(new Response(skipped).bytes(), TypeError);
  await assert.rejects(halfRead!.read(), TypeError);
});

Deno.test("decodeFrames still verifies a body it drains: a bad SHA-256 in an unread body rejects the next step", async () => {
  const stream = concat([
    PREAMBLE,
    frameOf(HEADER, headerPayload({ size: 3n })),
    frameOf(DATA, encoder.encode("abd")),
    frameOf(ENTRY_END, hexBytes(sha256(encoder.encode("abc")))),
    frameOf(END, u64(1)),
  ]);
  const iterator = decodeFrames(streamOf(stream))[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).done, false);
  await assert.rejects(
    iterator.next(),
    (e) => e instanceof IntegrityError && e.check === "sha256",
  );
});

Deno.test("decodeFrames pulls a body from its source only as the body is read", async () => {
  const frames = await encode([
    { path: "big", bytes: randomBytes(8 * MiB), piece: MiB },
  ]);
  let pulled = 0;
  const piece = 64 * 1024;
  const counted = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= frames.length) return controller.close();
      controller.enqueue(frames.slice(pulled, pulled + piece));
      pulled += piece;
    },
  }, { highWaterMark: 0 });
  const decoded = decodeFrames(counted);
  const iterator = decoded[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal(first.done, false);
  await sleep(20);
  assert.ok(
    pulled <= 2 * piece,
    `pulled ${pulled} bytes before the body was read`,
  );
  const reader = first.value!.body.getReader();
  const chunk = await reader.read();
  assert.equal(chunk.value!.length, MiB);
  await sleep(20);
  // One data frame (1 MiB and its 13 bytes), and no more than a piece beyond.
  assert.ok(pulled <= MiB + 3 * piece, `pulled ${pulled} bytes for one frame`);
  assert.ok(decoded.bytesRead <= MiB + 200);
  await reader.cancel();
  assert.equal((await iterator.next()).done, true);
  assert.equal(pulled, Math.ceil(frames.length / piece) * piece);
});

Deno.test("decodeFrames can be iterated only once", () => {
  const decoded = decodeFrames(streamOf(PREAMBLE));
  decoded[Symbol.asyncIterator]();
  assert.throws(() => decoded[Symbol.asyncIterator](), TypeError);
});

Deno.test("decodeFrames refuses a path or link target over maxPathBytes with LimitError, and a bad limit with RangeError", async () => {
  const longPath = await encode([{
    path: "p".repeat(5000),
    type: "directory",
  }]);
  await assert.rejects(
    decodeAll(longPath),
    (e) => e instanceof LimitError && e.limit === 4096 && e.actual === 5000,
  );
  assert.equal((await decodeAll(longPath, { maxPathBytes: 5000 })).length, 1);
  const longLink = await encode([{
    path: "l",
    type: "symlink",
    linkTarget: "t".repeat(300),
  }]);
  await assert.rejects(decodeAll(longLink, { maxPathBytes: 255 }), LimitError);
  for (const maxPathBytes of [0, 65536, 1.5, Number.NaN]) {
    assert.throws(
      () => decodeFrames(streamOf(longPath), { maxPathBytes }),
      RangeError,
    );
  }
});

// --- the encoder: backpressure, errors, cancellation ---------------------------

/** A body of `total` bytes in `piece`-byte pulls, counting what was pulled and whether it was cancelled. */
function countedBody(total: number, piece: number) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled >= total) return controller.close();
      const n = Math.min(piece, total - state.pulled);
      controller.enqueue(new Uint8Array(n));
      state.pulled += n;
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { state, stream };
}

/** An entries iterator that records next() and return() calls. */
function recordingEntries(list: ArchiveEntry[]) {
  const calls = { next: 0, return: 0 };
  const iterable: AsyncIterable<ArchiveEntry> = {
    [Symbol.asyncIterator]: () => ({
      next() {
        const value = list[calls.next++];
        return Promise.resolve(
          value === undefined
            ? { done: true, value: undefined }
            : { done: false, value },
        );
      },
      return() {
        calls.return++;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  return { calls, iterable };
}

function fileWith(
  body: ReadableStream<Uint8Array>,
  size: number,
  path = "f",
): ArchiveEntry {
  return { path, type: "file", size, mode: 0o644, mtime: MTIME, body };
}

Deno.test("encodeFrames reads an entry's body only as its output is pulled", async () => {
  const total = 16 * MiB;
  const { state, stream } = countedBody(total, 16 * 1024);
  const { calls, iterable } = recordingEntries([fileWith(stream, total)]);
  const reader = encodeFrames(iterable).getReader();
  await sleep(10);
  assert.equal(calls.next, 0, "nothing is asked for before the first read");
  await reader.read(); // preamble
  await reader.read(); // header
  assert.equal(calls.next, 1);
  await sleep(10);
  assert.equal(
    state.pulled,
    0,
    "the body is not read before its data is pulled",
  );
  const data = await reader.read();
  assert.equal(data.value!.length, 13 + 64 * 1024);
  await sleep(20);
  assert.equal(state.pulled, 64 * 1024);
  await reader.cancel();
});

Deno.test("cancelling the encoded stream calls return() on the entries iterator and cancels the current body", async () => {
  const { state, stream } = countedBody(4 * MiB, 65536);
  const { calls, iterable } = recordingEntries([
    fileWith(stream, 4 * MiB),
    fileWith(streamOf(new Uint8Array(1)), 1),
  ]);
  const reader = encodeFrames(iterable).getReader();
  for (let i = 0; i < 3; i++) await reader.read();
  await reader.cancel(new Error("receiver went away"));
  assert.equal(calls.return, 1);
  assert.equal(state.cancelled, true);
  assert.equal(calls.next, 1, "no entry is asked for after the cancel");
});

Deno.test("cancelling the encoded stream runs the finally of an entries generator", async () => {
  let closed = false;
  async function* entries(): AsyncGenerator<ArchiveEntry> {
    try {
      yield entry({ path: "a", bytes: new Uint8Array(10) });
      yield entry({ path: "b", bytes: new Uint8Array(10) });
    } finally {
      closed = true;
    }
  }
  const reader = encodeFrames(entries()).getReader();
  await reader.read();
  await reader.read();
  await reader.cancel();
  assert.equal(closed, true);
});

Deno.test("encodeFrames errors with CancelledError, cancels the body and calls return() when its signal aborts", async () => {
  const { state, stream } = countedBody(4 * MiB, 65536);
  const { calls, iterable } = recordingEntries([fileWith(stream, 4 * MiB)]);
  const controller = new AbortController();
  const reader = encodeFrames(iterable, { signal: controller.signal })
    .getReader();
  for (let i = 0; i < 3; i++) await reader.read();
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(
    reader.read(),
    (e) => e instanceof CancelledError && e.cause === reason,
  );
  await sleep(10);
  assert.equal(calls.return, 1);
  assert.equal(state.cancelled, true);

  const before = recordingEntries([]);
  const aborted = encodeFrames(before.iterable, {
    signal: AbortSignal.abort(),
  });
  await assert.rejects(new Response(aborted).bytes(), CancelledError);
  await sleep(10);
  assert.equal(before.calls.next, 0);
});

Deno.test("encodeFrames fails with IntegrityError (size) when a body yields more or fewer bytes than its size, and closes the source", async () => {
  for (const [size, actual] of [[10, 11], [10, 9], [0, 1]] as const) {
    const { calls, iterable } = recordingEntries([
      fileWith(streamOf(new Uint8Array(actual), 4), size),
    ]);
    await assert.rejects(
      new Response(encodeFrames(iterable)).bytes(),
      (e) =>
        e instanceof IntegrityError && e.check === "size" &&
        e.expected === String(size),
      `size ${size}, body ${actual}`,
    );
    assert.equal(calls.return, 1);
  }
});

Deno.test("encodeFrames refuses entries it cannot frame: RangeError for long paths, bad sizes or dates, TypeError for lone surrogates or unknown types", async () => {
  const base = () => entry({ path: "ok" });
  const bad: [ArchiveEntry, typeof RangeError | typeof TypeError][] = [
    [{ ...base(), path: "x".repeat(65536) }, RangeError],
    [{ ...base(), type: "symlink", linkTarget: "é".repeat(40000) }, RangeError],
    [{ ...base(), mtime: new Date(Number.NaN) }, RangeError],
    [{ ...base(), size: -1 }, RangeError],
    [{ ...base(), type: "directory", size: 3 }, RangeError],
    [{ ...base(), mode: 2 ** 32 }, RangeError],
    [{ ...base(), path: "bad\ud800" }, TypeError],
    [{ ...base(), type: "fifo" as EntryType }, TypeError],
  ];
  for (const [e, type] of bad) {
    const { calls, iterable } = recordingEntries([e]);
    await assert.rejects(
      new Response(encodeFrames(iterable)).bytes(),
      (error) => {
        assert.ok(error instanceof type, String(error));
        assert.match((error as Error).message, /^Cannot frame "/);
        return true;
      },
    );
    assert.equal(calls.return, 1);
  }
  // The largest path the format carries is accepted.
  const longest = await encode([{
    path: "x".repeat(65535),
    type: "directory",
  }]);
  assert.equal(
    (await decodeAll(longest, { maxPathBytes: 65535 }))[0]!.path.length,
    65535,
  );
});

// --- the decoder and signals ---------------------------------------------------

Deno.test("decodeFrames rejects with CancelledError when its signal aborts, even while the source stalls", async () => {
  const frames = await encode([{ path: "big", bytes: randomBytes(2 * MiB) }]);
  let cancelled = false;
  const stalled = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(frames.subarray(0, MiB / 2)); // then nothing, ever
    },
    cancel() {
      cancelled = true;
    },
  });
  const controller = new AbortController();
  const iterator = decodeFrames(stalled, { signal: controller.signal })
    [Symbol.asyncIterator]();
  const first = await iterator.next();
  const read = new Response(first.value!.body).bytes();
  await sleep(20);
  const reason = new Error("user pressed stop");
  controller.abort(reason);
  await assert.rejects(
    read,
    (e) => e instanceof CancelledError && e.cause === reason,
  );
  await assert.rejects(iterator.next(), CancelledError);
  assert.equal(cancelled, true);

  await assert.rejects(
    decodeAll(frames, { signal: AbortSignal.abort() }),
    CancelledError,
  );
});

// --- a real use ----------------------------------------------------------------

Deno.test({
  name:
    "frames carry the entries of a GNU tar from a peer over loopback HTTP to a receiver that never sees the tar",
  ignore: !(await hasTar()),
  fn: async () => {
    await using dir = await tempDir();
    const tree = `${dir.path}/tree`;
    await Deno.mkdir(`${tree}/sub`, { recursive: true });
    const big = randomBytes(3 * MiB + 17);
    await Deno.writeFile(`${tree}/sub/big.bin`, big);
    await Deno.writeTextFile(`${tree}/ünïcode.txt`, "héllo");
    await Deno.symlink("sub/big.bin", `${tree}/link`);
    const tar = await new Deno.Command("tar", {
      args: ["--format=pax", "-cf", "-", "-C", tree, "."],
      stdout: "piped",
    }).output();
    assert.ok(tar.success);

    await using server = serveLoopback(() =>
      new Response(encodeFrames(untar(ReadableStream.from([tar.stdout]))))
    );
    const response = await fetch(server.url);
    const received = new Map<string, Decoded>();
    const decoded = decodeFrames(response.body!);
    for await (const e of decoded) {
      received.set(e.path, await decodedEntry(e));
    }
    const get = (path: string) => {
      const found = received.get(path) ?? received.get(`./${path}`);
      assert.ok(found, `${path} in ${[...received.keys()]}`);
      return found;
    };
    assert.equal(sha256(get("sub/big.bin").bytes), sha256(big));
    assert.equal(new TextDecoder().decode(get("ünïcode.txt").bytes), "héllo");
    assert.equal(get("link").type, "symlink");
    assert.equal(get("link").linkTarget, "sub/big.bin");
    assert.equal(get("sub").type, "directory");
    const stat = await Deno.stat(`${tree}/sub/big.bin`);
    assert.equal(get("sub/big.bin").mode, stat.mode! & 0o7777);
    assert.equal(
      Math.floor(get("sub/big.bin").mtime / 1000),
      Math.floor(stat.mtime!.getTime() / 1000),
    );
    assert.ok(decoded.bytesRead > big.length);
  },
});

async function hasTar(): Promise<boolean> {
  try {
    return (await new Deno.Command("tar", {
      args: ["--version"],
      stdout: "null",
    }).output()).success;
  } catch {
    return false;
  }
}

// --- installing from frames ------------------------------------------------

Deno.test("install from a truncated or corrupted frame stream rolls back: typed error, nothing left", async () => {
  await using work = await tempDir("sluice_frames_install_");
  const big = randomBytes(3 * MiB);
  const bytes = await encode([
    { path: "app", type: "directory" },
    { path: "app/small.txt", bytes: encoder.encode("hello") },
    { path: "app/big.bin", bytes: big },
  ]);
  // The intact stream installs, and the manifest carries the hashes.
  const good = await install(decodeFrames(streamOf(bytes)), `${work.path}/ok`);
  assert.deepEqual(good.manifest.map((m) => [m.path, m.sha256]), [
    ["app/small.txt", sha256(encoder.encode("hello"))],
    ["app/big.bin", sha256(big)],
  ]);
  const cases: [string, Uint8Array, new (...args: never[]) => Error][] = [
    [
      "cut inside the big body",
      bytes.subarray(0, 2 * MiB),
      IncompleteStreamError,
    ],
    [
      "cut before the end frame",
      bytes.subarray(0, bytes.length - 10),
      IncompleteStreamError,
    ],
    ["a flipped byte in the big body", flip(bytes, 1 * MiB), FormatError],
  ];
  for (const [what, input, type] of cases) {
    await assert.rejects(
      install(decodeFrames(streamOf(input)), `${work.path}/target`),
      type,
      what,
    );
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(work.path))).map((e) => e.name),
      ["ok"],
      `${what}: no target and no staging directory left`,
    );
  }
});

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at]! ^= 0xff;
  return copy;
}
