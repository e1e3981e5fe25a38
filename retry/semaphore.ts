/**
 * A counting semaphore with weights, strict FIFO order, abortable waits and
 * permits you release with `using`.
 *
 * Use it to bound how much work runs at once: requests to one host, bytes in
 * flight, chunks being decrypted. Waiters are served strictly in arrival
 * order, so a heavy waiter at the head is never overtaken by light ones.
 *
 * @example Bound concurrent work
 * ```ts
 * import { Semaphore } from "@sluice/sluice/semaphore";
 * import assert from "node:assert/strict";
 *
 * const semaphore = new Semaphore(2);
 * let running = 0;
 * let peak = 0;
 * await Promise.all([1, 2, 3, 4, 5].map(async () => {
 *   using _permit = await semaphore.acquire();
 *   peak = Math.max(peak, ++running);
 *   await new Promise((resolve) => setTimeout(resolve, 1));
 *   running--;
 * }));
 * assert.equal(peak, 2);
 * assert.equal(semaphore.available, 2);
 * ```
 *
 * @module
 */

import { isPromiseLike, setLongTimeout } from "./_async.ts";

/** Options of a {@linkcode Semaphore}. */
export interface SemaphoreOptions {
  /** How many waiters may queue; one more is rejected with a {@linkcode QueueFullError}. No limit by default. */
  maxQueue?: number;
}

/** Options of {@linkcode Semaphore.acquire}. */
export interface AcquireOptions {
  /** Aborting it takes the waiter out of the queue and rejects with its reason. */
  signal?: AbortSignal;
  /** Give up waiting after this long, with a `TimeoutError` `DOMException`. */
  timeoutMs?: number;
}

/** Options of {@linkcode Semaphore.run}. */
export interface RunOptions extends AcquireOptions {
  /** How many permits the task takes. Defaults to 1. */
  weight?: number;
}

/**
 * Permits held from a {@linkcode Semaphore}. Release them with `release()`,
 * or hold them with `using` and they are released when the scope ends.
 * Disposing twice releases once.
 */
export interface Permit extends Disposable {
  /** How many permits this holds now. */
  readonly weight: number;
  /**
   * Gives back `count` permits (all that are held by default). Releasing
   * when nothing is held does nothing.
   *
   * @throws {RangeError} If `count` is more than this permit holds.
   */
  release(count?: number): void;
}

/**
 * The semaphore's queue was full, so the waiter was turned away.
 *
 * It is retryable: the queue limit sheds load, and a later try may find room.
 *
 * @example
 * ```ts
 * import { QueueFullError, Semaphore } from "@sluice/sluice/semaphore";
 * import assert from "node:assert/strict";
 *
 * const semaphore = new Semaphore(1, { maxQueue: 1 });
 * using _held = semaphore.tryAcquire()!;
 * const queued = semaphore.acquire();
 * await assert.rejects(semaphore.acquire(), QueueFullError);
 * _held.release();
 * (await queued).release();
 * ```
 */
export class QueueFullError extends Error {
  /** Always `true`: a later try may find room in the queue. */
  readonly retryable: boolean = true;
  /** The queue limit that was reached. */
  readonly maxQueue: number;

  /**
   * Makes a queue-full error.
   *
   * @param maxQueue The limit that was reached.
   * @param weight The permits the turned-away waiter asked for.
   */
  constructor(maxQueue: number, weight: number) {
    super(
      `Cannot acquire ${weight} permit${
        weight === 1 ? "" : "s"
      }: the queue is full (${maxQueue} waiting)`,
    );
    this.name = "QueueFullError";
    this.maxQueue = maxQueue;
  }
}

interface Waiter {
  weight: number;
  resolve: (permit: Permit) => void;
  reject: (error: unknown) => void;
  /** Granted, or gone (aborted, timed out, rejected by resize); its slot is skipped. */
  done: boolean;
  cleanup: (() => void) | undefined;
}

const NO_OPTIONS: AcquireOptions = {};

/**
 * A counting semaphore: at most `permits` units are held at once.
 *
 * - Strict FIFO: a waiter is served only when everyone ahead of it has been,
 *   and `tryAcquire` does not jump the queue.
 * - Weighted: a task may take several permits (for example, one per MiB).
 * - Abortable: a waiter whose signal aborts or whose `timeoutMs` passes leaves
 *   the queue at once, letting those behind it move up.
 * - Safe: permits release once however often they are disposed; releasing
 *   more than a permit holds throws.
 *
 * @example Weighted permits with `using`
 * ```ts
 * import { Semaphore } from "@sluice/sluice/semaphore";
 * import assert from "node:assert/strict";
 *
 * const memory = new Semaphore(8); // MiB
 * {
 *   using permit = await memory.acquire(5);
 *   assert.equal(permit.weight, 5);
 *   assert.equal(memory.available, 3);
 *   assert.equal(memory.tryAcquire(4), undefined);
 * }
 * assert.equal(memory.available, 8);
 * ```
 */
export class Semaphore {
  #capacity: number;
  #inUse = 0;
  // Waiters in arrival order from #next on; done ones are skipped. An array
  // with lazy removal keeps abort O(1) and allocates less than a linked list.
  #queue: Waiter[] = [];
  #next = 0;
  #waiting = 0;
  readonly #maxQueue: number;
  readonly #release = (count: number): void => {
    this.#inUse -= count;
    this.#grant();
  };

  /**
   * Makes a semaphore.
   *
   * @param permits How many units may be held at once, an integer >= 1.
   * @param options The queue limit.
   * @throws {RangeError} If `permits` or `maxQueue` is out of range.
   */
  constructor(permits: number, options: SemaphoreOptions = {}) {
    this.#capacity = checkCount("make", "permits", permits, 1);
    this.#maxQueue = options.maxQueue === undefined
      ? Infinity
      : checkCount("make", "maxQueue", options.maxQueue, 0);
  }

  /** How many units may be held at once. */
  get capacity(): number {
    return this.#capacity;
  }

  /** How many units are free now (negative after shrinking below what is held). */
  get available(): number {
    return this.#capacity - this.#inUse;
  }

  /** How many waiters are queued. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Waits for `weight` units and returns a permit that holds them.
   *
   * @param weight How many units, from 1 to the capacity. Defaults to 1.
   * @param options A signal and a timeout for the wait.
   * @returns The permit; release it, or hold it with `using`.
   * @throws {RangeError} If `weight` is not an integer from 1 to the capacity.
   * @throws {QueueFullError} If `maxQueue` waiters are already queued.
   * @throws {unknown} The signal's reason when it aborts first, or a
   * `TimeoutError` `DOMException` when `timeoutMs` passes first.
   *
   * @example Stop waiting after a timeout
   * ```ts
   * import { Semaphore } from "@sluice/sluice/semaphore";
   * import assert from "node:assert/strict";
   *
   * const semaphore = new Semaphore(1);
   * using _held = await semaphore.acquire();
   * await assert.rejects(semaphore.acquire(1, { timeoutMs: 5 }), { name: "TimeoutError" });
   * assert.equal(semaphore.waiting, 0);
   * ```
   */
  acquire(weight = 1, options: AcquireOptions = NO_OPTIONS): Promise<Permit> {
    const { signal, timeoutMs } = options;
    try {
      this.#checkWeight(weight);
      if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
        throw new RangeError(
          `Cannot acquire permits: timeoutMs must be >= 0, got ${timeoutMs}`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#waiting === 0 && weight <= this.available) {
      this.#inUse += weight;
      return Promise.resolve(new HeldPermit(this.#release, weight));
    }
    if (this.#waiting >= this.#maxQueue) {
      return Promise.reject(new QueueFullError(this.#maxQueue, weight));
    }
    let waiter!: Waiter;
    const promise = new Promise<Permit>((resolve, reject) => {
      waiter = { weight, resolve, reject, done: false, cleanup: undefined };
    });
    this.#queue.push(waiter);
    this.#waiting++;
    if (signal !== undefined || timeoutMs !== undefined) {
      this.#watch(waiter, signal, timeoutMs);
    }
    return promise;
  }

  /** Takes the waiter out of the queue when its signal aborts or its timeout passes. */
  #watch(
    waiter: Waiter,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): void {
    const leave = (reason: unknown) => {
      // Granted already: the permit is the caller's, nothing to undo.
      if (waiter.done) return;
      this.#settle(waiter);
      waiter.reject(reason);
      this.#grant();
    };
    const onAbort = () => leave(signal!.reason);
    const cancelTimer = timeoutMs === undefined ? undefined : setLongTimeout(
      () =>
        leave(
          new DOMException(
            `Cannot acquire ${waiter.weight} permit${
              waiter.weight === 1 ? "" : "s"
            }: timed out after ${timeoutMs} ms`,
            "TimeoutError",
          ),
        ),
      timeoutMs,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    waiter.cleanup = () => {
      cancelTimer?.();
      signal?.removeEventListener("abort", onAbort);
    };
  }

  /**
   * Takes `weight` units now if they are free and nobody is queued.
   *
   * @param weight How many units, from 1 to the capacity. Defaults to 1.
   * @returns The permit, or `undefined` when it would have to wait.
   * @throws {RangeError} If `weight` is not an integer from 1 to the capacity.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@sluice/sluice/semaphore";
   * import assert from "node:assert/strict";
   *
   * const semaphore = new Semaphore(1);
   * const permit = semaphore.tryAcquire();
   * assert.ok(permit);
   * assert.equal(semaphore.tryAcquire(), undefined);
   * permit.release();
   * ```
   */
  tryAcquire(weight = 1): Permit | undefined {
    this.#checkWeight(weight);
    if (this.#waiting > 0 || weight > this.available) return undefined;
    this.#inUse += weight;
    return new HeldPermit(this.#release, weight);
  }

  /**
   * Runs `fn` while holding `weight` units, and releases them however `fn`
   * ends. If the signal aborts while waiting, or in the same tick as the
   * grant, `fn` does not run and the units are given back.
   *
   * @typeParam T What `fn` returns.
   * @param fn The task.
   * @param options The weight, a signal and a timeout for the wait.
   * @returns What `fn` returned.
   * @throws {unknown} What `fn` threw, or what {@linkcode Semaphore.acquire} threw.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@sluice/sluice/semaphore";
   * import assert from "node:assert/strict";
   *
   * const semaphore = new Semaphore(3);
   * const sum = await semaphore.run(() => 1 + 2, { weight: 3 });
   * assert.equal(sum, 3);
   * assert.equal(semaphore.available, 3);
   * ```
   */
  run<T>(
    fn: () => T | Promise<T>,
    options: RunOptions = NO_OPTIONS,
  ): Promise<T> {
    const { weight = 1, signal } = options;
    // Plain promise chaining rather than async/await and `using`: this is a
    // hot path, and each of those adds ticks or scope cost per task.
    return this.acquire(weight, options).then((permit) => {
      let result: T | Promise<T>;
      try {
        signal?.throwIfAborted();
        result = fn();
      } catch (error) {
        permit.release();
        throw error;
      }
      if (!isPromiseLike(result)) {
        permit.release();
        return result;
      }
      return Promise.resolve(result).then((value) => {
        permit.release();
        return value;
      }, (error) => {
        permit.release();
        throw error;
      });
    });
  }

  /**
   * Changes how many units may be held at once. Growing wakes waiters that
   * now fit; shrinking below what is held lets holders finish, and rejects
   * queued waiters that could never fit with a `RangeError`.
   *
   * @param permits The new capacity, an integer >= 1.
   * @throws {RangeError} If `permits` is not an integer >= 1.
   *
   * @example
   * ```ts
   * import { Semaphore } from "@sluice/sluice/semaphore";
   * import assert from "node:assert/strict";
   *
   * const semaphore = new Semaphore(1);
   * using _held = await semaphore.acquire();
   * const waiting = semaphore.acquire();
   * semaphore.resize(2);
   * using _second = await waiting;
   * assert.equal(semaphore.available, 0);
   * ```
   */
  resize(permits: number): void {
    this.#capacity = checkCount("resize", "permits", permits, 1);
    for (let i = this.#next; i < this.#queue.length; i++) {
      const waiter = this.#queue[i]!;
      if (waiter.done || waiter.weight <= permits) continue;
      this.#settle(waiter);
      waiter.reject(
        new RangeError(
          `Cannot acquire ${waiter.weight} permits: the semaphore was resized to ${permits}`,
        ),
      );
    }
    this.#grant();
  }

  /** Serves waiters from the head while they fit, then drops served slots. */
  #grant(): void {
    const queue = this.#queue;
    if (this.#waiting === 0) {
      if (queue.length > 0) queue.length = this.#next = 0;
      return;
    }
    let i = this.#next;
    for (; i < queue.length; i++) {
      const waiter = queue[i]!;
      if (waiter.done) continue;
      if (waiter.weight > this.available) break;
      this.#settle(waiter);
      this.#inUse += waiter.weight;
      waiter.resolve(new HeldPermit(this.#release, waiter.weight));
    }
    if (i === queue.length) {
      queue.length = 0;
      i = 0;
    } else if (i > 1024 && i * 2 > queue.length) {
      this.#queue = queue.slice(i);
      i = 0;
    } else if (
      queue.length - i > 1024 && this.#waiting * 2 < queue.length - i
    ) {
      // Mostly waiters that left while the head was blocked: drop them.
      this.#queue = queue.slice(i).filter((waiter) => !waiter.done);
      i = 0;
    }
    this.#next = i;
  }

  /** Marks a waiter as no longer waiting. */
  #settle(waiter: Waiter): void {
    waiter.done = true;
    this.#waiting--;
    waiter.cleanup?.();
    waiter.cleanup = undefined;
  }

  #checkWeight(weight: number): void {
    if (!Number.isInteger(weight) || weight < 1 || weight > this.#capacity) {
      throw new RangeError(
        `Cannot acquire ${weight} permits: the weight must be an integer from 1 to ${this.#capacity}`,
      );
    }
  }
}

class HeldPermit implements Permit {
  #giveBack: (count: number) => void;
  #weight: number;

  constructor(giveBack: (count: number) => void, weight: number) {
    this.#giveBack = giveBack;
    this.#weight = weight;
  }

  get weight(): number {
    return this.#weight;
  }

  release(count: number = this.#weight): void {
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(
        `Cannot release ${count} permits: the count must be a whole number`,
      );
    }
    if (count > this.#weight) {
      throw new RangeError(
        `Cannot release ${count} permits: this permit holds ${this.#weight}`,
      );
    }
    if (count === 0) return;
    this.#weight -= count;
    this.#giveBack(count);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

function checkCount(
  action: string,
  name: string,
  value: number,
  min: number,
): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Cannot ${action} Semaphore: ${name} must be an integer >= ${min}, got ${value}`,
    );
  }
  return value;
}
