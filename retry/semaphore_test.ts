import assert from "node:assert/strict";
import { type Permit, QueueFullError, Semaphore } from "./semaphore.ts";

/** Lets queued promise callbacks run. */
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Records the order in which queued acquisitions are granted. */
function track(
  semaphore: Semaphore,
  weight: number,
  label: string,
  order: string[],
  options = {},
) {
  return semaphore.acquire(weight, options).then((permit) => {
    order.push(label);
    return permit;
  });
}

Deno.test("Semaphore grants strictly in arrival order with mixed weights: a heavy head is not overtaken", async () => {
  const semaphore = new Semaphore(4);
  const held = await semaphore.acquire(4);
  const order: string[] = [];
  const a = track(semaphore, 3, "a", order);
  const b = track(semaphore, 1, "b", order);
  const c = track(semaphore, 2, "c", order);
  assert.equal(semaphore.waiting, 3);
  held.release(2); // 2 free: enough for b or c, but a (3) is first
  await flush();
  assert.deepEqual(order, []);
  assert.equal(semaphore.tryAcquire(1), undefined, "tryAcquire must not barge");
  held.release(1); // 3 free: a, and nothing left for b
  await flush();
  assert.deepEqual(order, ["a"]);
  held.release(1); // 1 free: b (1) fits; c (2) waits
  await flush();
  assert.deepEqual(order, ["a", "b"]);
  (await a).release();
  await flush();
  assert.deepEqual(order, ["a", "b", "c"]);
  (await b).release();
  (await c).release();
  assert.equal(semaphore.available, 4);
  assert.equal(semaphore.waiting, 0);
});

Deno.test("Semaphore never exceeds its capacity and serves waiters FIFO under random contention", async () => {
  const semaphore = new Semaphore(5);
  let inUse = 0;
  let peak = 0;
  const requested: number[] = [];
  const granted: number[] = [];
  await Promise.all(Array.from({ length: 500 }, async (_, i) => {
    const weight = 1 + (i * 7919) % 5;
    requested.push(i);
    using permit = await semaphore.acquire(weight);
    granted.push(i);
    inUse += permit.weight;
    peak = Math.max(peak, inUse);
    assert.ok(inUse <= 5);
    await new Promise((resolve) => setTimeout(resolve, i % 3));
    inUse -= permit.weight;
  }));
  assert.equal(peak, 5);
  assert.deepEqual(granted, requested);
  assert.equal(semaphore.available, 5);
});

Deno.test("Semaphore.acquire() removes a waiter whose signal aborts, rejects with the reason, and lets those behind move up", async () => {
  const semaphore = new Semaphore(3);
  const held = await semaphore.acquire(2);
  const controller = new AbortController();
  const heavy = semaphore.acquire(3, { signal: controller.signal });
  const order: string[] = [];
  const light = track(semaphore, 1, "light", order);
  await flush();
  assert.deepEqual(order, []);
  controller.abort("no longer needed");
  await assert.rejects(heavy, (e) => e === "no longer needed");
  await flush();
  assert.deepEqual(order, ["light"]);
  assert.equal(semaphore.waiting, 0);
  (await light).release();
  held.release();
  assert.equal(semaphore.available, 3);
});

Deno.test("Semaphore.acquire() rejects at once when the signal is already aborted", async () => {
  const semaphore = new Semaphore(1);
  await assert.rejects(
    semaphore.acquire(1, { signal: AbortSignal.abort("early") }),
    (e) => e === "early",
  );
  assert.equal(semaphore.available, 1);
});

Deno.test("Semaphore.acquire() leaves the queue with a TimeoutError when timeoutMs passes", async () => {
  const semaphore = new Semaphore(1);
  using _held = await semaphore.acquire();
  const started = performance.now();
  await assert.rejects(
    semaphore.acquire(1, { timeoutMs: 10 }),
    (e) => e instanceof DOMException && e.name === "TimeoutError",
  );
  assert.ok(performance.now() - started < 1000);
  assert.equal(semaphore.waiting, 0);
});

Deno.test("Semaphore hands a permit granted in the same tick as an abort to the waiter, and never leaks it", async () => {
  // Grant first, abort second: the waiter owns the permit.
  const semaphore = new Semaphore(1);
  const held = await semaphore.acquire();
  const controller = new AbortController();
  const waiting = semaphore.acquire(1, { signal: controller.signal });
  held.release();
  controller.abort();
  const permit = await waiting;
  assert.equal(semaphore.available, 0);
  permit.release();
  assert.equal(semaphore.available, 1);

  // Abort first, release second: the waiter is gone and the unit stays free.
  const held2 = await semaphore.acquire();
  const controller2 = new AbortController();
  const waiting2 = semaphore.acquire(1, { signal: controller2.signal });
  controller2.abort();
  held2.release();
  await assert.rejects(waiting2);
  assert.equal(semaphore.available, 1);
  assert.equal(semaphore.waiting, 0);
});

Deno.test("Semaphore.run() gives the permit back without running fn when the signal aborts in the same tick as the grant", async () => {
  const semaphore = new Semaphore(1);
  const held = await semaphore.acquire();
  const controller = new AbortController();
  let ran = false;
  const task = semaphore.run(() => {
    ran = true;
  }, { signal: controller.signal });
  held.release(); // grants the run() waiter
  controller.abort("late"); // before run() resumes
  await assert.rejects(task, (e) => e === "late");
  assert.equal(ran, false);
  assert.equal(semaphore.available, 1);
});

Deno.test("Semaphore.run() releases its permits when fn throws", async () => {
  const semaphore = new Semaphore(2);
  await assert.rejects(
    semaphore.run(() => {
      throw new Error("boom");
    }, { weight: 2 }),
    { message: "boom" },
  );
  assert.equal(semaphore.available, 2);
});

Deno.test("Permit disposed twice releases once, and `using` releases at the end of the scope", async () => {
  const semaphore = new Semaphore(2);
  const permit = await semaphore.acquire(1);
  const other = await semaphore.acquire(1);
  permit[Symbol.dispose]();
  permit[Symbol.dispose]();
  permit.release();
  assert.equal(semaphore.available, 1);
  {
    using _scoped = semaphore.tryAcquire()!;
    assert.equal(semaphore.available, 0);
  }
  assert.equal(semaphore.available, 1);
  other.release();
});

Deno.test("Permit.release() throws RangeError when releasing more than it holds, and supports partial release", async () => {
  const semaphore = new Semaphore(4);
  const permit = await semaphore.acquire(3);
  assert.throws(() => permit.release(4), RangeError);
  assert.throws(() => permit.release(-1), RangeError);
  assert.throws(() => permit.release(1.5), RangeError);
  permit.release(2);
  assert.equal(permit.weight, 1);
  assert.equal(semaphore.available, 3);
  assert.throws(() => permit.release(2), RangeError);
  permit.release();
  assert.equal(semaphore.available, 4);
  assert.equal(permit.weight, 0);
});

Deno.test("Semaphore rejects a waiter beyond maxQueue with a retryable QueueFullError", async () => {
  const semaphore = new Semaphore(1, { maxQueue: 2 });
  const held = semaphore.tryAcquire()!;
  const first = semaphore.acquire();
  const controller = new AbortController();
  const second = semaphore.acquire(1, { signal: controller.signal });
  const error = await semaphore.acquire().catch((e) => e);
  assert.ok(error instanceof QueueFullError);
  assert.equal(error.retryable, true);
  assert.equal(error.maxQueue, 2);
  assert.equal(semaphore.waiting, 2);
  controller.abort();
  await assert.rejects(second);
  const third = semaphore.acquire(); // room again
  held.release();
  (await first).release();
  (await third).release();
  assert.equal(semaphore.available, 1);
});

Deno.test("Semaphore.resize() wakes waiters when growing and rejects waiters that can never fit when shrinking", async () => {
  const semaphore = new Semaphore(2);
  const held = await semaphore.acquire(2);
  const order: string[] = [];
  const one = track(semaphore, 1, "one", order);
  semaphore.resize(3);
  await flush();
  assert.deepEqual(order, ["one"]);
  const big = semaphore.acquire(3);
  const small = track(semaphore, 1, "small", order);
  semaphore.resize(2);
  await assert.rejects(big, RangeError);
  assert.equal(semaphore.available, -1);
  held.release();
  (await one).release();
  await flush();
  assert.deepEqual(order, ["one", "small"]);
  (await small).release();
  assert.equal(semaphore.available, 2);
  assert.equal(semaphore.capacity, 2);
});

Deno.test("Semaphore rejects out-of-range permits, weights and limits with RangeError", async () => {
  assert.throws(() => new Semaphore(0), RangeError);
  assert.throws(() => new Semaphore(1.5), RangeError);
  assert.throws(() => new Semaphore(1, { maxQueue: -1 }), RangeError);
  const semaphore = new Semaphore(2);
  await assert.rejects(semaphore.acquire(0), RangeError);
  await assert.rejects(semaphore.acquire(3), RangeError);
  await assert.rejects(semaphore.acquire(1.5), RangeError);
  await assert.rejects(semaphore.acquire(1, { timeoutMs: -1 }), RangeError);
  assert.throws(() => semaphore.tryAcquire(3), RangeError);
  assert.throws(() => semaphore.resize(0), RangeError);
  assert.equal(semaphore.available, 2);
});

Deno.test("Semaphore keeps its accounting when many waiters abort while permits are released", async () => {
  const semaphore = new Semaphore(3);
  const blocker = semaphore.tryAcquire(3)!;
  const controllers: AbortController[] = [];
  const holders: Promise<Permit | undefined>[] = [];
  for (let i = 0; i < 200; i++) {
    const controller = new AbortController();
    controllers.push(controller);
    holders.push(
      semaphore.acquire(1 + (i % 3), { signal: controller.signal }).catch(() =>
        undefined
      ),
    );
  }
  for (let i = 0; i < 200; i += 2) controllers[i]!.abort();
  assert.equal(semaphore.waiting, 100);
  blocker.release();
  const permits = await Promise.all(holders.map(async (p) => {
    const permit = await p;
    await flush();
    permit?.release();
    return permit;
  }));
  assert.equal(permits.filter(Boolean).length, 100);
  assert.equal(semaphore.available, 3);
  assert.equal(semaphore.waiting, 0);
});

Deno.test("Semaphore.acquire() keeps waiting when timeoutMs is beyond setTimeout's 2^31 − 1 ms limit", async () => {
  const semaphore = new Semaphore(1);
  const held = await semaphore.acquire();
  let settled = false;
  const waiting = semaphore.acquire(1, { timeoutMs: 2 ** 31 + 5000 }).then(
    (permit) => {
      settled = true;
      return permit;
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(settled, false);
  held.release();
  (await waiting).release();
  assert.equal(semaphore.available, 1);
});

Deno.test("Semaphore keeps FIFO order while thousands of waiters leave a blocked queue", async () => {
  const semaphore = new Semaphore(2);
  const blocker = semaphore.tryAcquire(2)!;
  const granted: number[] = [];
  const controllers: AbortController[] = [];
  const waiters: Promise<void>[] = [];
  for (let i = 0; i < 5000; i++) {
    const controller = new AbortController();
    controllers.push(controller);
    waiters.push(
      semaphore.acquire(1 + (i % 2), { signal: controller.signal }).then(
        async (permit) => {
          granted.push(i);
          await flush();
          permit.release();
        },
        () => {},
      ),
    );
  }
  // All but every 10th waiter leaves while the head is blocked.
  for (let i = 0; i < 5000; i++) if (i % 10 !== 0) controllers[i]!.abort();
  assert.equal(semaphore.waiting, 500);
  blocker.release();
  await Promise.all(waiters);
  assert.deepEqual(granted, Array.from({ length: 500 }, (_, k) => k * 10));
  assert.equal(semaphore.available, 2);
  assert.equal(semaphore.waiting, 0);
});
