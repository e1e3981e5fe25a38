/**
 * Benchmarks sluice's concurrency primitives against `p-limit` 7 and
 * `async-sema` 3 doing the same work.
 *
 * - "contended acquire/release": 100 000 tasks start at once and share 4
 *   permits, so nearly all of them queue. Each takes a permit, waits one
 *   microtask, adds its index to a sum and gives the permit back. Compared:
 *   sluice `Semaphore#acquire` + `Permit#release` (the baseline), sluice
 *   `Semaphore#run`, `async-sema` `acquire`/`release` and `p-limit`'s
 *   `limit(fn)`.
 * - "mapConcurrent 100k": 100 000 trivial async calls (`n * 2`) with at most 8
 *   in flight, results taken in input order. Compared: sluice `mapConcurrent`
 *   consumed with `for await` (the baseline), `p-limit`'s `limit.map`,
 *   `Promise.all` over `limit(fn)` calls, and an `async-sema` loop that
 *   acquires before starting each call and releases when it ends.
 *
 * Every iteration checks its outcome (the sum of the results, their order,
 * and in the first group that no more than 4 tasks ever held a permit at
 * once) and throws if it is wrong, so a broken limiter cannot look fast.
 *
 * Run it with:
 *
 * ```sh
 * deno bench -A bench/semaphore_bench.ts
 * ```
 *
 * @module
 */

import { Sema } from "async-sema";
import pLimit from "p-limit";
import { Semaphore } from "../retry/semaphore.ts";
import { mapConcurrent } from "../retry/map_concurrent.ts";

/** How many tasks (or items) each iteration runs. */
const TASKS = 100_000;

// ---------------------------------------------------------------------------
// Group 1: contended acquire/release

const CONTENDED = "contended acquire/release";
/**
 * This group is dominated by garbage collection of 100 000 parked tasks, so
 * its averages swing by ±20% between runs; more samples steady them.
 */
const STEADY_SAMPLES = { n: 40, warmup: 5 };
const PERMITS = 4;
/** 0 + 1 + … + (TASKS − 1). */
const EXPECTED_INDEX_SUM = TASKS * (TASKS - 1) / 2;

/**
 * Tracks one contended run: how many tasks hold a permit now, the most that
 * ever did, and the sum of the indices of the tasks that ran.
 */
class Tally {
  running = 0;
  peak = 0;
  sum = 0;

  /** The work done while holding a permit. */
  async work(index: number): Promise<void> {
    if (++this.running > this.peak) this.peak = this.running;
    await null;
    this.sum += index;
    this.running--;
  }

  /** Throws unless every task ran once and the bound held. */
  check(name: string): void {
    if (this.sum !== EXPECTED_INDEX_SUM) {
      throw new Error(
        `${name}: index sum ${this.sum}, expected ${EXPECTED_INDEX_SUM}`,
      );
    }
    if (this.peak !== PERMITS) {
      throw new Error(
        `${name}: ${this.peak} tasks held a permit at once, expected ${PERMITS}`,
      );
    }
    if (this.running !== 0) {
      throw new Error(`${name}: ${this.running} tasks still running`);
    }
  }
}

/** Starts `TASKS` tasks at once and waits for them all. */
async function startAll(task: (index: number) => Promise<void>): Promise<void> {
  const tasks = new Array<Promise<void>>(TASKS);
  for (let i = 0; i < TASKS; i++) tasks[i] = task(i);
  await Promise.all(tasks);
}

Deno.bench({
  name: "sluice Semaphore acquire + release",
  group: CONTENDED,
  ...STEADY_SAMPLES,
  baseline: true,
  async fn() {
    const semaphore = new Semaphore(PERMITS);
    const tally = new Tally();
    await startAll(async (i) => {
      const permit = await semaphore.acquire();
      try {
        await tally.work(i);
      } finally {
        permit.release();
      }
    });
    tally.check("sluice acquire/release");
    if (semaphore.available !== PERMITS || semaphore.waiting !== 0) {
      throw new Error("sluice acquire/release: permits not all given back");
    }
  },
});

Deno.bench({
  name: "sluice Semaphore run(fn)",
  group: CONTENDED,
  ...STEADY_SAMPLES,
  async fn() {
    const semaphore = new Semaphore(PERMITS);
    const tally = new Tally();
    await startAll((i) => semaphore.run(() => tally.work(i)));
    tally.check("sluice run");
    if (semaphore.available !== PERMITS || semaphore.waiting !== 0) {
      throw new Error("sluice run: permits not all given back");
    }
  },
});

Deno.bench({
  name: "async-sema acquire + release",
  group: CONTENDED,
  ...STEADY_SAMPLES,
  async fn() {
    const sema = new Sema(PERMITS);
    const tally = new Tally();
    await startAll(async (i) => {
      await sema.acquire();
      try {
        await tally.work(i);
      } finally {
        sema.release();
      }
    });
    tally.check("async-sema");
    if (sema.nrWaiting() !== 0) {
      throw new Error("async-sema: waiters left in the queue");
    }
  },
});

Deno.bench({
  name: "p-limit limit(fn)",
  group: CONTENDED,
  ...STEADY_SAMPLES,
  async fn() {
    const limit = pLimit(PERMITS);
    const tally = new Tally();
    await startAll((i) => limit(() => tally.work(i)));
    tally.check("p-limit");
    if (limit.activeCount !== 0 || limit.pendingCount !== 0) {
      throw new Error("p-limit: tasks left active or queued");
    }
  },
});

// ---------------------------------------------------------------------------
// Group 2: mapConcurrent 100k

const MAP = "mapConcurrent 100k";
const CONCURRENCY = 8;
const ITEMS: readonly number[] = Array.from({ length: TASKS }, (_, i) => i);
/** 2 · (0 + 1 + … + (TASKS − 1)). */
const EXPECTED_DOUBLED_SUM = TASKS * (TASKS - 1);

/** The trivial task each item goes through: it settles without waiting. */
// deno-lint-ignore require-await -- async on purpose: every call returns a promise
const double = async (n: number): Promise<number> => n * 2;

/** Throws unless `results` are every item doubled, in input order. */
function checkInOrder(name: string, results: readonly number[]): void {
  if (results.length !== TASKS) {
    throw new Error(`${name}: ${results.length} results, expected ${TASKS}`);
  }
  let sum = 0;
  for (let i = 0; i < TASKS; i++) {
    if (results[i] !== i * 2) {
      throw new Error(
        `${name}: result ${i} is ${results[i]}, expected ${i * 2}`,
      );
    }
    sum += results[i]!;
  }
  if (sum !== EXPECTED_DOUBLED_SUM) {
    throw new Error(`${name}: sum ${sum}, expected ${EXPECTED_DOUBLED_SUM}`);
  }
}

Deno.bench({
  name: "sluice mapConcurrent (for await)",
  group: MAP,
  baseline: true,
  async fn() {
    let sum = 0;
    let expected = 0; // the next result in input order
    for await (
      const doubled of mapConcurrent(ITEMS, double, {
        concurrency: CONCURRENCY,
      })
    ) {
      if (doubled !== expected) {
        throw new Error(
          `sluice mapConcurrent: got ${doubled}, expected ${expected}`,
        );
      }
      expected += 2;
      sum += doubled;
    }
    if (sum !== EXPECTED_DOUBLED_SUM || expected !== 2 * TASKS) {
      throw new Error(
        `sluice mapConcurrent: sum ${sum}, expected ${EXPECTED_DOUBLED_SUM}`,
      );
    }
  },
});

Deno.bench({
  name: "p-limit limit.map(items, fn)",
  group: MAP,
  async fn() {
    const limit = pLimit(CONCURRENCY);
    checkInOrder("p-limit map", await limit.map(ITEMS, double));
  },
});

Deno.bench({
  name: "p-limit Promise.all(items.map(limit(fn)))",
  group: MAP,
  async fn() {
    const limit = pLimit(CONCURRENCY);
    checkInOrder(
      "p-limit Promise.all",
      await Promise.all(ITEMS.map((n) => limit(() => double(n)))),
    );
  },
});

Deno.bench({
  name: "async-sema acquire loop + Promise.all",
  group: MAP,
  async fn() {
    const sema = new Sema(CONCURRENCY);
    const run = async (n: number): Promise<number> => {
      try {
        return await double(n);
      } finally {
        sema.release();
      }
    };
    const results = new Array<Promise<number>>(TASKS);
    for (let i = 0; i < TASKS; i++) {
      await sema.acquire();
      results[i] = run(ITEMS[i]!);
    }
    checkInOrder("async-sema loop", await Promise.all(results));
  },
});

// ---------------------------------------------------------------------------
// Group 3: steady contention — 16 workers loop over 6 250 acquire/release
// pairs each (100 000 in all) on 4 permits. Unlike group 1, only 16 tasks are
// alive at a time, so this measures the limiter rather than the collector.

const STEADY = "steady contention, 16 workers";
const WORKERS = 16;
const ROUNDS = TASKS / WORKERS;

/** Runs `WORKERS` loops of `ROUNDS` guarded steps and checks the tally. */
async function workers(
  name: string,
  guarded: (tally: Tally, index: number) => Promise<void>,
): Promise<void> {
  const tally = new Tally();
  const loops = Array.from({ length: WORKERS }, async (_, w) => {
    for (let r = 0; r < ROUNDS; r++) await guarded(tally, w * ROUNDS + r);
  });
  await Promise.all(loops);
  tally.check(name);
}

Deno.bench({
  name: "sluice Semaphore acquire + release (workers)",
  group: STEADY,
  baseline: true,
  async fn() {
    const semaphore = new Semaphore(PERMITS);
    await workers("sluice workers", async (tally, i) => {
      const permit = await semaphore.acquire();
      try {
        await tally.work(i);
      } finally {
        permit.release();
      }
    });
  },
});

Deno.bench({
  name: "sluice Semaphore run(fn) (workers)",
  group: STEADY,
  async fn() {
    const semaphore = new Semaphore(PERMITS);
    await workers(
      "sluice run workers",
      (tally, i) => semaphore.run(() => tally.work(i)),
    );
  },
});

Deno.bench({
  name: "async-sema acquire + release (workers)",
  group: STEADY,
  async fn() {
    const sema = new Sema(PERMITS);
    await workers("async-sema workers", async (tally, i) => {
      await sema.acquire();
      try {
        await tally.work(i);
      } finally {
        sema.release();
      }
    });
  },
});

Deno.bench({
  name: "p-limit limit(fn) (workers)",
  group: STEADY,
  async fn() {
    const limit = pLimit(PERMITS);
    await workers("p-limit workers", (tally, i) => limit(() => tally.work(i)));
  },
});
