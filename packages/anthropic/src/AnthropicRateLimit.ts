/**
 * Anthropic's rate-limit headers: read on a 429, how long until the limit
 * that was hit resets; read on a reply that succeeded, whether a limit has
 * nothing left. Anthropic sends `anthropic-ratelimit-<limit>-reset` as an
 * RFC 3339 timestamp and `anthropic-ratelimit-<limit>-remaining`, which says
 * which limit is spent, for the limits `requests`, `tokens`, `input-tokens`
 * and `output-tokens`. `AnthropicProvider` hands `resetOf` and `spentOf` to
 * `ProviderReply`, which puts the first's answer into
 * `ProviderError.rateLimitReset` and hands the second's to the call's
 * `onLimitSpent`.
 *
 * @example
 * import { Duration } from "effect"
 * import { AnthropicRateLimit } from "@ironlabsai/anthropic"
 *
 * const now = Date.parse("2026-11-30T23:59:00Z")
 * const headers: Record<string, string> = {
 *   "anthropic-ratelimit-requests-remaining": "0",
 *   "anthropic-ratelimit-requests-reset": "2026-11-30T23:59:30Z",
 *   "anthropic-ratelimit-tokens-remaining": "12000",
 *   "anthropic-ratelimit-tokens-reset": "2026-11-30T23:59:01Z"
 * }
 * const reset = AnthropicRateLimit.resetOf((name) => headers[name], now)
 * // the requests limit is the one spent: 30 seconds
 * console.log(reset && Duration.toMillis(reset)) // 30000
 *
 * // On a 200 the same headers say the requests limit is spent, for 30 seconds.
 * const spent = AnthropicRateLimit.spentOf((name) => headers[name], now)
 * console.log(spent?.limit, spent && Duration.toMillis(spent.resetsIn)) // requests 30000
 *
 * @since 0.2.0
 */
import type { Provider } from "@ironlabsai/core"
import type { ProviderReply } from "@ironlabsai/http"
import { Duration } from "effect"

/**
 * RFC 3339's `date-time`: date, `T`, time with optional fraction, then `Z` or
 * an offset (`t` and `z` in lower case too, as RFC 3339 allows). `Date.parse`
 * alone accepts far more than this.
 */
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/

/**
 * Parses an RFC 3339 timestamp (`2026-11-30T23:59:30Z`,
 * `2026-11-30T23:59:30.5+01:00`) to epoch milliseconds, fractions beyond the
 * millisecond cut off. Anything else, an impossible date (February 30,
 * 24:00) or a leap second included, is `undefined`, never a throw.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseTimestamp = (value: string): number | undefined => {
  const text = value.trim()
  const parts = rfc3339.exec(text)
  if (parts === null) return undefined
  const field = (group: number) => Number(parts[group] ?? "0")
  const [year, month, day] = [field(1), field(2), field(3)]
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const daysInMonth =
    month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
  const valid =
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    field(4) <= 23 &&
    field(5) <= 59 &&
    field(6) <= 59 &&
    field(7) <= 23 &&
    field(8) <= 59
  if (!valid) return undefined
  const millis = Date.parse(text.toUpperCase())
  return Number.isFinite(millis) ? millis : undefined
}

/** Each limit Anthropic reports: the header saying how much is left, and the one saying when it resets. */
const limits = (
  [
    ["requests", "requests"],
    ["tokens", "tokens"],
    ["input-tokens", "tokens"],
    ["output-tokens", "tokens"]
  ] as const
).map(([name, limit]) => ({
  limit,
  remaining: `anthropic-ratelimit-${name}-remaining`,
  reset: `anthropic-ratelimit-${name}-reset`
}))

/**
 * When the limit a 429 hit resets, from Anthropic's headers, as the time
 * from `now` (epoch millis) to the reset: the reset of the limit whose
 * `anthropic-ratelimit-*-remaining` is `0` (several spent: the latest reset);
 * when no limit says it is spent, or no spent one's reset parses, the latest
 * of the resets that parse. A value that is not RFC 3339, or a time before
 * `now`, is ignored; `undefined` when nothing is left.
 *
 * @since 0.2.0
 * @category parsing
 */
export const resetOf: ProviderReply.RateLimitResetOf = (header, now) => {
  let spent: number | undefined
  let any: number | undefined
  for (const limit of limits) {
    const value = header(limit.reset)
    const reset = value === undefined ? undefined : parseTimestamp(value)
    if (reset === undefined || reset < now) continue
    any = Math.max(any ?? reset, reset)
    if (header(limit.remaining)?.trim() === "0") spent = Math.max(spent ?? reset, reset)
  }
  const at = spent ?? any
  return at === undefined ? undefined : Duration.millis(at - now)
}

/**
 * The limit a successful reply's headers say has nothing left: one whose
 * `anthropic-ratelimit-*-remaining` is exactly `0`, with the time from `now`
 * (epoch millis) to its `anthropic-ratelimit-*-reset` as `resetsIn`, at least
 * zero (several spent: the one that resets last; on a tie, the first of
 * requests, tokens, input tokens, output tokens). The input and output token
 * limits report as `"tokens"`. A remaining count that is anything else (a
 * number left, `-1` or another negative for "unknown", or text) is not
 * spent. A spent limit whose reset is missing or not RFC 3339 is ignored:
 * there is no telling how long to hold the model. `undefined` when nothing is
 * spent.
 *
 * @since 0.3.0
 * @category parsing
 */
export const spentOf: ProviderReply.LimitSpentOf = (header, now) => {
  let latest: { readonly limit: Provider.LimitSpent["limit"]; readonly at: number } | undefined
  for (const limit of limits) {
    // The remaining count first: on most replies it is not 0, and no timestamp is parsed.
    if (header(limit.remaining)?.trim() !== "0") continue
    const value = header(limit.reset)
    const at = value === undefined ? undefined : parseTimestamp(value)
    if (at !== undefined && (latest === undefined || at > latest.at)) latest = { limit: limit.limit, at }
  }
  return latest === undefined
    ? undefined
    : { limit: latest.limit, resetsIn: Duration.millis(Math.max(0, latest.at - now)) }
}
