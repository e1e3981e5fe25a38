/**
 * Deliver one stream to several sinks at once, in bounded memory: the source
 * is read only as fast as the slowest sink takes it, every sink gets the same
 * bytes, and a sink that fails drops out without stopping the others.
 *
 * @example
 * ```ts
 * import { deliverAll, fileSink } from "@sluice/sluice/sinks";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const receipts = await deliverAll(
 *   ReadableStream.from([new TextEncoder().encode("twice")]),
 *   [fileSink(`${dir}/a.txt`), fileSink(`${dir}/b.txt`)],
 * );
 * assert.deepEqual(receipts.map((r) => r.bytes), [5, 5]);
 * assert.equal(receipts[0]!.sha256, receipts[1]!.sha256);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { PartialFailureError } from "../core/errors.ts";
import type {
  DeliverOptions,
  DeliveryMetadata,
  DeliveryReceipt,
  Sink,
} from "./types.ts";

/** Options for {@linkcode deliverAll}. */
export interface DeliverAllOptions extends DeliverOptions {
  /** Chunks a fast sink may run ahead of the slowest one (default 4). */
  maxAhead?: number;
}

interface Branch {
  queue: Uint8Array[];
  live: boolean;
}

/**
 * One reader of `source` split into `count` streams. A chunk is read from
 * the source only when every live branch has fewer than `maxAhead` chunks
 * waiting; a cancelled branch stops counting, and the source is cancelled
 * when no branch is left.
 */
function broadcast(
  source: ReadableStream<Uint8Array>,
  count: number,
  maxAhead: number,
): ReadableStream<Uint8Array>[] {
  const reader = source.getReader();
  const branches: Branch[] = Array.from(
    { length: count },
    () => ({ queue: [], live: true }),
  );
  let ended = false;
  let failure: { error: unknown } | undefined;
  let reading: Promise<void> | undefined;
  let waiters: (() => void)[] = [];
  const wakeAll = () => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };
  const readOne = () =>
    reading ??= (async () => {
      try {
        const { done, value } = await reader.read();
        if (done) ended = true;
        else for (const b of branches) if (b.live) b.queue.push(value);
      } catch (error) {
        failure = { error };
      } finally {
        reading = undefined;
        wakeAll();
      }
    })();

  return branches.map((branch) =>
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        while (branch.queue.length === 0) {
          if (failure) return controller.error(failure.error);
          if (ended) return controller.close();
          if (branches.every((b) => !b.live || b.queue.length < maxAhead)) {
            await readOne();
          } else {
            await new Promise<void>((r) => waiters.push(r));
          }
        }
        controller.enqueue(branch.queue.shift()!);
        wakeAll();
      },
      async cancel(reason) {
        branch.live = false;
        branch.queue = [];
        wakeAll();
        if (branches.every((b) => !b.live)) await reader.cancel(reason);
      },
    }, { highWaterMark: 0 })
  );
}

/**
 * Delivers `source` to every sink in `sinks` concurrently and returns their
 * receipts in the same order. Memory stays bounded: the source is read only
 * as fast as the slowest sink consumes it (a fast one runs at most
 * `maxAhead` chunks ahead). The sinks share each chunk, so they must not
 * modify it. A sink that fails is cut loose and the others go on; if any
 * failed, the call rejects with a `PartialFailureError` whose `succeeded`
 * holds the receipts that were committed and whose `failed` items are the
 * indexes of the sinks that failed, with their errors.
 *
 * @param source The bytes, read once.
 * @param sinks Where they go.
 * @param meta Passed to every sink.
 * @param options An abort signal (given to every delivery) and `maxAhead`.
 * @returns One receipt per sink, in order.
 * @throws {PartialFailureError} When at least one sink failed.
 *
 * @example One sink fails, the other commits
 * ```ts
 * import { deliverAll, fileSink } from "@sluice/sluice/sinks";
 * import { PartialFailureError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const error = await deliverAll(
 *   ReadableStream.from([new Uint8Array(8)]),
 *   [fileSink(`${dir}/ok.bin`), fileSink(`${dir}/missing-dir/no.bin`)],
 * ).catch((e) => e);
 * assert.ok(error instanceof PartialFailureError);
 * assert.equal(error.succeeded.length, 1);
 * assert.equal(error.failed[0]!.item, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function deliverAll(
  source: ReadableStream<Uint8Array>,
  sinks: readonly Sink[],
  meta?: DeliveryMetadata,
  options: DeliverAllOptions = {},
): Promise<DeliveryReceipt[]> {
  const maxAhead = options.maxAhead ?? 4;
  if (!(Number.isInteger(maxAhead) && maxAhead >= 1)) {
    throw new RangeError(
      `Cannot deliver to several sinks: maxAhead must be an integer >= 1, got ${maxAhead}`,
    );
  }
  if (sinks.length === 0) {
    await source.cancel();
    return [];
  }
  const deliverOptions = options.signal ? { signal: options.signal } : {};
  const streams = broadcast(source, sinks.length, maxAhead);
  const settled = await Promise.allSettled(
    sinks.map(async (sink, i) => {
      const stream = streams[i]!;
      try {
        return await sink.deliver(stream, meta, deliverOptions);
      } catch (error) {
        await stream.cancel(error).catch(() => {}); // cut it loose
        throw error;
      }
    }),
  );
  const succeeded = settled.flatMap((s) =>
    s.status === "fulfilled" ? [s.value] : []
  );
  const failed = settled.flatMap((s, item) =>
    s.status === "rejected" ? [{ item, error: s.reason as unknown }] : []
  );
  if (failed.length > 0) {
    throw new PartialFailureError<DeliveryReceipt, number>({
      operation: "deliver to every sink",
      succeeded,
      failed,
    });
  }
  return succeeded;
}
