/**
 * Call an async function again when it fails, with capped, jittered backoff,
 * `Retry-After`, per-attempt timeouts, an overall deadline, a shared retry
 * budget and cancellation.
 *
 * Every attempt gets its own `AbortSignal`, which aborts when the caller
 * aborts, the attempt times out or the deadline passes. Errors that say they
 * are not retryable, and cancellations, end the loop at once; running out of
 * attempts, time or budget ends it with a {@linkcode RetryError} that keeps
 * every attempt's error.
 *
 * @example Retry a flaky fetch
 * ```ts
 * import { retry } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   ++calls < 3 ? new Response("busy", { status: 503 }) : new Response("ok"));
 * const url = `http://127.0.0.1:${server.addr.port}/`;
 *
 * const body = await retry(async ({ signal }) => {
 *   const response = await fetch(url, { signal });
 *   if (response.status === 503) {
 *     await response.body?.cancel();
 *     throw Object.assign(new Error("busy"), { retryable: true });
 *   }
 *   return await response.text();
 * }, { baseDelayMs: 1 });
 *
 * assert.equal(body, "ok");
 * assert.equal(calls, 3);
 * await server.shutdown();
 * ```
 *
 * @module
 */

import {
  backoffDelay,
  type BackoffOptions,
  DEFAULT_BASE_DELAY_MS,
  validateBackoff,
} from "./backoff.ts";
import type { RetryBudget } from "./budget.ts";
import { isRetryable } from "./classify.ts";
import { parseRetryAfter } from "./retry_after.ts";
import { raceAbort, setLongTimeout, sleep as defaultSleep } from "./_async.ts";

/** What each attempt is told. */
export interface AttemptContext {
  /** The attempt's number, from 1. */
  attempt: number;
  /**
   * Aborts when the caller aborts, this attempt times out or the deadline
   * passes. Pass it to `fetch` and every other I/O the attempt does.
   */
  signal: AbortSignal;
}

/** What `shouldRetry` is told besides the error. */
export interface RetryDecisionContext {
  /** The number of the attempt that failed, from 1. */
  attempt: number;
  /** Milliseconds since the first attempt started. */
  elapsedMs: number;
}

/** What `onRetry` is told before each wait. */
export interface RetryEvent {
  /** The error of the attempt that failed. */
  error: unknown;
  /** The number of the attempt that failed, from 1. */
  attempt: number;
  /** How long retry() waits before the next attempt. */
  delayMs: number;
}

/** The policy of {@linkcode retry}. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, counting the first. Defaults to 5. */
  maxAttempts?: number;
  /** The whole call, waits included, must finish within this. No limit by default. */
  deadlineMs?: number;
  /** Each attempt's signal aborts after this long, and the attempt counts as failed with a `TimeoutError`. */
  attemptTimeoutMs?: number;
  /** A server's `Retry-After` longer than this is cut down to it. Defaults to 60 000 ms. */
  maxRetryAfterMs?: number;
  /**
   * Whether an error is worth another attempt. Defaults to
   * {@linkcode isRetryable}: the error's own `retryable` when it has one,
   * network faults yes, cancellations and programming errors no.
   */
  shouldRetry?: (
    error: unknown,
    context: RetryDecisionContext,
  ) => boolean | Promise<boolean>;
  /** Called before each wait; an error it throws ends the call. */
  onRetry?: (event: RetryEvent) => void;
  /** A budget shared with other calls; when it cannot pay for a retry, the call fails at once. */
  budget?: RetryBudget;
  /** Aborting it stops the current attempt or wait and rejects with its reason. */
  signal?: AbortSignal;
  /** Waits between attempts; injectable for deterministic tests. It should reject with `signal.reason` on abort. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The clock deadlines are measured with, in milliseconds; defaults to `performance.now`. */
  now?: () => number;
}

/** Why {@linkcode retry} gave up. */
export type RetryFailureReason = "attempts" | "deadline" | "budget";

/** What a {@linkcode RetryError} records. */
export interface RetryErrorInit {
  /** Why retry() gave up. */
  reason: RetryFailureReason;
  /** Every attempt's error, in order. */
  errors: unknown[];
  /** The waits between attempts, in order. */
  delaysMs: number[];
  /** Milliseconds from the first attempt to giving up. */
  elapsedMs: number;
}

/**
 * {@linkcode retry} gave up: attempts, deadline or budget ran out.
 *
 * It keeps every attempt's error, the waits and the time spent; the last
 * attempt's error is its `cause`. It is not retryable itself, so an outer
 * retry does not multiply an inner one's attempts.
 *
 * @example
 * ```ts
 * import { retry, RetryError } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const error = await retry(() => Promise.reject(new Error("down")), {
 *   maxAttempts: 3,
 *   sleep: () => Promise.resolve(),
 * }).catch((e) => e);
 * assert.ok(error instanceof RetryError);
 * assert.equal(error.reason, "attempts");
 * assert.equal(error.attempts, 3);
 * assert.equal(error.delaysMs.length, 2);
 * ```
 */
export class RetryError extends Error {
  /** Always `false`: the policy has already been followed to its end. */
  readonly retryable: boolean = false;
  /** Why retry() gave up. */
  readonly reason: RetryFailureReason;
  /** How many attempts were made. */
  readonly attempts: number;
  /** Every attempt's error, in order. */
  readonly errors: readonly unknown[];
  /** The waits between attempts, in order. */
  readonly delaysMs: readonly number[];
  /** Milliseconds from the first attempt to giving up. */
  readonly elapsedMs: number;

  /**
   * Makes a retry error.
   *
   * @param message What could not be done and why.
   * @param init The attempts' record.
   */
  constructor(message: string, init: RetryErrorInit) {
    super(message, { cause: init.errors.at(-1) });
    this.name = "RetryError";
    this.reason = init.reason;
    this.attempts = init.errors.length;
    this.errors = init.errors;
    this.delaysMs = init.delaysMs;
    this.elapsedMs = init.elapsedMs;
  }
}

/**
 * Calls `fn` until it succeeds, an error is not worth retrying, or the
 * policy runs out, and returns what `fn` returned.
 *
 * Between attempts it waits for the server's `Retry-After` when the error
 * carries one (`retryAfterMs`, or a `response` with the header; capped by
 * `maxRetryAfterMs`) and otherwise for {@linkcode backoffDelay}. When that
 * wait would end past the deadline it gives up at once instead of sleeping
 * in vain.
 *
 * @typeParam T What `fn` returns.
 * @param fn The operation; it receives the attempt number and a signal.
 * @param options The policy.
 * @returns What the successful attempt returned.
 * @throws {RetryError} When attempts, the deadline or the budget run out.
 * @throws {unknown} The attempt's own error when it is not retryable, and
 * `signal.reason` when the caller aborts.
 * @throws {RangeError} When an option is out of range.
 *
 * @example Give up early on a permanent error
 * ```ts
 * import { retry } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const notFound = Object.assign(new Error("Cannot GET /x: 404"), { retryable: false });
 * await assert.rejects(retry(() => { calls++; throw notFound; }), notFound);
 * assert.equal(calls, 1);
 * ```
 *
 * @example Abort a wait
 * ```ts
 * import { retry } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * const failing = () => Promise.reject(new Error("down"));
 * const call = retry(failing, { baseDelayMs: 60_000, jitter: "none", signal: controller.signal });
 * setTimeout(() => controller.abort(new Error("user gave up")), 5);
 * await assert.rejects(call, { message: "user gave up" });
 * ```
 */
export async function retry<T>(
  fn: (context: AttemptContext) => T | Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const policy = resolvePolicy(options);
  const { signal, budget } = options;
  const { now } = policy;
  signal?.throwIfAborted();
  const started = now();
  const deadlineAt = started + policy.deadlineMs;
  const errors: unknown[] = [];
  const delaysMs: number[] = [];
  let previousDelayMs: number | undefined;
  let lastCost: number | undefined;
  const giveUp = (reason: RetryFailureReason, detail: string) =>
    new RetryError(`Cannot complete the operation: ${detail}`, {
      reason,
      errors,
      delaysMs,
      elapsedMs: now() - started,
    });

  for (let attempt = 1;; attempt++) {
    if (attempt > 1 && now() >= deadlineAt) {
      throw giveUp(
        "deadline",
        `the ${policy.deadlineMs} ms deadline passed before attempt ${attempt}`,
      );
    }
    const outcome = await runAttempt(fn, attempt, signal, {
      timeoutMs: policy.attemptTimeoutMs,
      deadlineInMs: deadlineAt - now(),
    });
    if (outcome.ok) {
      budget?.deposit(lastCost);
      return outcome.value;
    }
    const { error, expired } = outcome;
    if (signal?.aborted) throw signal.reason;
    errors.push(error);
    if (expired === "deadline") {
      throw giveUp(
        "deadline",
        `attempt ${attempt} was still running at the ${policy.deadlineMs} ms deadline`,
      );
    }
    const decision = { attempt, elapsedMs: now() - started };
    if (!(await policy.shouldRetry(error, decision))) throw error;
    if (attempt >= policy.maxAttempts) {
      throw giveUp(
        "attempts",
        `all ${attempt} attempts failed, the last with: ${describe(error)}`,
      );
    }

    const serverDelay = retryAfterOf(error);
    let delayMs: number;
    if (serverDelay === undefined) {
      delayMs = backoffDelay(attempt, {
        ...policy.backoff,
        ...(previousDelayMs === undefined ? {} : { previousDelayMs }),
      });
      previousDelayMs = delayMs;
    } else delayMs = Math.min(serverDelay, policy.maxRetryAfterMs);
    if (now() + delayMs >= deadlineAt) {
      throw giveUp(
        "deadline",
        `the wait of ${delayMs} ms before attempt ${
          attempt + 1
        } would pass the ${policy.deadlineMs} ms deadline`,
      );
    }
    if (budget) {
      lastCost = budget.tryWithdraw(
        expired === "attempt" ? "timeout" : "error",
      );
      if (lastCost === undefined) {
        throw giveUp(
          "budget",
          `the retry budget is exhausted after ${attempt} attempts`,
        );
      }
    }
    options.onRetry?.({ error, attempt, delayMs });
    delaysMs.push(delayMs);
    const waitSignal = signal ?? NEVER;
    await raceAbort(policy.sleep(delayMs, waitSignal), signal);
  }
}

const NEVER: AbortSignal = new AbortController().signal;

interface Policy {
  maxAttempts: number;
  deadlineMs: number;
  attemptTimeoutMs: number;
  maxRetryAfterMs: number;
  backoff: BackoffOptions;
  shouldRetry: NonNullable<RetryOptions["shouldRetry"]>;
  sleep: NonNullable<RetryOptions["sleep"]>;
}

function resolvePolicy(options: RetryOptions): Policy & { now: () => number } {
  validateBackoff(options);
  const maxAttempts = options.maxAttempts ?? 5;
  if (
    !(maxAttempts >= 1) ||
    !(Number.isInteger(maxAttempts) || maxAttempts === Infinity)
  ) {
    throw new RangeError(
      `Cannot retry: maxAttempts must be an integer >= 1, got ${maxAttempts}`,
    );
  }
  const positive = (name: string, value: number | undefined) => {
    if (value === undefined) return Infinity;
    if (!(value > 0)) {
      throw new RangeError(`Cannot retry: ${name} must be > 0, got ${value}`);
    }
    return value;
  };
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  if (!(maxRetryAfterMs >= 0)) {
    throw new RangeError(
      `Cannot retry: maxRetryAfterMs must be >= 0, got ${maxRetryAfterMs}`,
    );
  }
  const backoff: BackoffOptions = {
    baseDelayMs: options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS,
  };
  if (options.maxDelayMs !== undefined) backoff.maxDelayMs = options.maxDelayMs;
  if (options.jitter !== undefined) backoff.jitter = options.jitter;
  if (options.random !== undefined) backoff.random = options.random;
  return {
    maxAttempts,
    deadlineMs: positive("deadlineMs", options.deadlineMs),
    attemptTimeoutMs: positive("attemptTimeoutMs", options.attemptTimeoutMs),
    maxRetryAfterMs,
    backoff,
    shouldRetry: options.shouldRetry ?? isRetryable,
    sleep: options.sleep ?? defaultSleep,
    now: options.now ?? (() => performance.now()),
  };
}

type Outcome<T> =
  | { ok: true; value: T }
  | { ok: false; error: unknown; expired: "attempt" | "deadline" | undefined };

/**
 * Runs one attempt under its own signal. The attempt's promise is raced
 * against that signal, so an `fn` that ignores its signal cannot hold the
 * call past a timeout, the deadline or the caller's abort.
 */
async function runAttempt<T>(
  fn: (context: AttemptContext) => T | Promise<T>,
  attempt: number,
  outer: AbortSignal | undefined,
  limits: { timeoutMs: number; deadlineInMs: number },
): Promise<Outcome<T>> {
  const controller = new AbortController();
  let expired: "attempt" | "deadline" | undefined;
  const onOuterAbort = () => controller.abort(outer!.reason);
  outer?.addEventListener("abort", onOuterAbort, { once: true });
  const byDeadline = limits.deadlineInMs <= limits.timeoutMs;
  const limitMs = Math.min(limits.timeoutMs, limits.deadlineInMs);
  const cancelTimer = limitMs === Infinity ? () => {} : setLongTimeout(() => {
    expired = byDeadline ? "deadline" : "attempt";
    controller.abort(
      new DOMException(
        `Cannot finish attempt ${attempt}: it ran past ${
          byDeadline ? "the deadline" : `its ${limitMs} ms timeout`
        }`,
        "TimeoutError",
      ),
    );
  }, limitMs);
  try {
    const run = new Promise<T>((resolve) =>
      resolve(fn({ attempt, signal: controller.signal }))
    );
    return { ok: true, value: await raceAbort(run, controller.signal) };
  } catch (error) {
    return { ok: false, error, expired };
  } finally {
    cancelTimer();
    outer?.removeEventListener("abort", onOuterAbort);
  }
}

/** The server's requested wait carried by an error, in milliseconds. */
function retryAfterOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { retryAfterMs, response } = error as {
    retryAfterMs?: unknown;
    response?: { headers?: { get?: (name: string) => string | null } };
  };
  if (
    typeof retryAfterMs === "number" && retryAfterMs >= 0 &&
    Number.isFinite(retryAfterMs)
  ) return retryAfterMs;
  const header = response?.headers?.get?.("retry-after");
  return typeof header === "string" ? parseRetryAfter(header) : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
