import assert from "node:assert/strict";
import { raceAbort, setLongTimeout, sleep } from "./_async.ts";

Deno.test("sleep() does not fire early for delays beyond setTimeout's 2^31 − 1 ms limit", async () => {
  const controller = new AbortController();
  let settled = false;
  const long = sleep(2 ** 31 + 1000, controller.signal).then(
    () => settled = true,
    () => {},
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(settled, false);
  controller.abort();
  await long;
  assert.equal(settled, false);
});

Deno.test("setLongTimeout() fires after short delays and can be cancelled", async () => {
  let fired = 0;
  setLongTimeout(() => fired++, 1);
  const cancel = setLongTimeout(() => fired++, 1);
  cancel();
  await new Promise((resolve) => setTimeout(resolve, 15));
  assert.equal(fired, 1);
});

Deno.test("raceAbort() rejects with the reason on abort and leaves no unhandled rejection behind", async () => {
  const controller = new AbortController();
  let rejectLater!: (e: unknown) => void;
  const pending = new Promise((_, reject) => rejectLater = reject);
  const raced = raceAbort(pending, controller.signal);
  controller.abort("gone");
  await assert.rejects(raced, (e) => e === "gone");
  rejectLater(new Error("late failure")); // must not surface as unhandled
  await new Promise((resolve) => setTimeout(resolve, 1));
});
