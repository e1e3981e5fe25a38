// The body of an archive entry: a pull-based stream over the shared archive
// reader that the provider settles (drains and verifies) before it moves on.

/** Produces the next piece of a body; `null` at its end, after verifying it. */
export type NextPiece = () => Promise<Uint8Array | null>;

/** One entry's body stream, and the bookkeeping the provider needs. */
export class EntryBody {
  /** The stream handed to the consumer as `entry.body`. */
  readonly stream: ReadableStream<Uint8Array>;
  #next: NextPiece;
  #done = false;
  #failure: { error: unknown } | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  #settled = false;
  #controller!: ReadableStreamDefaultController<Uint8Array>;

  constructor(next: NextPiece) {
    this.#next = next;
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: (controller) => {
        const step = this.#step().then((piece) => {
          if (piece !== null) controller.enqueue(piece);
          else if (this.#settled && this.#failure === undefined) {
            controller.error(
              new TypeError(
                "Cannot read entry body: the iterator has moved on to the next entry",
              ),
            );
          } else controller.close();
        }, (error) => controller.error(error));
        this.#busy = step;
        return step;
      },
      // A cancelled body is drained by settle(), which still verifies it.
    }, { highWaterMark: 0 });
  }

  async #step(): Promise<Uint8Array | null> {
    if (this.#failure) throw this.#failure.error;
    if (this.#done) return null;
    try {
      const piece = await this.#next();
      if (piece === null) this.#done = true;
      return piece;
    } catch (error) {
      this.#failure = { error };
      this.#done = true;
      throw error;
    }
  }

  /**
   * Waits for a read in flight, drains what the consumer left unread (the
   * checks still run), and rethrows the body's failure if it had one.
   */
  async settle(): Promise<void> {
    await this.#busy.catch(() => {});
    while (!this.#done) await this.#step();
    this.#settled = true;
    if (this.#failure) throw this.#failure.error;
  }

  /** Errors the stream for a consumer still holding it (the iteration ended early). */
  abandon(reason: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#failure ??= { error: reason };
    try {
      this.#controller.error(reason);
    } catch {
      // Already closed or errored.
    }
  }
}

/** The body a provider has handed out and not yet settled. */
export interface BodySlot {
  current?: EntryBody | undefined;
}

/**
 * Runs a provider's entry generator so that, when it fails or its consumer
 * stops early, the body in flight is errored (never left hanging) and the
 * source is cancelled.
 */
export async function* guardEntries<T>(
  source: { cancel(reason?: unknown): Promise<void> },
  produce: (slot: BodySlot) => AsyncGenerator<T, void, undefined>,
): AsyncGenerator<T, void, undefined> {
  const slot: BodySlot = {};
  let finished = false;
  try {
    yield* produce(slot);
    finished = true;
  } catch (error) {
    slot.current?.abandon(error);
    throw error;
  } finally {
    if (!finished) {
      slot.current?.abandon(
        new TypeError("Cannot read entry body: iteration stopped"),
      );
      await source.cancel();
    }
  }
}
