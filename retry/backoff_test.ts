import assert from "node:assert/strict";
import { backoffDelay, validateBackoff } from "./backoff.ts";

Deno.test("backoffDelay() doubles from baseDelayMs up to maxDelayMs without jitter", () => {
  const delays = Array.from(
    { length: 8 },
    (_, i) =>
      backoffDelay(i + 1, {
        jitter: "none",
        baseDelayMs: 250,
        maxDelayMs: 10_000,
      }),
  );
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
});

Deno.test("backoffDelay() uses the defaults of 250 ms base, 30 s cap and full jitter", () => {
  assert.equal(backoffDelay(1, { random: () => 0.5 }), 125);
  assert.equal(backoffDelay(50, { random: () => 0.5 }), 15_000);
});

Deno.test("backoffDelay() full jitter spans 0 to the exponential delay, equal jitter its upper half", () => {
  assert.equal(
    backoffDelay(3, { jitter: "full", baseDelayMs: 100, random: () => 0 }),
    0,
  );
  assert.equal(
    backoffDelay(3, { jitter: "full", baseDelayMs: 100, random: () => 1 }),
    400,
  );
  assert.equal(
    backoffDelay(3, { jitter: "equal", baseDelayMs: 100, random: () => 0 }),
    200,
  );
  assert.equal(
    backoffDelay(3, { jitter: "equal", baseDelayMs: 100, random: () => 1 }),
    400,
  );
});

Deno.test("backoffDelay() decorrelated jitter grows from the previous delay and stays within [base, cap]", () => {
  const options = {
    jitter: "decorrelated",
    baseDelayMs: 100,
    maxDelayMs: 1000,
  } as const;
  assert.equal(backoffDelay(1, { ...options, random: () => 1 }), 300);
  assert.equal(
    backoffDelay(2, { ...options, previousDelayMs: 300, random: () => 1 }),
    900,
  );
  assert.equal(
    backoffDelay(3, { ...options, previousDelayMs: 900, random: () => 1 }),
    1000,
  );
  assert.equal(
    backoffDelay(3, { ...options, previousDelayMs: 900, random: () => 0 }),
    100,
  );
  let previous: number | undefined;
  for (let attempt = 1; attempt <= 10_000; attempt++) {
    previous = backoffDelay(attempt, {
      ...options,
      random: Math.random,
      ...(previous === undefined ? {} : { previousDelayMs: previous }),
    });
    assert.ok(previous >= 100 && previous <= 1000);
  }
});

Deno.test("backoffDelay() returns a finite delay for huge attempt numbers, a zero base and broken inputs", () => {
  for (const jitter of ["full", "equal", "none", "decorrelated"] as const) {
    for (
      const attempt of [
        1,
        1024,
        1e6,
        Number.MAX_SAFE_INTEGER,
        Infinity,
        NaN,
        -5,
      ]
    ) {
      const delay = backoffDelay(attempt, {
        jitter,
        maxDelayMs: 60_000,
        random: () => 0.7,
      });
      assert.ok(
        Number.isFinite(delay) && delay >= 0 && delay <= 60_000,
        `${jitter} ${attempt}: ${delay}`,
      );
    }
    assert.equal(
      backoffDelay(2000, { jitter, baseDelayMs: 0, maxDelayMs: 0 }),
      0,
    );
    const broken = backoffDelay(3, {
      jitter,
      random: () => NaN,
      previousDelayMs: NaN,
    });
    assert.ok(Number.isFinite(broken) && broken >= 0);
  }
});

Deno.test("backoffDelay() lets a base longer than the default cap raise the cap", () => {
  assert.equal(
    backoffDelay(1, { jitter: "none", baseDelayMs: 45_000 }),
    45_000,
  );
  assert.equal(
    backoffDelay(4, { jitter: "none", baseDelayMs: 45_000 }),
    45_000,
  );
});

Deno.test("validateBackoff() rejects negative, non-finite and inverted delays and unknown jitter", () => {
  assert.throws(() => validateBackoff({ baseDelayMs: -1 }), RangeError);
  assert.throws(() => validateBackoff({ baseDelayMs: Infinity }), RangeError);
  assert.throws(() => validateBackoff({ maxDelayMs: NaN }), RangeError);
  assert.throws(
    () => validateBackoff({ baseDelayMs: 10, maxDelayMs: 1 }),
    RangeError,
  );
  assert.throws(
    () => validateBackoff({ jitter: "random" as "full" }),
    TypeError,
  );
  validateBackoff({ baseDelayMs: 0, maxDelayMs: 0, jitter: "none" });
});
