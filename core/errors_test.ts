import assert from "node:assert/strict";
import {
  CancelledError,
  HttpError,
  IncompleteStreamError,
  IntegrityError,
  isRetryableStatus,
  LimitError,
  PartialFailureError,
  SluiceError,
  UnsafeEntryError,
} from "./errors.ts";

Deno.test("every toolkit error is a SluiceError with its class name, a cause and a 'Cannot …' message without a trailing period", () => {
  const cause = new Error("root");
  const errors: SluiceError[] = [
    new CancelledError(undefined, { cause }),
    new HttpError({ status: 500, url: "http://127.0.0.1/", cause }),
    new IncompleteStreamError({ expected: 10, received: 5, cause }),
    new IntegrityError({ check: "tag", cause }),
    new LimitError({ what: "bytes", limit: 1, cause }),
    new UnsafeEntryError({ path: "/etc", reason: "it is absolute", cause }),
    new PartialFailureError({
      succeeded: [1],
      failed: [{ item: 2, error: cause }],
      cause,
    }),
  ];
  for (const error of errors) {
    assert.ok(error instanceof Error);
    assert.ok(error instanceof SluiceError);
    assert.equal(error.name, error.constructor.name);
    assert.equal(error.cause, cause);
    assert.match(error.message, /^Cannot [^\n]+[^.]$/);
    assert.equal(typeof error.retryable, "boolean");
  }
});

Deno.test("HttpError is retryable for 408, 425, 429 and 5xx only", () => {
  for (const status of [408, 425, 429, 500, 502, 503, 504, 599]) {
    assert.equal(
      new HttpError({ status, url: "u" }).retryable,
      true,
      String(status),
    );
    assert.equal(isRetryableStatus(status), true);
  }
  for (const status of [301, 400, 401, 403, 404, 409, 410, 412, 416, 422]) {
    assert.equal(
      new HttpError({ status, url: "u" }).retryable,
      false,
      String(status),
    );
  }
});

Deno.test("HttpError keeps the status, URL, method and Retry-After, and rejects impossible statuses", () => {
  const error = new HttpError({
    status: 503,
    statusText: "Service Unavailable",
    url: "http://127.0.0.1/file",
    method: "PUT",
    retryAfterMs: 2500,
  });
  assert.equal(error.status, 503);
  assert.equal(error.url, "http://127.0.0.1/file");
  assert.equal(error.method, "PUT");
  assert.equal(error.retryAfterMs, 2500);
  assert.equal(
    error.message,
    "Cannot PUT http://127.0.0.1/file: server answered 503 Service Unavailable",
  );
  assert.throws(() => new HttpError({ status: 99, url: "u" }), RangeError);
  assert.throws(() => new HttpError({ status: 600, url: "u" }), RangeError);
  assert.throws(() => new HttpError({ status: 200.5, url: "u" }), RangeError);
});

Deno.test("HttpError.fromResponse() reads a real response's status and Retry-After and frees its body", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("x".repeat(1 << 20), {
        status: 429,
        headers: { "retry-after": "7" },
      }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/a`;
  const response = await fetch(url);
  const error = HttpError.fromResponse(response, { method: "GET" });
  assert.equal(error.status, 429);
  assert.equal(error.retryable, true);
  assert.equal(error.retryAfterMs, 7000);
  assert.equal(error.url, url);
  assert.equal(response.bodyUsed, true, "the body was cancelled");
  const noHeader = HttpError.fromResponse(new Response(null, { status: 404 }), {
    url: "http://x/",
  });
  assert.equal(noHeader.retryAfterMs, undefined);
  assert.equal(noHeader.url, "http://x/");
});

Deno.test("CancelledError is never retryable and fromSignal keeps the signal's reason", () => {
  const controller = new AbortController();
  controller.abort(new Error("client went away"));
  const error = CancelledError.fromSignal(controller.signal);
  assert.equal(error.retryable, false);
  assert.equal(error.cause, controller.signal.reason);
  const already = new CancelledError();
  const passthrough = new AbortController();
  passthrough.abort(already);
  assert.equal(CancelledError.fromSignal(passthrough.signal), already);
});

Deno.test("IncompleteStreamError is retryable and carries both byte counts", () => {
  const error = new IncompleteStreamError({
    expected: 100,
    received: 40,
    source: "http://127.0.0.1/f",
  });
  assert.equal(error.retryable, true);
  assert.equal(error.expected, 100);
  assert.equal(error.received, 40);
  assert.equal(
    error.message,
    "Cannot finish reading http://127.0.0.1/f: stream ended after 40 of 100 bytes",
  );
});

Deno.test("IntegrityError is permanent unless the thrower knows another source may help", () => {
  const same = new IntegrityError({
    check: "sha256",
    expected: "aa",
    actual: "bb",
  });
  assert.equal(same.retryable, false);
  assert.equal(same.expected, "aa");
  assert.equal(same.actual, "bb");
  assert.equal(
    new IntegrityError({ check: "tag", retryable: true }).retryable,
    true,
  );
});

Deno.test("LimitError and UnsafeEntryError are permanent and say what went wrong", () => {
  const limit = new LimitError({ what: "entries", limit: 3, actual: 4 });
  assert.equal(limit.retryable, false);
  assert.equal(limit.limit, 3);
  assert.equal(limit.actual, 4);
  assert.equal(
    new LimitError({ what: "bytes", limit: 3 }).message,
    "Cannot continue: bytes exceed the limit of 3",
  );
  const unsafe = new UnsafeEntryError({
    path: "a/../../b",
    reason: "it climbs out of the target",
  });
  assert.equal(unsafe.retryable, false);
  assert.equal(unsafe.path, "a/../../b");
});

Deno.test("PartialFailureError keeps both lists and is retryable only when every failure is", () => {
  const transient = new HttpError({ status: 503, url: "u" });
  const permanent = new HttpError({ status: 404, url: "u" });
  const error = new PartialFailureError<string, number>({
    operation: "store chunks",
    succeeded: ["a", "b"],
    failed: [{ item: 3, error: transient }, { item: 4, error: transient }],
  });
  assert.deepEqual(error.succeeded, ["a", "b"]);
  assert.deepEqual(error.failed.map((f) => f.item), [3, 4]);
  assert.equal(error.retryable, true);
  assert.equal(error.cause, transient);
  assert.equal(error.message, "Cannot store chunks: 2 of 4 items failed");
  const mixed = new PartialFailureError({
    succeeded: [],
    failed: [{ item: 1, error: transient }, { item: 2, error: permanent }],
  });
  assert.equal(mixed.retryable, false);
});
