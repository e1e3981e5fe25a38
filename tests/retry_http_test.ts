// retry() with the toolkit's HttpError against real loopback servers.
import assert from "node:assert/strict";
import { HttpError } from "../core/errors.ts";
import { retry, RetryError } from "../retry/mod.ts";
import { serveLoopback } from "./_loopback.ts";

async function getText(url: string, signal: AbortSignal): Promise<string> {
  const response = await fetch(url, { signal });
  if (!response.ok) throw HttpError.fromResponse(response, { url });
  return await response.text();
}

Deno.test("retry() waits for a real server's Retry-After on 503 and then succeeds", async () => {
  let calls = 0;
  await using server = serveLoopback(() => {
    return ++calls < 3
      ? new Response("busy", { status: 503, headers: { "retry-after": "0" } })
      : new Response("payload");
  });
  const url = server.url;
  const delays: number[] = [];
  const body = await retry(({ signal }) => getText(url, signal), {
    baseDelayMs: 10_000, // would time the test out if Retry-After were ignored
    onRetry: ({ delayMs, error }) => {
      assert.ok(error instanceof HttpError && error.status === 503);
      delays.push(delayMs);
    },
  });
  assert.equal(body, "payload");
  assert.equal(calls, 3);
  assert.deepEqual(delays, [0, 0]);
});

Deno.test("retry() gives up at once on a real 404", async () => {
  let calls = 0;
  await using server = serveLoopback(() => {
    calls++;
    return new Response("missing", { status: 404 });
  });
  const url = `${server.url}x`;
  const error = await retry(({ signal }) => getText(url, signal), {
    baseDelayMs: 1,
  }).catch((e) => e);
  assert.ok(error instanceof HttpError);
  assert.equal(error.status, 404);
  assert.equal(calls, 1);
});

Deno.test("retry() retries fetch's network TypeError when a peer drops connections, then succeeds", async () => {
  // A raw listener that hangs up on the first two connections and then answers.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      if (++connections <= 2) {
        conn.close();
        continue;
      }
      const buffer = new Uint8Array(4096);
      await conn.read(buffer);
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        ),
      );
      conn.close();
      break;
    }
  })();
  const errors: unknown[] = [];
  const body = await retry(
    ({ signal }) => getText(`http://127.0.0.1:${listener.addr.port}/`, signal),
    {
      baseDelayMs: 1,
      onRetry: ({ error }) => errors.push(error),
    },
  );
  await serving;
  assert.equal(body, "ok");
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e instanceof TypeError));
});

Deno.test("retry() reports every 503 of an outage in RetryError when attempts run out", async () => {
  await using server = serveLoopback(
    () => new Response("down", { status: 503 }),
  );
  const url = server.url;
  const error = await retry(({ signal }) => getText(url, signal), {
    maxAttempts: 3,
    baseDelayMs: 1,
  })
    .catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(error.attempts, 3);
  assert.ok(
    error.errors.every((e) => e instanceof HttpError && e.status === 503),
  );
  assert.ok(error.cause instanceof HttpError);
});
