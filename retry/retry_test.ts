import assert from "node:assert/strict";
import { retry, RetryError } from "./retry.ts";
import { RetryBudget } from "./budget.ts";

/** A clock that only moves when the fake sleep is called. */
function fakeTime() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    sleep: (ms: number) => {
      sleeps.push(ms);
      now += ms;
      return Promise.resolve();
    },
  };
}

function failing(times: number, error: () => unknown, value = "ok") {
  let calls = 0;
  const attempts: number[] = [];
  const fn = ({ attempt }: { attempt: number }) => {
    attempts.push(attempt);
    if (++calls <= times) throw error();
    return value;
  };
  return { fn, attempts, calls: () => calls };
}

const transient = () => Object.assign(new Error("flaky"), { retryable: true });

Deno.test("retry() returns the first successful result without waiting", async () => {
  const time = fakeTime();
  const { fn, attempts } = failing(0, transient, "first");
  assert.equal(await retry(fn, { sleep: time.sleep }), "first");
  assert.deepEqual(attempts, [1]);
  assert.deepEqual(time.sleeps, []);
});

Deno.test("retry() retries retryable errors with capped exponential backoff", async () => {
  const time = fakeTime();
  const { fn, attempts } = failing(4, transient);
  const result = await retry(fn, {
    jitter: "none",
    baseDelayMs: 100,
    maxDelayMs: 500,
    sleep: time.sleep,
  });
  assert.equal(result, "ok");
  assert.deepEqual(attempts, [1, 2, 3, 4, 5]);
  assert.deepEqual(time.sleeps, [100, 200, 400, 500]);
});

Deno.test("retry() applies full, equal and decorrelated jitter from the injected random", async () => {
  const run = async (jitter: "full" | "equal" | "decorrelated") => {
    const time = fakeTime();
    await retry(failing(3, transient).fn, {
      jitter,
      baseDelayMs: 100,
      random: () => 0.5,
      sleep: time.sleep,
    });
    return time.sleeps;
  };
  assert.deepEqual(await run("full"), [50, 100, 200]);
  assert.deepEqual(await run("equal"), [75, 150, 300]);
  // base + 0.5 × (min(cap, 3 × previous) − base), previous starting at base.
  assert.deepEqual(await run("decorrelated"), [200, 350, 575]);
});

Deno.test("retry() throws RetryError with every attempt's error, the delays and the elapsed time when attempts run out", async () => {
  const time = fakeTime();
  const errors = [1, 2, 3].map((n) =>
    Object.assign(new Error(`e${n}`), { retryable: true })
  );
  let i = 0;
  const error = await retry(() => {
    throw errors[i++];
  }, {
    maxAttempts: 3,
    jitter: "none",
    baseDelayMs: 10,
    sleep: time.sleep,
    now: time.now,
  }).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(error.reason, "attempts");
  assert.equal(error.attempts, 3);
  assert.deepEqual(error.errors, errors);
  assert.deepEqual(error.delaysMs, [10, 20]);
  assert.equal(error.elapsedMs, 30);
  assert.equal(error.cause, errors[2]);
  assert.equal(error.retryable, false);
  assert.match(
    error.message,
    /^Cannot complete the operation: all 3 attempts failed, the last with: e3$/,
  );
});

Deno.test("retry() rethrows an error marked not retryable after one attempt", async () => {
  const time = fakeTime();
  const permanent = Object.assign(new Error("gone"), { retryable: false });
  const { fn, calls } = failing(5, () => permanent);
  await assert.rejects(
    retry(fn, { sleep: time.sleep }),
    (e) => e === permanent,
  );
  assert.equal(calls(), 1);
});

Deno.test("retry() never retries an AbortError or a CancelledError thrown by the attempt", async () => {
  for (
    const make of [
      () => new DOMException("stop", "AbortError"),
      () => Object.assign(new Error("cancelled"), { name: "CancelledError" }),
    ]
  ) {
    const { fn, calls } = failing(5, make);
    await assert.rejects(retry(fn, { sleep: fakeTime().sleep }));
    assert.equal(calls(), 1);
  }
});

Deno.test("retry() asks shouldRetry with the attempt and elapsed time, and may await it", async () => {
  const time = fakeTime();
  const seen: Array<{ attempt: number; elapsedMs: number }> = [];
  const { fn, calls } = failing(5, () => new Error("x"));
  await assert.rejects(
    retry(fn, {
      jitter: "none",
      baseDelayMs: 5,
      sleep: time.sleep,
      now: time.now,
      shouldRetry: async (_error, context) => {
        seen.push(context);
        await Promise.resolve();
        return context.attempt < 3;
      },
    }),
    { message: "x" },
  );
  assert.equal(calls(), 3);
  assert.deepEqual(seen, [
    { attempt: 1, elapsedMs: 0 },
    { attempt: 2, elapsedMs: 5 },
    { attempt: 3, elapsedMs: 15 },
  ]);
});

Deno.test("retry() calls onRetry with the error, the attempt and the delay before each wait", async () => {
  const events: unknown[] = [];
  const errors: unknown[] = [];
  let i = 0;
  await retry(() => {
    if (i < 2) {
      const error = Object.assign(new Error(`e${i++}`), { retryable: true });
      errors.push(error);
      throw error;
    }
    return 1;
  }, {
    jitter: "none",
    baseDelayMs: 7,
    sleep: fakeTime().sleep,
    onRetry: (event) => events.push(event),
  });
  assert.deepEqual(events, [
    { error: errors[0], attempt: 1, delayMs: 7 },
    { error: errors[1], attempt: 2, delayMs: 14 },
  ]);
});

Deno.test("retry() rejects with signal.reason within a few ms when aborted during a backoff sleep", async () => {
  const controller = new AbortController();
  const reason = new Error("caller gave up");
  const { fn, calls } = failing(10, transient);
  const started = performance.now();
  const call = retry(fn, {
    baseDelayMs: 60_000,
    jitter: "none",
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(reason), 5);
  await assert.rejects(call, (e) => e === reason);
  assert.ok(performance.now() - started < 1000);
  assert.equal(calls(), 1);
});

Deno.test("retry() interrupts a sleep that ignores its signal when the caller aborts", async () => {
  const controller = new AbortController();
  const call = retry(failing(10, transient).fn, {
    signal: controller.signal,
    sleep: () => new Promise(() => {}),
  });
  setTimeout(() => controller.abort("stop"), 1);
  await assert.rejects(call, (e) => e === "stop");
});

Deno.test("retry() rejects at once with signal.reason when the caller aborts an attempt, and does not retry it", async () => {
  const controller = new AbortController();
  let attemptSignal: AbortSignal | undefined;
  let calls = 0;
  const call = retry(({ signal }) => {
    calls++;
    attemptSignal = signal;
    return new Promise<never>(() => {}); // ignores its signal
  }, { signal: controller.signal, sleep: fakeTime().sleep });
  await Promise.resolve();
  controller.abort("user");
  await assert.rejects(call, (e) => e === "user");
  assert.equal(calls, 1);
  assert.equal(attemptSignal?.aborted, true);
  assert.equal(attemptSignal?.reason, "user");
});

Deno.test("retry() does not call fn when the signal is already aborted", async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => calls++, { signal: AbortSignal.abort("early") }),
    (e) => e === "early",
  );
  assert.equal(calls, 0);
});

Deno.test("retry() aborts an attempt at attemptTimeoutMs with a TimeoutError and retries it", async () => {
  const signals: AbortSignal[] = [];
  const result = await retry(({ attempt, signal }) => {
    signals.push(signal);
    if (attempt === 1) return new Promise<string>(() => {}); // hangs
    return "second";
  }, { attemptTimeoutMs: 20, sleep: fakeTime().sleep });
  assert.equal(result, "second");
  assert.equal(signals[0]?.aborted, true);
  assert.equal((signals[0]?.reason as DOMException).name, "TimeoutError");
  assert.equal(signals[1]?.aborted, false);
});

Deno.test("retry() waits for the error's retryAfterMs instead of its backoff", async () => {
  const time = fakeTime();
  await retry(
    failing(
      2,
      () =>
        Object.assign(new Error("429"), {
          retryable: true,
          retryAfterMs: 1234,
        }),
    ).fn,
    { baseDelayMs: 10, sleep: time.sleep },
  );
  assert.deepEqual(time.sleeps, [1234, 1234]);
});

Deno.test("retry() caps a Retry-After at maxRetryAfterMs", async () => {
  const time = fakeTime();
  await retry(
    failing(
      1,
      () => Object.assign(new Error("503"), { retryAfterMs: 3_600_000 }),
    ).fn,
    { sleep: time.sleep },
  );
  assert.deepEqual(time.sleeps, [60_000]);
  const custom = fakeTime();
  await retry(
    failing(1, () => Object.assign(new Error("503"), { retryAfterMs: 5000 }))
      .fn,
    { sleep: custom.sleep, maxRetryAfterMs: 2000 },
  );
  assert.deepEqual(custom.sleeps, [2000]);
});

Deno.test("retry() reads Retry-After from an error's response: seconds, a date, a past date, garbage", async () => {
  const withHeader = (value: string) => () =>
    Object.assign(new Error("busy"), {
      response: new Response(null, {
        status: 503,
        headers: { "retry-after": value },
      }),
    });
  const delays = async (value: string) => {
    const time = fakeTime();
    await retry(failing(1, withHeader(value)).fn, {
      jitter: "none",
      baseDelayMs: 42,
      sleep: time.sleep,
    });
    return time.sleeps;
  };
  assert.deepEqual(await delays("3"), [3000]);
  const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
  const [dateDelay] = await delays(inTenSeconds);
  assert.ok(dateDelay! > 8000 && dateDelay! <= 10_000, `got ${dateDelay}`);
  assert.deepEqual(await delays("Sun, 06 Nov 1994 08:49:37 GMT"), [0]);
  assert.deepEqual(await delays("in a while"), [42]);
});

Deno.test("retry() fails at once with a deadline RetryError when Retry-After would pass the deadline", async () => {
  const time = fakeTime();
  const error = await retry(
    failing(1, () => Object.assign(new Error("503"), { retryAfterMs: 5000 }))
      .fn,
    { deadlineMs: 1000, sleep: time.sleep, now: time.now },
  ).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(error.reason, "deadline");
  assert.match(
    error.message,
    /wait of 5000 ms before attempt 2 would pass the 1000 ms deadline/,
  );
  assert.deepEqual(time.sleeps, []);
  assert.equal(error.attempts, 1);
});

Deno.test("retry() gives up with a deadline RetryError before a backoff that would pass the deadline", async () => {
  const time = fakeTime();
  const error = await retry(failing(10, transient).fn, {
    jitter: "none",
    baseDelayMs: 100,
    deadlineMs: 350,
    maxAttempts: 10,
    sleep: time.sleep,
    now: time.now,
  }).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(error.reason, "deadline");
  // 100 + 200 fit in 350; the next wait of 400 would not.
  assert.deepEqual(error.delaysMs, [100, 200]);
  assert.equal(error.attempts, 3);
});

Deno.test("retry() aborts an attempt still running at the deadline and throws a deadline RetryError", async () => {
  let attemptSignal: AbortSignal | undefined;
  const started = performance.now();
  const error = await retry(({ signal }) => {
    attemptSignal = signal;
    return new Promise<never>(() => {});
  }, { deadlineMs: 30 }).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(error.reason, "deadline");
  assert.equal(attemptSignal?.aborted, true);
  assert.ok(performance.now() - started < 1000);
});

Deno.test("retry() fails fast with a budget RetryError once the shared budget cannot pay, and successes refill it", async () => {
  const budget = new RetryBudget({
    capacity: 12,
    retryCost: 5,
    successRefund: 1,
  });
  const options = { budget, maxAttempts: 10, sleep: fakeTime().sleep };
  // 12 tokens pay for two retries; the third retry is refused.
  const first = failing(10, transient);
  const error = await retry(first.fn, options).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(error.reason, "budget");
  assert.equal(first.calls(), 3);
  assert.equal(budget.available, 2);
  // Another caller sharing the budget gets no retry at all.
  const second = failing(10, transient);
  await assert.rejects(retry(second.fn, options), { reason: "budget" });
  assert.equal(second.calls(), 1);
  // A first-try success refunds successRefund.
  await retry(() => "ok", options);
  assert.equal(budget.available, 3);
});

Deno.test("retry() refunds the last retry's cost on success and charges timeouts more", async () => {
  const budget = new RetryBudget({
    capacity: 100,
    retryCost: 5,
    timeoutCost: 10,
  });
  await retry(failing(1, transient).fn, { budget, sleep: fakeTime().sleep });
  assert.equal(budget.available, 100); // 5 taken, 5 refunded
  let calls = 0;
  await retry(() => calls++ === 0 ? new Promise(() => {}) : "ok", {
    budget,
    attemptTimeoutMs: 10,
    sleep: fakeTime().sleep,
    onRetry: () => assert.equal(budget.available, 90),
  });
});

Deno.test("retry() rejects out-of-range options with RangeError or TypeError", async () => {
  const fn = () => 1;
  await assert.rejects(retry(fn, { maxAttempts: 0 }), RangeError);
  await assert.rejects(retry(fn, { maxAttempts: 1.5 }), RangeError);
  await assert.rejects(retry(fn, { baseDelayMs: -1 }), RangeError);
  await assert.rejects(retry(fn, { baseDelayMs: NaN }), RangeError);
  await assert.rejects(retry(fn, { maxDelayMs: Infinity }), RangeError);
  await assert.rejects(
    retry(fn, { baseDelayMs: 10, maxDelayMs: 5 }),
    RangeError,
  );
  await assert.rejects(retry(fn, { deadlineMs: 0 }), RangeError);
  await assert.rejects(retry(fn, { attemptTimeoutMs: -5 }), RangeError);
  await assert.rejects(retry(fn, { maxRetryAfterMs: -1 }), RangeError);
  await assert.rejects(
    retry(fn, { jitter: "sometimes" as "full" }),
    TypeError,
  );
});

Deno.test("retry() keeps delays finite and within the cap over thousands of attempts, whatever random returns", async () => {
  for (const jitter of ["full", "equal", "decorrelated", "none"] as const) {
    for (const random of [() => 0.999999, () => NaN, () => -3, () => 7]) {
      const time = fakeTime();
      let calls = 0;
      await retry(() => {
        if (++calls < 3000) throw transient();
        return calls;
      }, {
        jitter,
        random,
        maxAttempts: 3000,
        baseDelayMs: 1,
        maxDelayMs: 2 ** 40,
        sleep: time.sleep,
      });
      assert.equal(time.sleeps.length, 2999);
      for (const delay of time.sleeps) {
        assert.ok(
          Number.isFinite(delay) && delay >= 0 && delay <= 2 ** 40,
          `${jitter}: ${delay}`,
        );
      }
    }
  }
});
