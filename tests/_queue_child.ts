// The child of the queue crash test in queue_test.ts: opens the queue at
// <db> and runs it with small checkpoints, printing each event as a JSON
// line. The parent SIGKILLs it mid-transfer.
//
//   deno run -A tests/_queue_child.ts <db>

import { TransferQueue } from "../core/queue.ts";

const [db] = Deno.args;
const out = new TextEncoder();
await using queue = await TransferQueue.open({
  db: db!,
  maxConcurrent: 3,
  download: { checkpointBytes: 128 * 1024 },
  onEvent(event) {
    if (event.type === "progress") return;
    Deno.stdout.writeSync(out.encode(`${JSON.stringify(event)}\n`));
  },
});
await queue.run();
