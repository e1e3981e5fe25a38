/**
 * Backoff delays: capped exponential growth with full, equal, decorrelated
 * or no jitter.
 *
 * `retry()` uses this to space its attempts; code that schedules its own
 * retries (a durable queue that stores "next attempt at") calls it directly so
 * both follow the same policy. The result is always a finite number from 0 to
 * `maxDelayMs`, whatever the inputs.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * // Without jitter: 100, 200, 400, … capped at 1000.
 * const delays = [1, 2, 3, 4, 5].map((attempt) =>
 *   backoffDelay(attempt, { baseDelayMs: 100, maxDelayMs: 1000, jitter: "none" })
 * );
 * assert.deepEqual(delays, [100, 200, 400, 800, 1000]);
 * ```
 *
 * @module
 */

/**
 * How randomness spreads the delays of many callers apart.
 *
 * - `"full"`: a uniform pick from 0 to the exponential delay (the default; the
 *   best at breaking up synchronized retries).
 * - `"equal"`: half the exponential delay plus a uniform pick of the other half.
 * - `"decorrelated"`: a uniform pick from `baseDelayMs` to three times the
 *   previous delay, capped.
 * - `"none"`: the exponential delay itself.
 */
export type Jitter = "full" | "equal" | "decorrelated" | "none";

/** The policy {@linkcode backoffDelay} follows. */
export interface BackoffOptions {
  /** The delay before the first retry, before jitter. Defaults to 250 ms. */
  baseDelayMs?: number;
  /** No delay is ever longer than this. Defaults to 30 000 ms, or `baseDelayMs` when that is longer. */
  maxDelayMs?: number;
  /** The jitter kind. Defaults to `"full"`. */
  jitter?: Jitter;
  /** A source of numbers in [0, 1); defaults to `Math.random`. */
  random?: () => number;
}

/** The default delay before the first retry, in milliseconds. */
export const DEFAULT_BASE_DELAY_MS = 250;
/** The default cap on any delay, in milliseconds. */
export const DEFAULT_MAX_DELAY_MS = 30_000;

const JITTERS: readonly Jitter[] = ["full", "equal", "decorrelated", "none"];

/**
 * Checks a backoff policy, so a bad one fails when it is given rather than on
 * the first retry.
 *
 * @param options The policy to check.
 * @throws {RangeError} If a delay is negative or not finite, or the cap is below the base.
 * @throws {TypeError} If `jitter` is not a known kind.
 *
 * @example
 * ```ts
 * import { validateBackoff } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => validateBackoff({ baseDelayMs: -1 }), RangeError);
 * ```
 */
export function validateBackoff(options: BackoffOptions): void {
  const base = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const max = options.maxDelayMs ?? Math.max(DEFAULT_MAX_DELAY_MS, base);
  if (!(base >= 0) || !Number.isFinite(base)) {
    throw new RangeError(
      `Cannot use backoff: baseDelayMs must be a finite number >= 0, got ${base}`,
    );
  }
  if (!(max >= base) || !Number.isFinite(max)) {
    throw new RangeError(
      `Cannot use backoff: maxDelayMs must be finite and >= baseDelayMs (${base}), got ${max}`,
    );
  }
  if (options.jitter !== undefined && !JITTERS.includes(options.jitter)) {
    throw new TypeError(
      `Cannot use backoff: jitter must be one of ${JITTERS.join(", ")}, got ${
        String(options.jitter)
      }`,
    );
  }
}

/**
 * Returns how long to wait before retry number `attempt` (1 for the first
 * retry).
 *
 * The exponential delay is `baseDelayMs × 2^(attempt − 1)`, capped at
 * `maxDelayMs`, then jittered. Decorrelated jitter grows from
 * `previousDelayMs` instead of the attempt number. The result is finite,
 * never negative and never above `maxDelayMs`, even after thousands of
 * attempts or with a `random` that returns nonsense.
 *
 * @param attempt Which retry this is, from 1.
 * @param options The policy, and for decorrelated jitter the previous delay.
 * @returns The delay in milliseconds.
 *
 * @example Decorrelated jitter stays within bounds
 * ```ts
 * import { backoffDelay } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * let delay: number | undefined;
 * for (let attempt = 1; attempt <= 5000; attempt++) {
 *   delay = backoffDelay(attempt, {
 *     jitter: "decorrelated",
 *     baseDelayMs: 100,
 *     maxDelayMs: 10_000,
 *     random: () => 0.999,
 *     ...(delay === undefined ? {} : { previousDelayMs: delay }),
 *   });
 *   assert.ok(delay >= 100 && delay <= 10_000);
 * }
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions & { previousDelayMs?: number } = {},
): number {
  const base = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const max = options.maxDelayMs ?? Math.max(DEFAULT_MAX_DELAY_MS, base);
  const random = options.random ?? Math.random;
  const jitter = options.jitter ?? "full";
  let delay: number;
  if (jitter === "decorrelated") {
    const previous = finiteOr(options.previousDelayMs, base);
    const upper = Math.min(max, Math.max(base, previous * 3));
    delay = base + unit(random) * (upper - base);
  } else {
    // Cap the exponent: 2^1023 is finite, and min() then picks the cap.
    const exponent = Math.min(Math.max(0, Math.floor(attempt) - 1), 1023);
    const exponential = base === 0 ? 0 : Math.min(max, base * 2 ** exponent);
    if (jitter === "full") delay = unit(random) * exponential;
    else if (jitter === "equal") {
      delay = exponential / 2 + unit(random) * (exponential / 2);
    } else delay = exponential;
  }
  return Math.min(max, Math.max(0, finiteOr(delay, 0)));
}

/** A random number forced into [0, 1], so a broken source cannot make NaN. */
function unit(random: () => number): number {
  const r = random();
  return r >= 0 ? Math.min(r, 1) : 0;
}

function finiteOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) ? value : fallback;
}
