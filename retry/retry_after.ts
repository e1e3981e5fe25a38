/**
 * Parse the HTTP `Retry-After` header into a wait in milliseconds.
 *
 * Accepts delta-seconds and the three HTTP-date forms of RFC 9110 §5.6.7
 * (IMF-fixdate, the obsolete RFC 850 form and asctime). Anything else yields
 * `undefined`, never `NaN`, so a caller can fall back to its own backoff.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseRetryAfter("120"), 120_000);
 * assert.equal(parseRetryAfter("soon"), undefined);
 * ```
 *
 * @module
 */

const MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
] as const;
const DAY = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = `(${MONTHS.join("|")})`;
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(
  `^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`,
);
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC_850 = new RegExp(
  `^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
);
// Sun Nov  6 08:49:37 1994
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * Parses a `Retry-After` header value into milliseconds to wait from `now`.
 *
 * A date in the past gives `0`. A value that is neither delta-seconds nor a
 * valid HTTP-date (including impossible dates such as 31 February) gives
 * `undefined`. A two-digit RFC 850 year is read as the most recent year with
 * those digits that is not more than 50 years ahead, as RFC 9110 asks.
 *
 * @param value The header value, or `null`/`undefined` when it was absent.
 * @param now The current time in milliseconds since the epoch; defaults to `Date.now()`.
 * @returns Milliseconds to wait, or `undefined` when the value is absent or invalid.
 *
 * @example All three date forms
 * ```ts
 * import { parseRetryAfter } from "@sluice/sluice/retry";
 * import assert from "node:assert/strict";
 *
 * const now = Date.UTC(1994, 10, 6, 8, 49, 0);
 * assert.equal(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), 37_000);
 * assert.equal(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), 37_000);
 * assert.equal(parseRetryAfter("Sun Nov  6 08:49:37 1994", now), 37_000);
 * assert.equal(parseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const ms = Number(text) * 1000;
    return Number.isFinite(ms) ? ms : undefined;
  }
  const at = parseHttpDate(text, now);
  if (at === undefined) return undefined;
  return Math.max(0, at - now);
}

function parseHttpDate(text: string, now: number): number | undefined {
  let m = IMF_FIXDATE.exec(text);
  if (m) return utc(m[1], +m[4]!, m[3]!, +m[2]!, m[5]!, m[6]!, m[7]!);
  m = RFC_850.exec(text);
  if (m) {
    const currentYear = new Date(now).getUTCFullYear();
    let year = currentYear - (currentYear % 100) + Number(m[4]);
    if (year > currentYear + 50) year -= 100;
    return utc(m[1], year, m[3]!, +m[2]!, m[5]!, m[6]!, m[7]!);
  }
  m = ASCTIME.exec(text);
  if (m) {
    return utc(m[1], +m[7]!, m[2]!, Number(m[3]!.trim()), m[4]!, m[5]!, m[6]!);
  }
  return undefined;
}

function utc(
  weekday: string | undefined,
  year: number,
  monthName: string,
  day: number,
  hh: string,
  mm: string,
  ss: string,
): number | undefined {
  const month = MONTHS.indexOf(monthName as typeof MONTHS[number]);
  const [h, m, s] = [Number(hh), Number(mm), Number(ss)];
  if (h > 23 || m > 59 || s > 60 || day < 1) return undefined;
  const date = new Date(Date.UTC(year, month, day, h, m, Math.min(s, 59)));
  // Date.UTC maps 0..99 to 1900..1999; put the year back as written.
  date.setUTCFullYear(year, month, day);
  if (date.getUTCMonth() !== month || date.getUTCDate() !== day) {
    return undefined;
  }
  // The weekday is redundant; a wrong one means the value is not a real date.
  if (weekday && !weekdayMatches(weekday, date.getUTCDay())) return undefined;
  // RFC 9110 allows a leap second (60): count it as the next second.
  return date.getTime() + (s === 60 ? 1000 : 0);
}

function weekdayMatches(name: string, day: number): boolean {
  return ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][day] ===
    name.slice(0, 3);
}
