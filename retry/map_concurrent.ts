/**
 * Map over an iterable with a bounded number of calls in flight, as an async
 * iterable of results with backpressure.
 *
 * It reads ahead by at most `concurrency` items: the input is pulled only
 * as results are consumed, so memory stays bounded however long the input
 * is. This is the window later modules use to fetch chunks ahead of a slow
 * reader.
 *
 * @example Fetch ahead, deliver in order
 * ```ts
 * import { mapConcurrent } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const squares: number[] = [];
 * for await (const square of mapConcurrent([1, 2, 3, 4], async (n) => n * n, { concurrency: 2 })) {
 *   squares.push(square);
 * }
 * assert.deepEqual(squares, [1, 4, 9, 16]);
 * ```
 *
 * @module
 */

import { isPromiseLike, raceAbort } from "./_async.ts";

/** What each call of the mapping function is told. */
export interface MapContext {
  /** The item's position in the input, from 0. */
  index: number;
  /** Aborts when the consumer stops early, the caller aborts or another call fails. */
  signal: AbortSignal;
}

/** Options of {@linkcode mapConcurrent}. */
export interface MapConcurrentOptions {
  /** The most calls in flight (and results held) at once: an integer >= 1, or `Infinity`. */
  concurrency: number;
  /** Yield results in input order (the default), or as they complete. */
  ordered?: boolean;
  /** Aborting it stops the work and rejects the pending `next()` with its reason. */
  signal?: AbortSignal;
}

interface Slot<R> {
  done: boolean;
  value: R | undefined;
}

/**
 * Calls `fn` on every item of `input` with at most `concurrency` calls in
 * flight, yielding the results.
 *
 * - Backpressure: at most `concurrency` items are taken from the input and
 *   not yet consumed; the next item is pulled when a result is consumed.
 * - Order: with `ordered` (the default) results come in input order; without
 *   it, as they complete.
 * - Failure: the first call that throws ends the iteration with its error,
 *   and the other calls' signals abort.
 * - Cancellation: when the consumer stops early (`break`, `return()`) or the
 *   signal aborts, in-flight calls' signals abort, no further call starts,
 *   and the input iterator is closed.
 *
 * @typeParam T The input items.
 * @typeParam R The results.
 * @param input The items, sync or async.
 * @param fn The mapping; pass its `signal` on to any I/O it does.
 * @param options The concurrency, the order and a signal.
 * @returns An async iterable of the results.
 * @throws {RangeError} If `concurrency` is not an integer >= 1 or `Infinity`.
 * @throws {unknown} The first error a call threw, or the signal's reason.
 *
 * @example Stop early and cancel the rest
 * ```ts
 * import { mapConcurrent } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const items = Array.from({ length: 100 }, (_, i) => i);
 * let started = 0;
 * let lastSignal: AbortSignal | undefined;
 * const work = mapConcurrent(items, async (n, { signal }) => {
 *   started++;
 *   lastSignal = signal;
 *   return n;
 * }, { concurrency: 3 });
 * for await (const n of work) {
 *   if (n === 1) break;
 * }
 * assert.equal(started, 4); // three, then one more when 0 was consumed
 * assert.equal(lastSignal?.aborted, true);
 * ```
 */
export async function* mapConcurrent<T, R>(
  input: Iterable<T> | AsyncIterable<T>,
  fn: (item: T, context: MapContext) => R | Promise<R>,
  options: MapConcurrentOptions,
): AsyncGenerator<R, void, undefined> {
  const { concurrency, ordered = true, signal } = options;
  if (
    !(concurrency >= 1) ||
    !(Number.isInteger(concurrency) || concurrency === Infinity)
  ) {
    throw new RangeError(
      `Cannot map concurrently: concurrency must be an integer >= 1 or Infinity, got ${concurrency}`,
    );
  }
  signal?.throwIfAborted();
  const isAsync = Symbol.asyncIterator in input;
  const iterator = isAsync
    ? (input as AsyncIterable<T>)[Symbol.asyncIterator]()
    : (input as Iterable<T>)[Symbol.iterator]();

  const controller = new AbortController();
  const slots: Slot<R>[] = []; // ordered: in input order; unordered: completed ones
  let pending = 0; // started and not yet yielded
  let index = 0;
  let exhausted = false;
  let finished = false;
  let pulling = false; // an async input's next() is pending
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const onAbort = () => {
    controller.abort(signal!.reason);
    notify();
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  const settle = (slot: Slot<R>, value: R) => {
    slot.done = true;
    slot.value = value;
    if (!ordered) slots.push(slot);
    notify();
  };
  const fail = (error: unknown) => {
    if (failure === undefined) {
      failure = { error };
      controller.abort(
        new DOMException("Cannot continue: another item failed", "AbortError"),
      );
    }
    notify();
  };
  // Throws what ended the run, if anything did.
  const check = () => {
    if (signal?.aborted) throw signal.reason;
    if (failure) throw failure.error;
  };

  try {
    while (true) {
      while (!exhausted && pending < concurrency) {
        check();
        let step: IteratorResult<T>;
        if (isAsync) {
          pulling = true;
          try {
            step = await raceAbort(
              (iterator as AsyncIterator<T>).next(),
              controller.signal,
            );
          } catch (error) {
            check();
            throw error;
          }
          pulling = false;
        } else step = (iterator as Iterator<T>).next();
        if (step.done) {
          exhausted = true;
          break;
        }
        const slot: Slot<R> = { done: false, value: undefined };
        if (ordered) slots.push(slot);
        pending++;
        try {
          const result = fn(step.value, {
            index: index++,
            signal: controller.signal,
          });
          if (isPromiseLike(result)) {
            result.then((value) => settle(slot, value), fail);
          } else settle(slot, result);
        } catch (error) {
          fail(error);
        }
      }
      while (true) {
        check();
        if (ordered ? slots[0]?.done : slots.length > 0) break;
        if (pending === 0) {
          finished = true;
          return;
        }
        await new Promise<void>((resolve) => wake = resolve);
      }
      const slot = slots.shift()!;
      pending--;
      yield slot.value as R;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) {
      controller.abort(
        signal?.aborted ? signal.reason : new DOMException(
          "Cannot continue: the consumer stopped early",
          "AbortError",
        ),
      );
      // Close the input; a pull we abandoned may never settle, so do not wait then.
      if (!exhausted && pulling) {
        Promise.resolve(iterator.return?.()).catch(() => {});
      } else if (!exhausted) await iterator.return?.();
    }
  }
}
