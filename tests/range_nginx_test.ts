// rangeStream() and download() against a real nginx on a loopback port:
// resuming after a cancel and after a cut connection, and noticing when the
// file changed on disk between attempts. Needs nginx (Debian nginx-light);
// without it these tests fail loudly rather than skip.

import assert from "node:assert/strict";
import {
  download,
  type DownloadEvent,
  rangeStream,
  ResourceChangedError,
} from "../core/range.ts";
import { CancelledError } from "../core/errors.ts";
import { startNginx } from "./_nginx.ts";
import { MiB, randomBytes, sha256 } from "./_data.ts";

const SIZE = 8 * MiB;

interface Exchange {
  range: string | null;
  ifRange: string | null;
  status: number;
  etag: string | null;
}

/**
 * The global fetch, recording each exchange; with `cut`, the first
 * response's body breaks after `cut.after` bytes, running `cut.before`
 * first (to change the file while the client is mid-body).
 */
function recordingFetch(
  log: Exchange[],
  cut?: { after: number; before?: () => Promise<void> },
): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    const response = await fetch(input, init);
    log.push({
      range: headers.get("range"),
      ifRange: headers.get("if-range"),
      status: response.status,
      etag: response.headers.get("etag"),
    });
    if (cut === undefined || log.length > 1 || response.body === null) {
      return response;
    }
    let seen = 0;
    const cutBody = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(piece, controller) {
          const room = cut.after - seen;
          seen += piece.length;
          if (room > piece.length) return controller.enqueue(piece);
          controller.enqueue(piece.subarray(0, room));
          await cut.before?.();
          throw new TypeError("error reading a body from connection");
        },
      }),
    );
    return new Response(cutBody, {
      status: response.status,
      headers: response.headers,
    });
  };
}

async function fixture(content: Uint8Array) {
  const root = await Deno.makeTempDir();
  const out = await Deno.makeTempDir();
  await Deno.writeFile(`${root}/file.bin`, content);
  const nginx = await startNginx(root);
  return {
    root,
    out,
    url: `${nginx.url}file.bin`,
    async [Symbol.asyncDispose]() {
      await nginx[Symbol.asyncDispose]();
      await Deno.remove(root, { recursive: true });
      await Deno.remove(out, { recursive: true });
    },
  };
}

/** Starts downloading `url` to `path` and cancels once `bytes` arrived, leaving the .part. */
async function cancelAfter(url: string, path: string, bytes: number) {
  const stop = new AbortController();
  await assert.rejects(
    download(url, path, {
      checkpointBytes: MiB,
      signal: stop.signal,
      onProgress: (e) => {
        if (e.type === "progress" && e.bytes >= bytes) stop.abort();
      },
    }),
    CancelledError,
  );
}

Deno.test("nginx: a cancelled download resumes in the next call with a 206 pinned by nginx's ETag", async () => {
  const content = randomBytes(SIZE);
  await using f = await fixture(content);
  const path = `${f.out}/file.bin`;
  await cancelAfter(f.url, path, 3 * MiB);
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  const manifest = JSON.parse(await Deno.readTextFile(`${path}.part.json`));
  assert.ok(manifest.offset >= 3 * MiB, `offset ${manifest.offset}`);
  assert.equal(manifest.validator.header, "etag");

  const log: Exchange[] = [];
  const receipt = await download(f.url, path, {
    sha256: sha256(content),
    fetch: recordingFetch(log),
  });
  assert.equal(receipt.resumedFrom, manifest.offset);
  assert.deepEqual(log, [{
    range: `bytes=${manifest.offset}-`,
    ifRange: manifest.validator.value,
    status: 206,
    etag: manifest.validator.value,
  }]);
  assert.equal(sha256(await Deno.readFile(path)), sha256(content));
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(f.out))).map((e) => e.name),
    ["file.bin"],
  );
});

Deno.test("nginx: a connection cut mid-body is resumed within the same call", async () => {
  const content = randomBytes(SIZE);
  await using f = await fixture(content);
  const log: Exchange[] = [];
  const receipt = await download(f.url, `${f.out}/file.bin`, {
    fetch: recordingFetch(log, { after: 5 * MiB }),
    retry: { baseDelayMs: 1 },
  });
  assert.equal(receipt.sha256, sha256(content));
  assert.equal(receipt.restarts, 0);
  assert.deepEqual(log.map((e) => [e.range, e.status]), [
    [null, 200],
    [`bytes=${5 * MiB}-`, 206],
  ]);
  assert.equal(log[1]?.ifRange, log[0]?.etag);
});

/** Rewrites the served file with new bytes of the same size and a new mtime. */
async function replaceOnDisk(path: string, bytes: Uint8Array): Promise<void> {
  await Deno.writeFile(path, bytes);
  const later = new Date(Date.now() + 60_000); // nginx's ETag is mtime-size
  await Deno.utime(path, later, later);
}

Deno.test("nginx: a file changed on disk between calls is downloaded again from 0", async () => {
  const before = randomBytes(SIZE);
  const after = randomBytes(SIZE);
  await using f = await fixture(before);
  const path = `${f.out}/file.bin`;
  await cancelAfter(f.url, path, 2 * MiB);
  await replaceOnDisk(`${f.root}/file.bin`, after);
  const log: Exchange[] = [];
  const events: DownloadEvent[] = [];
  const receipt = await download(f.url, path, {
    fetch: recordingFetch(log),
    onProgress: (e) => events.push(e),
  });
  // If-Range with the old ETag: nginx sends the new file whole, with its new ETag.
  assert.equal(log[0]?.status, 200);
  assert.notEqual(log[0]?.etag, log[0]?.ifRange);
  assert.equal(receipt.restarts, 1);
  assert.equal(events.filter((e) => e.type === "restart").length, 1);
  assert.equal(receipt.sha256, sha256(after));
  assert.equal(sha256(await Deno.readFile(path)), sha256(after));
});

Deno.test("nginx: rangeStream() rejects a resume after the file changed under it mid-stream", async () => {
  const content = randomBytes(SIZE);
  await using f = await fixture(content);
  const log: Exchange[] = [];
  const stream = rangeStream(f.url, {
    retry: { baseDelayMs: 1 },
    fetch: recordingFetch(log, {
      after: MiB,
      before: () => replaceOnDisk(`${f.root}/file.bin`, randomBytes(SIZE)),
    }),
  });
  await assert.rejects(
    new Response(stream).bytes(),
    (e) => e instanceof ResourceChangedError,
  );
  assert.deepEqual(log.map((e) => [e.range, e.status]), [
    [null, 200],
    [`bytes=${MiB}-`, 200],
  ]);
});
