/**
 * A retry budget shared by many callers, so an outage does not become a
 * retry storm.
 *
 * It is a token bucket in the manner of the AWS SDKs' retry quota: every
 * retry withdraws tokens, every success puts some back. While a dependency
 * is down, successes stop, the bucket drains, and the callers sharing it
 * fail fast instead of multiplying the load; once it recovers, successes
 * refill the bucket.
 *
 * @example
 * ```ts
 * import { retry, RetryBudget, RetryError } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const budget = new RetryBudget({ capacity: 10, retryCost: 5 });
 * const failing = () => Promise.reject(new Error("down"));
 * const options = { budget, maxAttempts: 10, sleep: () => Promise.resolve() };
 * await assert.rejects(retry(failing, options), (e) => e instanceof RetryError && e.reason === "budget");
 * assert.equal(budget.available, 0);
 * ```
 *
 * @module
 */

/** The shape of a {@linkcode RetryBudget}. */
export interface RetryBudgetOptions {
  /** Tokens in a full bucket, and the bucket's start. Defaults to 500. */
  capacity?: number;
  /** Tokens one retry costs. Defaults to 5. */
  retryCost?: number;
  /** Tokens a retry after a timeout costs (timeouts hint at overload). Defaults to 10. */
  timeoutCost?: number;
  /** Tokens a success on the first attempt puts back. Defaults to 1. */
  successRefund?: number;
}

/**
 * A token bucket that retries draw from and successes refill.
 *
 * `retry()` asks it before every retry (`tryWithdraw`) and tells it about
 * every success (`deposit`): a success after retries gives back what the
 * last retry cost, a first-try success gives back `successRefund`. Share one
 * instance among all calls to the same dependency.
 *
 * @example Drain and refill
 * ```ts
 * import { RetryBudget } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const budget = new RetryBudget({ capacity: 10, retryCost: 4 });
 * assert.equal(budget.tryWithdraw(), 4);
 * assert.equal(budget.tryWithdraw(), 4);
 * assert.equal(budget.tryWithdraw(), undefined); // 2 left: not enough
 * budget.deposit(4);
 * assert.equal(budget.available, 6);
 * ```
 */
export class RetryBudget {
  /** Tokens in a full bucket. */
  readonly capacity: number;
  /** Tokens one retry costs. */
  readonly retryCost: number;
  /** Tokens a retry after a timeout costs. */
  readonly timeoutCost: number;
  /** Tokens a first-try success puts back. */
  readonly successRefund: number;
  #tokens: number;

  /**
   * Makes a full bucket.
   *
   * @param options The bucket's size and prices.
   * @throws {RangeError} If any number is negative or not finite.
   */
  constructor(options: RetryBudgetOptions = {}) {
    this.capacity = nonNegative("capacity", options.capacity ?? 500);
    this.retryCost = nonNegative("retryCost", options.retryCost ?? 5);
    this.timeoutCost = nonNegative("timeoutCost", options.timeoutCost ?? 10);
    this.successRefund = nonNegative(
      "successRefund",
      options.successRefund ?? 1,
    );
    this.#tokens = this.capacity;
  }

  /** Tokens in the bucket now. */
  get available(): number {
    return this.#tokens;
  }

  /**
   * Takes the price of one retry from the bucket, if it holds enough.
   *
   * @param kind `"timeout"` when the failed attempt timed out, which costs more.
   * @returns The tokens taken (to give back on success), or `undefined` when
   * the bucket cannot pay and the retry must not happen.
   */
  tryWithdraw(kind: "error" | "timeout" = "error"): number | undefined {
    const cost = kind === "timeout" ? this.timeoutCost : this.retryCost;
    if (this.#tokens < cost) return undefined;
    this.#tokens -= cost;
    return cost;
  }

  /**
   * Puts tokens back after a success, up to the capacity.
   *
   * @param tokens What the last retry cost, or by default `successRefund`.
   */
  deposit(tokens: number = this.successRefund): void {
    if (!(tokens > 0)) return;
    this.#tokens = Math.min(this.capacity, this.#tokens + tokens);
  }
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `Cannot make RetryBudget: ${name} must be a finite number >= 0, got ${value}`,
    );
  }
  return value;
}
