import assert from "node:assert/strict";
import { isRetryable } from "./classify.ts";

Deno.test("isRetryable() follows an error's own retryable flag first", () => {
  assert.equal(isRetryable({ retryable: true }), true);
  assert.equal(
    isRetryable(Object.assign(new TypeError("bad"), { retryable: true })),
    true,
  );
  assert.equal(
    isRetryable(Object.assign(new Error("fetch failed"), { retryable: false })),
    false,
  );
});

Deno.test("isRetryable() never retries cancellations", () => {
  assert.equal(isRetryable(new DOMException("stop", "AbortError")), false);
  assert.equal(
    isRetryable(Object.assign(new Error("x"), { name: "CancelledError" })),
    false,
  );
});

Deno.test("isRetryable() retries timeouts", () => {
  assert.equal(isRetryable(new DOMException("slow", "TimeoutError")), true);
});

Deno.test("isRetryable() retries fetch network TypeErrors but not other TypeErrors", () => {
  for (
    const message of [
      "fetch failed",
      "Failed to fetch",
      "error sending request for url (http://127.0.0.1:9/)",
      "error reading a body from connection",
      "NetworkError when attempting to fetch resource.",
      "Load failed",
      "terminated",
    ]
  ) assert.equal(isRetryable(new TypeError(message)), true, message);
  for (
    const message of [
      "x is not a function",
      "Cannot read properties of undefined (reading 'body')",
      "Fetch failed: Requests to port 9 are blocked",
    ]
  ) assert.equal(isRetryable(new TypeError(message)), false, message);
});

Deno.test("isRetryable() does not retry programming errors", () => {
  assert.equal(isRetryable(new RangeError("bad size")), false);
  assert.equal(isRetryable(new SyntaxError("Unexpected token")), false);
  assert.equal(isRetryable(new ReferenceError("x is not defined")), false);
});

Deno.test("isRetryable() retries socket errors and unknown errors", () => {
  assert.equal(isRetryable(new Deno.errors.ConnectionReset("reset")), true);
  assert.equal(isRetryable(new Deno.errors.ConnectionRefused("refused")), true);
  assert.equal(isRetryable(new Error("something odd")), true);
  assert.equal(isRetryable("a string"), true);
});

Deno.test("isRetryable() classifies what a real fetch throws when the peer drops the connection", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accept = (async () => {
    const conn = await listener.accept();
    conn.close();
  })();
  const error = await fetch(`http://127.0.0.1:${listener.addr.port}/`).catch((
    e,
  ) => e);
  await accept;
  assert.ok(error instanceof TypeError, String(error));
  assert.equal(isRetryable(error), true);
});
