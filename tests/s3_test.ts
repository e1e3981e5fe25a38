// s3Sink, s3Object and s3Store against a real Ceph RGW (scripts/local_s3.sh),
// with faults injected by a loopback proxy in front of it.

import assert from "node:assert/strict";
import {
  ChunkNotFoundError,
  decryptStream,
  dirStore,
  multiStore,
  seal,
} from "../core/chunks.ts";
import { CancelledError, HttpError, IntegrityError } from "../core/errors.ts";
import { ResourceChangedError } from "../core/range.ts";
import { parseSinkConfig } from "../sinks/config.ts";
import { MIN_PART_SIZE, s3Object, s3Sink, s3Store } from "../sinks/s3.ts";
import { SpillStore } from "../spill/mod.ts";
import { sluice } from "./_cli.ts";
import { MiB, randomBytes, sha256, streamOf } from "./_data.ts";
import { names, tempDir } from "./_fs.ts";
import {
  awsEnv,
  credentials,
  faultProxy,
  freshBucket,
  ignore,
  listKeys,
  listUploads,
  s3Request,
} from "./_s3.ts";

const PART = MIN_PART_SIZE;

async function readBack(
  at: Awaited<ReturnType<typeof freshBucket>>,
  key: string,
): Promise<Uint8Array> {
  return await new Response(s3Object({ ...at, key })).bytes();
}

// No object at `key` and no multipart upload left open in the bucket.
async function assertNothingLeft(bucket: string, key: string): Promise<void> {
  const head = await s3Request("HEAD", `/${bucket}/${key}`);
  assert.equal(head.status, 404, `${key} must not exist`);
  assert.deepEqual(await listUploads(bucket), [], "no upload left open");
}

// A source that hands out `bytes`, then fails with `error`.
function failingAfter(bytes: Uint8Array, error: Error) {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(error);
      sent = true;
      controller.enqueue(bytes);
    },
  });
}

Deno.test({
  name: "s3Sink round-trips 0 B, 1 B, one part, several parts and 64 MiB",
  ignore,
  async fn() {
    const at = await freshBucket();
    const cases: [string, number, number][] = [
      ["empty", 0, 0],
      ["one-byte", 1, 0],
      ["one-part", PART, 0], // exactly one part: a single PUT
      ["parts", 3 * PART + 12_345, 4], // a short last part
      ["big", 64 * MiB, 8], // 8 MiB parts by default
    ];
    for (const [key, size, parts] of cases) {
      const data = randomBytes(size);
      const sink = s3Sink({
        ...at,
        key,
        ...(key === "big" ? {} : { partSize: PART }),
      });
      const receipt = await sink.deliver(streamOf(data, 65_536 + 7), {
        size,
        contentType: "application/x-test",
      });
      assert.equal(receipt.sink, "s3");
      assert.equal(receipt.bytes, size, key);
      assert.equal(receipt.sha256, sha256(data), key);
      assert.equal(receipt.location, `${at.endpoint}/${at.bucket}/${key}`);
      assert.equal(receipt.detail?.parts, parts, key);
      const head = await s3Request("HEAD", `/${at.bucket}/${key}`);
      assert.equal(head.headers.get("etag"), receipt.detail?.etag, key);
      assert.equal(head.headers.get("content-type"), "application/x-test");
      if (parts > 0) {
        assert.match(head.headers.get("etag")!, new RegExp(`-${parts}"$`));
      }
      const back = await readBack(at, key);
      assert.equal(back.length, size, key);
      assert.equal(sha256(back), sha256(data), key);
    }
    assert.deepEqual(
      (await listKeys(at.bucket)).sort(),
      cases.map(([key]) => key).sort(),
    );
    assert.deepEqual(await listUploads(at.bucket), []);
  },
});

Deno.test({
  name:
    "bodies are signed by their SHA-256 over http and sent as UNSIGNED-PAYLOAD over https",
  ignore,
  async fn() {
    const at = await freshBucket();
    const data = randomBytes(2 * PART + 7);
    for (const scheme of ["http", "https"]) {
      const hashes: string[] = [];
      // RGW here speaks plain http; the signature covers the host, not the
      // scheme, so an https endpoint can be carried to it unchanged.
      const carry: typeof fetch = (input, init) => {
        const url = new URL(input as URL);
        if (init?.body) {
          hashes.push(new Headers(init.headers).get("x-amz-content-sha256")!);
        }
        url.protocol = "http:";
        return fetch(url, init);
      };
      const endpoint = at.endpoint.replace(/^http:/, `${scheme}:`);
      const key = `signed-${scheme}`;
      await s3Sink({ ...at, endpoint, key, partSize: PART, fetch: carry })
        .deliver(streamOf(data, 1 << 20));
      await s3Store({ ...at, endpoint, fetch: carry }).put(
        sha256(data),
        data,
      );
      assert.equal(hashes.length, 5, scheme); // 3 parts, completion, chunk
      for (const hash of hashes) {
        assert.match(
          hash,
          scheme === "https" ? /^UNSIGNED-PAYLOAD$/ : /^[0-9a-f]{64}$/,
        );
      }
      assert.equal(sha256(await readBack(at, key)), sha256(data));
    }
  },
});

Deno.test({
  name:
    "a source that fails halfway leaves no object and no open multipart upload",
  ignore,
  async fn() {
    const at = await freshBucket();
    const boom = new Error("source broke");
    const sink = s3Sink({ ...at, key: "half", partSize: PART });
    await assert.rejects(
      sink.deliver(failingAfter(randomBytes(2 * PART + 100), boom)),
      (error) => error === boom,
    );
    await assertNothingLeft(at.bucket, "half");
  },
});

Deno.test({
  name:
    "a part that fails twice then succeeds completes with the right bytes, and waits on disk with a spill store",
  ignore,
  async fn() {
    const at = await freshBucket();
    await using dir = await tempDir();
    await using spill = await SpillStore.open({ root: dir.path });
    let failures = 0;
    const spilledAtRetry: string[][] = [];
    await using proxy = await faultProxy((request) => {
      if (
        request.method === "PUT" &&
        request.url.searchParams.get("partNumber") === "2"
      ) {
        if (failures > 0) spilledAtRetry.push([...spill.keys()]);
        if (failures < 2) {
          failures++;
          return { status: 503, headers: { "retry-after": "0" } };
        }
      }
      return undefined;
    });
    const data = randomBytes(3 * PART + 1);
    const receipt = await s3Sink({
      ...at,
      endpoint: proxy.endpoint,
      key: "flaky",
      partSize: PART,
      spill,
      retry: { maxAttempts: 3, baseDelayMs: 10 },
    }).deliver(streamOf(data, 1 << 20));
    assert.equal(failures, 2);
    assert.equal(receipt.detail?.retries, 2);
    assert.equal(receipt.attempts, 3);
    // While part 2 waited for each retry it was in the spill store, not in memory.
    assert.equal(spilledAtRetry.length, 2);
    for (const keys of spilledAtRetry) assert.equal(keys.length, 1);
    assert.deepEqual([...spill.keys()], [], "the spilled part is deleted");
    const parts = proxy.requests.filter((r) =>
      r.method === "PUT" && r.url.searchParams.has("partNumber")
    ).map((r) => r.url.searchParams.get("partNumber"));
    assert.deepEqual(parts.sort(), ["1", "2", "2", "2", "3", "4"]);
    assert.equal(sha256(await readBack(at, "flaky")), sha256(data));
    assert.deepEqual(await listUploads(at.bucket), []);
  },
});

Deno.test({
  name:
    "a part that keeps failing fails the delivery with the server's error and aborts the upload",
  ignore,
  async fn() {
    const at = await freshBucket();
    await using proxy = await faultProxy((request) =>
      request.url.searchParams.get("partNumber") === "3"
        ? { status: 500 }
        : undefined
    );
    const error = await s3Sink({
      ...at,
      endpoint: proxy.endpoint,
      key: "doomed",
      partSize: PART,
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    }).deliver(streamOf(randomBytes(4 * PART), 1 << 20)).catch((e) => e);
    assert.ok(error instanceof HttpError, String(error));
    assert.equal(error.status, 500);
    assert.match(error.message, /InjectedFault/);
    assert.ok(
      proxy.requests.some((r) =>
        r.method === "DELETE" && r.url.searchParams.has("uploadId")
      ),
      "AbortMultipartUpload was sent",
    );
    await assertNothingLeft(at.bucket, "doomed");
  },
});

Deno.test({
  name: "cancelling a delivery aborts the multipart upload",
  ignore,
  async fn() {
    const at = await freshBucket();
    const controller = new AbortController();
    let sent = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        // Abort once two parts' worth went out; the source never ends.
        if (sent >= 2 * PART + 1) controller.abort(new Error("user stop"));
        sent += MiB;
        c.enqueue(randomBytes(MiB));
      },
    });
    const error = await s3Sink({ ...at, key: "cancelled", partSize: PART })
      .deliver(source, {}, { signal: controller.signal }).catch((e) => e);
    assert.ok(error instanceof CancelledError, String(error));
    await assertNothingLeft(at.bucket, "cancelled");
  },
});

Deno.test({
  name:
    "a declared size that does not match fails with IntegrityError and commits nothing",
  ignore,
  async fn() {
    const at = await freshBucket();
    for (const [key, size] of [["small", 10], ["multi", 2 * PART + 5]]) {
      const data = randomBytes(size as number);
      await assert.rejects(
        s3Sink({ ...at, key: key as string, partSize: PART }).deliver(
          streamOf(data, 1 << 20),
          { size: (size as number) + 1 },
        ),
        IntegrityError,
      );
      await assertNothingLeft(at.bucket, key as string);
    }
  },
});

Deno.test({
  name:
    "an upload the server stored with another size is deleted and fails with IntegrityError",
  ignore,
  async fn() {
    const at = await freshBucket();
    await using proxy = await faultProxy((request) =>
      request.method === "HEAD"
        ? { status: 200, headers: { "content-length": "1", etag: '"x-2"' } }
        : undefined
    );
    await assert.rejects(
      s3Sink({ ...at, endpoint: proxy.endpoint, key: "short", partSize: PART })
        .deliver(streamOf(randomBytes(PART + 1), 1 << 20)),
      (error) => error instanceof IntegrityError && error.check === "size",
    );
    assert.ok(proxy.requests.some((r) => r.method === "DELETE"));
    await assertNothingLeft(at.bucket, "short");
  },
});

Deno.test({
  name:
    "wrong credentials and a missing bucket fail with HttpError naming S3's code",
  ignore,
  async fn() {
    const at = await freshBucket();
    const wrong = s3Sink({
      ...at,
      key: "x",
      credentials: { ...credentials, secretAccessKey: "not-the-secret" },
      retry: { maxAttempts: 1 },
    });
    const denied = await wrong.deliver(streamOf(randomBytes(10))).catch((
      e,
    ) => e);
    assert.ok(denied instanceof HttpError);
    assert.equal(denied.status, 403);
    assert.match(denied.message, /SignatureDoesNotMatch/);
    const missing = await s3Sink({
      ...at,
      bucket: "no-such-bucket-here",
      key: "x",
    })
      .deliver(streamOf(randomBytes(10))).catch((e) => e);
    assert.ok(missing instanceof HttpError);
    assert.equal(missing.status, 404);
    assert.match(missing.message, /NoSuchBucket/);
    assert.deepEqual(await listKeys(at.bucket), []);
  },
});

Deno.test({
  name: "s3Object reads byte ranges and resumes after a cut with If-Match",
  ignore,
  async fn() {
    const at = await freshBucket();
    const data = randomBytes(3 * MiB + 17);
    await s3Sink({ ...at, key: "ranged" }).deliver(streamOf(data, 1 << 20));
    const range = await new Response(
      s3Object({ ...at, key: "ranged", start: 1000, end: 2 * MiB }),
    ).bytes();
    assert.deepEqual(range, data.subarray(1000, 2 * MiB));
    const tail = await new Response(
      s3Object({ ...at, key: "ranged", start: 3 * MiB }),
    ).bytes();
    assert.deepEqual(tail, data.subarray(3 * MiB));

    // The first answer is cut after 1 MiB: the rest comes with a Range
    // request pinned to the first answer's ETag.
    const sent: Headers[] = [];
    let cut = false;
    const cutting: typeof fetch = async (input, init) => {
      sent.push(new Headers(init?.headers));
      const response = await fetch(input, init);
      if (cut || response.body === null) return response;
      cut = true;
      let passed = 0;
      const reader = response.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (passed >= MiB) {
            await reader.cancel();
            return c.error(
              new TypeError("error reading a body from connection"),
            );
          }
          const { done, value } = await reader.read();
          if (done) return c.close();
          passed += value.length;
          c.enqueue(value);
        },
      });
      return new Response(body, response);
    };
    const events: string[] = [];
    const whole = await new Response(s3Object({
      ...at,
      key: "ranged",
      fetch: cutting,
      onProgress: (e) => {
        if (e.type !== "progress") events.push(e.type);
      },
    })).bytes();
    assert.equal(sha256(whole), sha256(data));
    assert.deepEqual(events, ["response", "resume", "response"]);
    assert.equal(sent.length, 2);
    assert.equal(sent[0]!.get("if-match"), null);
    const etag = (await s3Request("HEAD", `/${at.bucket}/ranged`)).headers.get(
      "etag",
    );
    assert.equal(sent[1]!.get("if-match"), etag);
    assert.match(sent[1]!.get("range")!, /^bytes=\d+-$/);
    assert.equal(sent[1]!.get("if-range"), null);
  },
});

Deno.test({
  name:
    "s3Object fails with ResourceChangedError when the object is replaced mid-read, and 404 for a missing key",
  ignore,
  async fn() {
    const at = await freshBucket();
    await s3Sink({ ...at, key: "moving" }).deliver(streamOf(randomBytes(MiB)));
    let cut = false;
    const replacing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (cut) return response;
      cut = true;
      // Replace the object, then cut the first answer after a few bytes.
      await s3Sink({ ...at, key: "moving" }).deliver(
        streamOf(randomBytes(MiB)),
      );
      const reader = response.body!.getReader();
      const { value } = await reader.read();
      await reader.cancel();
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(value!.subarray(0, 100));
            c.error(new TypeError("error reading a body from connection"));
          },
        }),
        response,
      );
    };
    await assert.rejects(
      new Response(s3Object({ ...at, key: "moving", fetch: replacing }))
        .bytes(),
      ResourceChangedError,
    );
    await assert.rejects(
      new Response(s3Object({ ...at, key: "absent" })).bytes(),
      (error) => error instanceof HttpError && error.status === 404,
    );
    // A stale ETag given up front fails at once.
    await assert.rejects(
      new Response(s3Object({ ...at, key: "moving", etag: '"stale"' }))
        .bytes(),
      ResourceChangedError,
    );
  },
});

Deno.test({
  name:
    "sealed chunks are stored in a bucket, decrypted from it, and mixed with a directory in multiStore",
  ignore,
  async fn() {
    const at = await freshBucket();
    const store = s3Store({ ...at, prefix: "vault" });
    const data = randomBytes(3 * MiB + 5);
    const { dataMap, key } = await seal(streamOf(data, 1 << 20), store, {
      chunkSize: MiB,
    });
    const keys = await listKeys(at.bucket);
    assert.equal(keys.length, dataMap.chunks.length);
    for (const k of keys) assert.match(k, /^vault\/chunks\/[0-9a-f]{64}$/);
    const first = dataMap.chunks[0]!.address;
    assert.equal(await store.has(first), true);
    assert.equal(await store.has("ab".repeat(32)), false);
    await assert.rejects(store.get("ab".repeat(32)), ChunkNotFoundError);
    const back = await new Response(decryptStream(dataMap, key, store))
      .bytes();
    assert.equal(sha256(back), sha256(data));

    // An empty directory first, the bucket second: every chunk fails over.
    await using dir = await tempDir();
    const mixed = multiStore([dirStore(dir.path), store]);
    const again = await new Response(decryptStream(dataMap, key, mixed))
      .bytes();
    assert.equal(sha256(again), sha256(data));

    // A chunk whose bytes are not its address is refused before upload.
    await assert.rejects(store.put("00".repeat(32), data), IntegrityError);
    assert.equal(await store.has("00".repeat(32)), false);
    // A missing bucket is not a missing chunk.
    await assert.rejects(
      s3Store({ ...at, bucket: "no-such-vault" }).get(first),
      (error) =>
        error instanceof HttpError && /NoSuchBucket/.test(error.message),
    );
  },
});

Deno.test({
  name: "parseSinkConfig builds S3 sinks from s3:// URLs and objects",
  ignore,
  async fn() {
    const at = await freshBucket();
    const env = (name: string) =>
      ({ ...awsEnv, AWS_REGION: "default" } as Record<string, string>)[name];
    const data = randomBytes(1000);
    const fromUrl = parseSinkConfig(
      `s3://${at.bucket}/from/url.bin?endpoint=${at.endpoint}`,
      { env },
    );
    const a = await fromUrl.deliver(streamOf(data));
    assert.equal(a.location, `${at.endpoint}/${at.bucket}/from/url.bin`);
    const fromObject = parseSinkConfig({
      type: "s3",
      bucket: at.bucket,
      key: "from object?.bin",
      endpoint: at.endpoint,
      region: "default",
      partSize: PART,
      maxAttempts: 2,
    }, { env });
    await fromObject.deliver(streamOf(data));
    const fromEnv = parseSinkConfig(`s3://${at.bucket}/from/env.bin`, {
      env: (name) => name === "AWS_ENDPOINT_URL" ? at.endpoint : env(name),
    });
    await fromEnv.deliver(streamOf(data));
    assert.deepEqual((await listKeys(at.bucket)).sort(), [
      "from object?.bin",
      "from/env.bin",
      "from/url.bin",
    ]);
    assert.deepEqual(
      await readBack(at, "from object?.bin"),
      data,
    );
  },
});

Deno.test("parseSinkConfig refuses bad s3 configurations with a clear message", () => {
  const env = (name: string) => awsEnv[name];
  const cases: [unknown, RegExp][] = [
    ["s3://bucket", /the object key is empty/],
    ["s3://bucket/", /the object key is empty/],
    ["s3://Bad_Bucket/k", /3 to 63 lowercase letters/],
    ["s3://ab/k", /3 to 63 lowercase letters/],
    ["s3://bucket/k?endpont=http://x", /unknown option "endpont"/],
    ["s3://bucket/k?endpoint=ftp://x", /must be an http\(s\) URL/],
    ["s3://bucket/k?endpoint=not a url", /is not a URL/],
    ["s3://bucket/a/../b", /path segments/],
    [{ type: "s3", bucket: "bucket" }, /"key" is required/],
    [
      { type: "s3", bucket: "bucket", key: "k", secret: "x" },
      /unknown field "secret"/,
    ],
    [
      { type: "s3", bucket: "bucket", key: "k", partSize: 1024 },
      /partSize must be/,
    ],
    [
      { type: "s3", bucket: "bucket", key: "k", concurrency: 0 },
      /concurrency must be/,
    ],
  ];
  for (const [config, message] of cases) {
    assert.throws(
      () => parseSinkConfig(config, { env }),
      (error) => error instanceof TypeError && message.test(error.message),
      JSON.stringify(config),
    );
  }
  assert.throws(
    () => parseSinkConfig("s3://bucket/k", { env: () => undefined }),
    /set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
  );
});

Deno.test({
  name:
    "the CLI seals into --store s3://, opens from it and delivers --to s3://",
  ignore,
  async fn() {
    const at = await freshBucket();
    await using dir = await tempDir();
    const data = randomBytes(2 * MiB + 3);
    await Deno.writeFile(`${dir.path}/in.bin`, data);
    const options = {
      cwd: dir.path,
      env: { ...awsEnv, AWS_REGION: "default" },
    };
    const store = `s3://${at.bucket}/sealed/?endpoint=${at.endpoint}`;
    const sealed = await sluice(["seal", "in.bin", "--store", store], options);
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.ok(
      (await listKeys(at.bucket)).every((k) => k.startsWith("sealed/chunks/")),
    );
    const opened = await sluice([
      "open",
      "in.bin.datamap.json",
      "--key",
      "in.bin.datamap.key",
      "--store",
      store,
      "--to",
      `s3://${at.bucket}/plain.bin?endpoint=${at.endpoint}`,
      "--json",
    ], options);
    assert.equal(opened.code, 0, opened.stderr);
    const receipt = JSON.parse(opened.stdout);
    assert.equal(receipt.receipt?.sink ?? receipt.sink, "s3");
    assert.equal(sha256(await readBack(at, "plain.bin")), sha256(data));
    assert.deepEqual(await names(dir.path), [
      "in.bin",
      "in.bin.datamap.json",
      "in.bin.datamap.key",
    ]);
  },
});
