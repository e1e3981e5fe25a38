// download() against every fault of the raw-TCP fault server: each case ends
// with the exact bytes at `path` (SHA-256) or with the right typed error,
// nothing at `path`, and at most a .part that is a true prefix of the file.

import assert from "node:assert/strict";
import {
  download,
  type DownloadEvent,
  type DownloadOptions,
  RangeNotHonoredError,
} from "../core/range.ts";
import { HttpError, IntegrityError } from "../core/errors.ts";
import {
  type Fault,
  type FaultServer,
  serveFaults,
  type Validators,
} from "./_fault_server.ts";
import { randomBytes, sha256 } from "./_data.ts";

const SIZE = 200_000;
const CUT = 60_000; // where the first answer breaks off
const FAST = { baseDelayMs: 1, maxDelayMs: 5 };
const reset: Fault = { kind: "reset", afterBytes: CUT };

interface Case {
  name: string;
  script: (Fault | undefined)[];
  validators?: Validators;
  options?: DownloadOptions;
  /** Runs on each progress event, with the server (to change the file). */
  during?: (server: FaultServer, event: DownloadEvent) => void;
  /** What the server serves at the end, when it changed; default the content. */
  final?: () => Uint8Array;
  /** The Range header of each request, in order (checked when given). */
  ranges?: (string | null)[];
  restarts?: number;
  /** The typed error expected instead of a file. */
  error?: (e: unknown) => boolean;
}

const content = randomBytes(SIZE);
const changed = randomBytes(SIZE);
const longer = randomBytes(SIZE + 5_000);

const cases: Case[] = [
  {
    name: "reset mid-body resumes with an open range",
    script: [reset],
    ranges: [null, `bytes=${CUT}-`],
  },
  {
    name: "a stall resumes after stallTimeoutMs",
    script: [{ kind: "stall", afterBytes: CUT, ms: 10_000 }],
    options: { stallTimeoutMs: 150 },
    ranges: [null, `bytes=${CUT}-`],
  },
  {
    name: "an ignored Range (a whole 200) on resume restarts from 0",
    script: [reset, { kind: "ignoreRange" }],
    ranges: [null, `bytes=${CUT}-`, null],
    restarts: 1,
  },
  {
    name: "a 206 at the wrong offset restarts from 0",
    script: [reset, { kind: "wrongOffset", shift: 100 }],
    restarts: 1,
  },
  {
    name: "a 206 with the wrong Content-Length restarts from 0",
    script: [reset, { kind: "wrongLength" }],
    restarts: 1,
  },
  {
    name: "a malformed Content-Range restarts from 0",
    script: [reset, {
      kind: "contentRange",
      value: `bytes ${CUT}-/${SIZE}`,
    }],
    restarts: 1,
  },
  {
    name: "a 206 without Content-Range restarts from 0",
    script: [reset, { kind: "contentRange", value: null }],
    restarts: 1,
  },
  {
    name:
      "a total that changed under the same ETag restarts and gets the new file",
    script: [reset],
    validators: { etag: '"same"' },
    during: (server, event) => {
      if (event.type === "progress") {
        server.setContent(longer, { etag: '"same"' });
      }
    },
    final: () => longer,
    restarts: 1,
  },
  {
    name: "the same length under a new ETag fails If-Range and restarts",
    script: [reset],
    during: (server, event) => {
      if (event.type === "progress") server.setContent(changed);
    },
    final: () => changed,
    ranges: [null, `bytes=${CUT}-`, null],
    restarts: 1,
  },
  {
    name: "a weak ETag and no Last-Modified resume unpinned",
    script: [reset],
    validators: { weak: true, lastModified: null },
    ranges: [null, `bytes=${CUT}-`],
  },
  {
    name: "412 on resume restarts from 0",
    script: [reset, { kind: "status", status: 412 }],
    ranges: [null, `bytes=${CUT}-`, null],
    restarts: 1,
  },
  {
    name: "a 200 carrying Content-Range from 0 is the whole file",
    script: [{ kind: "contentRangeOn200" }],
    ranges: [null],
  },
  {
    name: "a 200 carrying Content-Range on resume restarts from 0",
    script: [reset, { kind: "contentRangeOn200" }],
    restarts: 1,
  },
  {
    name: "a gzip 206 on resume restarts from 0",
    script: [reset, { kind: "gzip" }],
    restarts: 1,
  },
  {
    name: "a gzip 200 is refused, not saved as the file",
    script: [{ kind: "gzip" }],
    ranges: [null],
    error: (e) => e instanceof RangeNotHonoredError && /gzip/.test(e.message),
  },
  {
    name: "an early close with Content-Length resumes",
    script: [{ kind: "closeEarly", afterBytes: CUT, withLength: true }],
    ranges: [null, `bytes=${CUT}-`],
  },
  {
    name: "an early close of a 206 without Content-Length resumes",
    script: [reset, {
      kind: "closeEarly",
      afterBytes: 1000,
      withLength: false,
    }],
    ranges: [null, `bytes=${CUT}-`, `bytes=${CUT + 1000}-`],
  },
  {
    name:
      "an early close of a 200 without Content-Length is caught by a range probe",
    script: [{ kind: "closeEarly", afterBytes: CUT, withLength: false }],
    ranges: [null, `bytes=${CUT}-`],
  },
  {
    name: "a 206 to a request without Range is refused",
    script: [{
      kind: "status",
      status: 206,
      headers: { "content-range": `bytes 0-9/${SIZE}` },
      body: "0123456789",
    }],
    ranges: [null],
    error: (e) => e instanceof RangeNotHonoredError,
  },
  {
    name: "404 fails at once with HttpError",
    script: [{ kind: "status", status: 404 }],
    ranges: [null],
    error: (e) => e instanceof HttpError && e.status === 404,
  },
  {
    name: "restarts are capped: a server that never honours ranges fails typed",
    script: [
      reset,
      { kind: "ignoreRange" },
      reset,
      { kind: "ignoreRange" },
      reset,
      { kind: "ignoreRange" },
    ],
    options: { maxRestarts: 2 },
    error: (e) => e instanceof RangeNotHonoredError,
  },
];

async function runCase(c: Case): Promise<void> {
  await using server = await serveFaults(content, c.script, c.validators);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/file.bin`;
    const result = await download(server.url, path, {
      retry: FAST,
      ...c.options,
      onProgress: (event) => c.during?.(server, event),
    }).catch((e: unknown) => ({ error: e }));
    if (c.ranges) {
      assert.deepEqual(server.requests.map((r) => r.range), c.ranges, c.name);
    }
    assert.ok(
      server.requests.every((r) => r.acceptEncoding === "identity"),
      `${c.name}: every request asks for identity`,
    );
    if (c.error) {
      assert.ok("error" in result, `${c.name}: expected an error`);
      assert.ok(c.error(result.error), `${c.name}: got ${result.error}`);
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound, c.name);
      await assertTruePrefix(path, c.name);
      return;
    }
    if ("error" in result) throw result.error;
    const expected = c.final?.() ?? content;
    assert.equal(sha256(await Deno.readFile(path)), sha256(expected), c.name);
    assert.equal(result.sha256, sha256(expected), c.name);
    assert.equal(result.restarts, c.restarts ?? 0, c.name);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["file.bin"],
      `${c.name}: no .part or manifest remains`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A .part left for resuming holds exactly the manifest's offset of true bytes. */
async function assertTruePrefix(path: string, name: string): Promise<void> {
  let kept: Uint8Array;
  try {
    kept = await Deno.readFile(`${path}.part`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  const manifest = JSON.parse(await Deno.readTextFile(`${path}.part.json`));
  assert.ok(kept.length >= manifest.offset, name);
  assert.deepEqual(
    kept.subarray(0, manifest.offset),
    content.subarray(0, manifest.offset),
    `${name}: the kept prefix is the file's`,
  );
}

for (const c of cases) {
  Deno.test(`download() fault: ${c.name}`, () => runCase(c));
}

Deno.test("download() waits out 503 with Retry-After in seconds and 429 with a date", async () => {
  await using server = await serveFaults(content, [
    { kind: "status", status: 503, headers: { "retry-after": "1" } },
    {
      kind: "status",
      status: 429,
      headers: { "retry-after": new Date(Date.now() + 3000).toUTCString() },
    },
  ]);
  const dir = await Deno.makeTempDir();
  try {
    const started = performance.now();
    const receipt = await download(server.url, `${dir}/f`, {
      retry: { ...FAST, maxDelayMs: 5000 },
    });
    const waited = performance.now() - started;
    assert.equal(receipt.sha256, sha256(content));
    assert.equal(server.requests.length, 3);
    // 1 s for the 503, then until the date (whole seconds: 1 to 2 s more).
    assert.ok(waited >= 1900, `waited ${waited} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() pins by a strong Last-Modified only when there is no ETag at all", async () => {
  // RFC 9110 §13.1.5: never a weak ETag in If-Range, and a date only when
  // the representation has no entity-tag.
  const cases: [Validators, (ifRange: string | null) => boolean][] = [
    [{ weak: true }, (ifRange) => ifRange === null],
    [
      { etag: null },
      (ifRange) => ifRange !== null && !isNaN(Date.parse(ifRange)),
    ],
  ];
  for (const [validators, expected] of cases) {
    await using server = await serveFaults(content, [reset], validators);
    const dir = await Deno.makeTempDir();
    try {
      const receipt = await download(server.url, `${dir}/f`, { retry: FAST });
      assert.equal(receipt.sha256, sha256(content));
      const resumed = server.requests[1];
      assert.equal(resumed?.range, `bytes=${CUT}-`);
      assert.ok(
        expected(resumed.ifRange),
        `${JSON.stringify(validators)}: ${resumed.ifRange}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

/** Leaves `path.part` and its manifest as a download stopped at `offset` would. */
async function seedPart(
  path: string,
  bytes: Uint8Array,
  etag: string,
  total: number,
): Promise<void> {
  await Deno.writeFile(`${path}.part`, bytes);
  await Deno.writeTextFile(
    `${path}.part.json`,
    JSON.stringify({
      version: 1,
      url: "http://127.0.0.1/",
      validator: { header: "etag", value: etag },
      total,
      offset: bytes.length,
    }),
  );
}

Deno.test("download() completes a whole .part on a 416 for the same total, verifying its digest", async () => {
  await using server = await serveFaults(content, [], { etag: '"v1"' });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f`;
    await seedPart(path, content, '"v1"', SIZE);
    const receipt = await download(server.url, path, {
      sha256: sha256(content),
    });
    assert.equal(receipt.resumedFrom, SIZE);
    assert.deepEqual(server.requests.map((r) => r.range), [`bytes=${SIZE}-`]);
    assert.equal(sha256(await Deno.readFile(path)), sha256(content));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() restarts on a 416 whose total is smaller than the .part", async () => {
  await using server = await serveFaults(content, [
    { kind: "status416", total: SIZE - 1000 },
  ], { etag: '"v1"' });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/f`;
    await seedPart(path, content, '"v1"', SIZE);
    const receipt = await download(server.url, path, {});
    assert.equal(receipt.restarts, 1);
    assert.deepEqual(server.requests.map((r) => r.range), [
      `bytes=${SIZE}-`,
      null,
    ]);
    assert.equal(sha256(await Deno.readFile(path)), sha256(content));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() of a truncated 200 without any length fails the digest and keeps nothing", async () => {
  // No Accept-Ranges either: nothing tells the cut from the end but the digest.
  await using server = await serveFaults(content, [{
    kind: "respond",
    handler: () =>
      new Response(content.slice(0, CUT), { headers: { etag: '"v1"' } }),
  }]);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      download(server.url, `${dir}/f`, { sha256: sha256(content) }),
      (e) => e instanceof IntegrityError && e.check === "sha256",
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() of an empty file writes an empty file", async () => {
  await using server = await serveFaults(new Uint8Array(0));
  const dir = await Deno.makeTempDir();
  try {
    const receipt = await download(server.url, `${dir}/empty`, { size: 0 });
    assert.equal(receipt.bytes, 0);
    assert.equal((await Deno.stat(`${dir}/empty`)).size, 0);
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["empty"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
