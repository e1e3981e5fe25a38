import assert from "node:assert/strict";
import { mapConcurrent } from "./map_concurrent.ts";

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });

/** An input that counts how many items were pulled and whether it was closed. */
function countingInput(length: number) {
  const state = { pulled: 0, closed: false };
  function* items() {
    try {
      for (let i = 0; i < length; i++) {
        state.pulled++;
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, items: items() };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

Deno.test("mapConcurrent() never has more than `concurrency` calls in flight", async () => {
  let active = 0;
  let peak = 0;
  const results = await collect(
    mapConcurrent(Array.from({ length: 60 }, (_, i) => i), async (n) => {
      peak = Math.max(peak, ++active);
      await delay((n * 7) % 5);
      active--;
      return n;
    }, { concurrency: 4 }),
  );
  assert.equal(results.length, 60);
  assert.equal(peak, 4);
});

Deno.test("mapConcurrent() yields results in input order when calls finish out of order", async () => {
  const results = await collect(mapConcurrent([5, 1, 4, 0, 3, 2], async (n) => {
    await delay(n * 2);
    return n * 10;
  }, { concurrency: 6 }));
  assert.deepEqual(results, [50, 10, 40, 0, 30, 20]);
});

Deno.test("mapConcurrent() yields results in completion order when not ordered", async () => {
  const results = await collect(mapConcurrent([30, 1, 15], async (n) => {
    await delay(n);
    return n;
  }, { concurrency: 3, ordered: false }));
  assert.deepEqual(results, [1, 15, 30]);
});

Deno.test("mapConcurrent() pulls input only as results are consumed", async () => {
  const { state, items } = countingInput(1000);
  const iterator = mapConcurrent(items, (n) => n, { concurrency: 3 });
  assert.equal(state.pulled, 0, "nothing is pulled before the first next()");
  assert.deepEqual(await iterator.next(), { value: 0, done: false });
  assert.equal(state.pulled, 3);
  await delay(5); // a slow consumer: nothing more is pulled meanwhile
  assert.equal(state.pulled, 3);
  await iterator.next();
  assert.equal(state.pulled, 4);
  await iterator.return();
});

Deno.test("mapConcurrent() stops pulling, aborts in-flight calls and closes the input when the consumer stops early", async () => {
  const { state, items } = countingInput(1000);
  const signals: AbortSignal[] = [];
  let started = 0;
  for await (
    const n of mapConcurrent(items, async (n, { signal }) => {
      started++;
      signals.push(signal);
      await delay(n === 0 ? 0 : 50, signal);
      return n;
    }, { concurrency: 4 })
  ) {
    assert.equal(n, 0);
    break;
  }
  assert.equal(state.pulled, 4);
  assert.equal(started, 4);
  assert.equal(state.closed, true);
  assert.ok(signals.every((signal) => signal.aborted));
  assert.equal((signals[0]!.reason as DOMException).name, "AbortError");
});

Deno.test("mapConcurrent() ends with the first error, aborts the other calls and starts no new ones", async () => {
  const { state, items } = countingInput(100);
  const aborted: number[] = [];
  const failure = new Error("item 2 failed");
  const results: number[] = [];
  await assert.rejects(
    (async () => {
      for await (
        const n of mapConcurrent(items, async (n, { signal }) => {
          signal.addEventListener("abort", () => aborted.push(n));
          if (n === 2) throw failure;
          await delay(n < 2 ? 0 : 30, signal);
          return n;
        }, { concurrency: 3 })
      ) results.push(n);
    })(),
    (e) => e === failure,
  );
  assert.ok(state.pulled <= 5, `pulled ${state.pulled}`);
  assert.equal(state.closed, true);
  assert.ok(aborted.length > 0);
  assert.ok(!results.includes(2));
});

Deno.test("mapConcurrent() rejects with signal.reason and aborts in-flight calls when the signal aborts", async () => {
  const controller = new AbortController();
  const { state, items } = countingInput(100);
  const signals: AbortSignal[] = [];
  const iterator = mapConcurrent(items, (_n, { signal }) => {
    signals.push(signal);
    return new Promise<never>(() => {}); // ignores its signal
  }, { concurrency: 2, signal: controller.signal });
  const next = iterator.next();
  await delay(1);
  controller.abort("caller stopped");
  await assert.rejects(next, (e) => e === "caller stopped");
  assert.equal(state.pulled, 2);
  assert.equal(state.closed, true);
  assert.equal(signals[0]?.aborted, true);
  assert.equal(signals[0]?.reason, "caller stopped");
});

Deno.test("mapConcurrent() rejects at once when the signal is already aborted, calling nothing", async () => {
  let calls = 0;
  const iterator = mapConcurrent([1, 2], () => calls++, {
    concurrency: 1,
    signal: AbortSignal.abort("early"),
  });
  await assert.rejects(iterator.next(), (e) => e === "early");
  assert.equal(calls, 0);
});

Deno.test("mapConcurrent() stops waiting for a stuck async input when the signal aborts", async () => {
  const controller = new AbortController();
  async function* stuck() {
    yield 1;
    await new Promise(() => {});
  }
  const results: number[] = [];
  const run = (async () => {
    for await (
      const n of mapConcurrent(stuck(), (n) => n, {
        concurrency: 2,
        signal: controller.signal,
      })
    ) {
      results.push(n);
    }
  })();
  await delay(5);
  controller.abort("enough");
  await assert.rejects(run, (e) => e === "enough");
});

Deno.test("mapConcurrent() maps async inputs, sync functions, empty inputs and unbounded concurrency", async () => {
  async function* numbers() {
    for (let i = 1; i <= 5; i++) yield i;
  }
  assert.deepEqual(
    await collect(mapConcurrent(numbers(), (n) => n + 1, { concurrency: 2 })),
    [2, 3, 4, 5, 6],
  );
  assert.deepEqual(
    await collect(mapConcurrent([], (n) => n, { concurrency: 2 })),
    [],
  );
  let active = 0;
  let peak = 0;
  const results = await collect(
    mapConcurrent(
      Array.from({ length: 50 }, (_, i) => i),
      async (n, { index }) => {
        assert.equal(n, index);
        peak = Math.max(peak, ++active);
        await delay(1);
        active--;
        return n;
      },
      { concurrency: Infinity },
    ),
  );
  assert.equal(results.length, 50);
  assert.equal(peak, 50);
});

Deno.test("mapConcurrent() rejects a concurrency that is not an integer >= 1 or Infinity", async () => {
  for (const concurrency of [0, -1, 1.5, NaN]) {
    await assert.rejects(
      mapConcurrent([1], (n) => n, { concurrency }).next(),
      RangeError,
    );
  }
});

Deno.test("mapConcurrent() turns a synchronous throw into the iteration's error", async () => {
  const failure = new Error("sync");
  await assert.rejects(
    collect(mapConcurrent([1, 2, 3], (n) => {
      if (n === 2) throw failure;
      return n;
    }, { concurrency: 1 })),
    (e) => e === failure,
  );
});
