import assert from "node:assert/strict";
import { parseRetryAfter } from "./retry_after.ts";

const NOW = Date.UTC(2026, 10, 21, 12, 0, 0); // Sat, 21 Nov 2026 12:00:00 GMT

Deno.test("parseRetryAfter() reads delta-seconds, with surrounding whitespace", () => {
  assert.equal(parseRetryAfter("0", NOW), 0);
  assert.equal(parseRetryAfter("120", NOW), 120_000);
  assert.equal(parseRetryAfter("  7 ", NOW), 7000);
});

Deno.test("parseRetryAfter() reads the IMF-fixdate, RFC 850 and asctime forms", () => {
  assert.equal(parseRetryAfter("Sat, 21 Nov 2026 12:00:30 GMT", NOW), 30_000);
  assert.equal(
    parseRetryAfter("Saturday, 21-Nov-26 12:00:30 GMT", NOW),
    30_000,
  );
  assert.equal(parseRetryAfter("Sat Nov 21 12:00:30 2026", NOW), 30_000);
  assert.equal(
    parseRetryAfter("Tue Dec  1 12:00:00 2026", NOW),
    10 * 86_400_000,
  );
});

Deno.test("parseRetryAfter() gives 0 for a date in the past", () => {
  assert.equal(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", NOW), 0);
  assert.equal(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", NOW), 0);
});

Deno.test("parseRetryAfter() reads a two-digit RFC 850 year as at most 50 years ahead", () => {
  // 76 → 2076 (50 years ahead) and 77 → 1977 (51 years ahead would be too far).
  assert.equal(
    parseRetryAfter("Saturday, 21-Nov-76 12:00:00 GMT", NOW),
    Date.UTC(2076, 10, 21, 12) - NOW,
  );
  assert.equal(parseRetryAfter("Monday, 21-Nov-77 12:00:00 GMT", NOW), 0);
});

Deno.test("parseRetryAfter() counts a leap second as the next second", () => {
  assert.equal(parseRetryAfter("Sat, 21 Nov 2026 12:00:60 GMT", NOW), 60_000);
});

Deno.test("parseRetryAfter() returns undefined, never NaN, for absent or invalid values", () => {
  for (
    const value of [
      null,
      undefined,
      "",
      "soon",
      "-1",
      "1.5",
      "1e3",
      "0x10",
      "Sat, 21 Nov 2026 12:00:30 UTC", // only GMT is allowed
      "Sat, 31 Feb 2026 12:00:00 GMT", // no such day
      "Mon, 21 Nov 2026 12:00:00 GMT", // wrong weekday
      "Sat, 21 Nov 2026 25:00:00 GMT", // no such hour
      "Sat, 21 Foo 2026 12:00:00 GMT",
      "2026-11-21T12:00:30Z", // ISO 8601 is not an HTTP-date
      "Sat, 21 Nov 2026 12:00:30 GMT; extra",
    ]
  ) {
    assert.equal(parseRetryAfter(value, NOW), undefined, String(value));
  }
});

Deno.test("parseRetryAfter() keeps an enormous delta finite", () => {
  const value = parseRetryAfter("9".repeat(400), NOW);
  assert.equal(value, undefined);
  assert.equal(parseRetryAfter("99999999999", NOW), 99_999_999_999_000);
});
