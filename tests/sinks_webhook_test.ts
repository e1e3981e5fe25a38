// webhookSink against a real Deno.serve receiver on 127.0.0.1: streamed
// bodies, headers, retries (from a spill store and from memory), redirects,
// timeouts, failures that abort the request, and the SSRF guard.

import assert from "node:assert/strict";
import { CancelledError, HttpError } from "../core/errors.ts";
import { BlockedDestinationError, webhookSink } from "../sinks/mod.ts";
import { SpillStore } from "../spill/mod.ts";
import { MiB, randomBytes, sha256, streamOf } from "./_data.ts";

/** What the receiver saw of one request. */
interface Received {
  method: string;
  path: string;
  headers: Headers;
  /** The body's SHA-256 and length, when it arrived whole. */
  sha256?: string;
  bytes?: number;
  /** Set when reading the body failed (the sender aborted it). */
  bodyError?: unknown;
}

/**
 * A receiver on 127.0.0.1: `respond(request number from 0, path)` picks
 * the answer after the body has been read (or failed).
 */
function receiver(
  respond: (n: number, path: string) => Response | Promise<Response> = () =>
    new Response(null, { status: 204 }),
) {
  const received: Received[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      const entry: Received = {
        method: request.method,
        path,
        headers: request.headers,
      };
      received.push(entry);
      const n = received.length - 1;
      try {
        const body = await request.bytes();
        entry.sha256 = sha256(body);
        entry.bytes = body.length;
      } catch (error) {
        entry.bodyError = error;
        return new Response(null, { status: 400 });
      }
      return await respond(n, path);
    },
  );
  return {
    port: server.addr.port,
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    received,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A source that errors after `after` bytes, or is aborted from outside; records its cancel. */
function brokenSource(after: number, error?: Error) {
  const state = { cancelled: false, pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (state.pulled >= after) {
        if (error) return c.error(error);
        await new Promise(() => {}); // waits until cancelled
      }
      c.enqueue(randomBytes(65536));
      state.pulled += 65536;
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
};

Deno.test("webhookSink streams a multi-MiB body with content type and metadata headers, and returns a receipt", async () => {
  await using server = receiver();
  const body = randomBytes(6 * MiB + 5);
  const sink = webhookSink(server.url, {
    allowPrivateNetwork: true,
    headers: { authorization: "Bearer t0k3n" },
  });
  const receipt = await sink.deliver(streamOf(body, 100_000), {
    name: "café.bin",
    contentType: "application/x-test",
    size: body.length,
    headers: { "x-extra": "1" },
  });
  assert.equal(server.received.length, 1);
  const got = server.received[0]!;
  assert.equal(got.method, "POST");
  assert.equal(got.sha256, sha256(body));
  assert.equal(got.headers.get("content-type"), "application/x-test");
  assert.equal(got.headers.get("authorization"), "Bearer t0k3n");
  assert.equal(got.headers.get("x-extra"), "1");
  assert.equal(got.headers.get("x-sluice-name"), "caf%C3%A9.bin");
  assert.equal(got.headers.get("x-sluice-size"), String(body.length));
  assert.equal(got.headers.get("x-sluice-sha256"), null); // not spilled
  assert.equal(receipt.sink, "webhook");
  assert.equal(receipt.location, server.url);
  assert.equal(receipt.bytes, body.length);
  assert.equal(receipt.sha256, sha256(body));
  assert.equal(receipt.attempts, 1);
  assert.deepEqual(receipt.detail, { status: 204 });
});

Deno.test("webhookSink retries a 503 with Retry-After by replaying the body from a spill store, identical bytes both times", async () => {
  await using server = receiver((n) =>
    n === 0
      ? new Response("busy", { status: 503, headers: { "retry-after": "1" } })
      : new Response("ok")
  );
  const root = await Deno.makeTempDir();
  try {
    await using spill = await SpillStore.open({ root });
    const body = randomBytes(3 * MiB + 1);
    const started = performance.now();
    const receipt = await webhookSink(server.url, {
      allowPrivateNetwork: true,
      spill,
      retry: { maxAttempts: 3 },
    }).deliver(streamOf(body));
    assert.ok(performance.now() - started >= 950, "waited for Retry-After");
    assert.equal(server.received.length, 2);
    for (const got of server.received) {
      assert.equal(got.sha256, sha256(body));
      assert.equal(got.headers.get("x-sluice-sha256"), sha256(body));
      assert.equal(got.headers.get("x-sluice-size"), String(body.length));
    }
    assert.equal(receipt.attempts, 2);
    assert.equal(receipt.sha256, sha256(body));
    assert.deepEqual(receipt.detail, { status: 200 });
    assert.equal(spill.size, 0, "the spilled body is deleted");
    assert.deepEqual([...spill.keys()], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("webhookSink without a spill store retries from memory within maxBufferBytes, and sends a larger body once", async () => {
  const busyFirst = (n: number) =>
    n === 0
      ? new Response(null, { status: 503, headers: { "retry-after": "0" } })
      : new Response(null, { status: 200 });
  {
    await using server = receiver(busyFirst);
    const body = randomBytes(MiB);
    const receipt = await webhookSink(server.url, {
      allowPrivateNetwork: true,
      maxBufferBytes: 2 * MiB,
    }).deliver(streamOf(body));
    assert.equal(receipt.attempts, 2);
    assert.deepEqual(
      server.received.map((r) => r.sha256),
      [sha256(body), sha256(body)],
    );
  }
  {
    await using server = receiver(busyFirst);
    await assert.rejects(
      webhookSink(server.url, {
        allowPrivateNetwork: true,
        maxBufferBytes: MiB / 2,
      }).deliver(streamOf(randomBytes(MiB))),
      (e) => e instanceof HttpError && e.status === 503,
    );
    assert.equal(server.received.length, 1, "nothing to send again");
  }
});

Deno.test("webhookSink fails at once on a permanent 4xx", async () => {
  await using server = receiver(() => new Response("no", { status: 422 }));
  await assert.rejects(
    webhookSink(server.url, { allowPrivateNetwork: true }).deliver(
      streamOf(randomBytes(1000)),
    ),
    (e) => e instanceof HttpError && e.status === 422 && !e.retryable,
  );
  assert.equal(server.received.length, 1);
});

Deno.test("webhookSink with a source that errors halfway rejects with its error and aborts the request", async () => {
  await using server = receiver();
  const boom = new Error("source broke");
  const { stream } = brokenSource(MiB, boom);
  await assert.rejects(
    webhookSink(server.url, { allowPrivateNetwork: true }).deliver(stream),
    (e) => e === boom,
  );
  await until(() => server.received[0]?.bodyError !== undefined);
  assert.equal(server.received.length, 1);
  assert.ok(server.received[0]!.bodyError, "the receiver saw a broken body");
  assert.equal(server.received[0]!.sha256, undefined);
});

Deno.test("webhookSink aborted by its signal rejects with CancelledError, cancels the source and aborts the request", async () => {
  await using server = receiver();
  const { stream, state } = brokenSource(MiB);
  const controller = new AbortController();
  const delivery = webhookSink(server.url, { allowPrivateNetwork: true })
    .deliver(stream, {}, { signal: controller.signal });
  await until(() => state.pulled >= MiB);
  controller.abort();
  await assert.rejects(delivery, CancelledError);
  assert.ok(state.cancelled);
  await until(() => server.received[0]?.bodyError !== undefined);
  assert.ok(server.received[0]!.bodyError);
});

Deno.test("webhookSink times out an attempt whose receiver never answers", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  await using server = receiver(async () => {
    await released;
    return new Response(null);
  });
  const started = performance.now();
  await assert.rejects(
    webhookSink(server.url, {
      allowPrivateNetwork: true,
      timeoutMs: 200,
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    }).deliver(streamOf(randomBytes(1000))),
    (e) => (e as Error).name === "TimeoutError",
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 380 && elapsed < 5000, `${elapsed} ms`);
  assert.equal(server.received.length, 2);
  release();
});

Deno.test("webhookSink follows 307 and 308 with the same method and body, and refuses a redirect that would drop it", async () => {
  const body = randomBytes(100_000);
  {
    await using server = receiver((_, path) =>
      path === "/hook"
        ? new Response(null, { status: 307, headers: { location: "/moved" } })
        : path === "/moved"
        ? new Response(null, {
          status: 308,
          headers: { location: "/final" },
        })
        : new Response(null, { status: 201 })
    );
    const receipt = await webhookSink(server.url, {
      allowPrivateNetwork: true,
      method: "PUT",
    }).deliver(streamOf(body));
    assert.deepEqual(
      server.received.map((r) => [r.method, r.path, r.sha256]),
      [
        ["PUT", "/hook", sha256(body)],
        ["PUT", "/moved", sha256(body)],
        ["PUT", "/final", sha256(body)],
      ],
    );
    assert.equal(receipt.location, `http://127.0.0.1:${server.port}/final`);
    assert.deepEqual(receipt.detail, { status: 201 });
  }
  {
    await using server = receiver(() =>
      new Response(null, { status: 302, headers: { location: "/get-me" } })
    );
    await assert.rejects(
      webhookSink(server.url, { allowPrivateNetwork: true }).deliver(
        streamOf(body),
      ),
      (e) => e instanceof HttpError && /drop the body/.test(e.message),
    );
    assert.equal(server.received.length, 1);
  }
});

Deno.test("webhookSink refuses a redirect from an allowed host to a private address", async () => {
  await using server = receiver(() =>
    new Response(null, {
      status: 307,
      headers: { location: `http://127.0.0.1:${server.port}/inside` },
    })
  );
  await assert.rejects(
    webhookSink(`http://localhost:${server.port}/hook`, {
      allowedHosts: ["localhost"],
    }).deliver(streamOf(randomBytes(1000))),
    (e) =>
      e instanceof BlockedDestinationError && e.address === "127.0.0.1" &&
      !e.retryable,
  );
  assert.deepEqual(server.received.map((r) => r.path), ["/hook"]);
});

Deno.test("webhookSink's SSRF guard refuses every private, special and numeric-trick address, sending nothing", async () => {
  await using server = receiver();
  const port = server.port;
  const refused = [
    // Literals of every class.
    "http://127.0.0.1/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    // Names and numeric tricks for this very receiver.
    `http://localhost:${port}/hook`,
    `http://LOCALHOST.:${port}/hook`,
    `http://127.1:${port}/hook`,
    `http://0x7f.1:${port}/hook`,
    `http://2130706433:${port}/hook`,
    `http://0177.0.0.1:${port}/hook`,
    `http://0x7f000001:${port}/hook`,
    `http://[::ffff:127.0.0.1]:${port}/hook`,
    `http://[0:0:0:0:0:ffff:7f00:1]:${port}/hook`,
    // Not http.
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
    // Credentials in the URL.
    "https://user:pass@example.com/",
  ];
  for (const url of refused) {
    let pulled = false;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled = true;
        c.enqueue(new Uint8Array(1));
        c.close();
      },
    }, { highWaterMark: 0 });
    await assert.rejects(
      webhookSink(url).deliver(source),
      BlockedDestinationError,
      url,
    );
    assert.equal(pulled, false, `${url}: the body was not read`);
  }
  assert.equal(server.received.length, 0);

  // The same receiver, let through on purpose.
  await webhookSink(server.url, { allowedHosts: ["127.0.0.1"] }).deliver(
    streamOf(randomBytes(10)),
  );
  await webhookSink(`http://localhost:${port}/hook`, {
    allowPrivateNetwork: true,
  }).deliver(streamOf(randomBytes(10)));
  assert.equal(server.received.length, 2);
});
