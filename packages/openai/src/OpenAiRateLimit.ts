/**
 * OpenAI's rate-limit headers: read on a 429, how long until the limit that
 * was hit resets; read on a reply that succeeded, whether a limit has nothing
 * left. OpenAI sends `x-ratelimit-reset-requests` and
 * `x-ratelimit-reset-tokens` as Go durations (`6m0s`, `1s`, `250ms`), and
 * `x-ratelimit-remaining-requests` / `x-ratelimit-remaining-tokens`, which
 * say which limit is spent. `OpenAiProvider` hands `resetOf` and `spentOf` to
 * `ProviderReply`, which puts the first's answer into
 * `ProviderError.rateLimitReset` and hands the second's to the call's
 * `onLimitSpent`.
 *
 * @example
 * import { Duration } from "effect"
 * import { OpenAiRateLimit } from "@ironlabsai/openai"
 *
 * const headers: Record<string, string> = {
 *   "x-ratelimit-remaining-requests": "0",
 *   "x-ratelimit-reset-requests": "1m30.5s",
 *   "x-ratelimit-remaining-tokens": "12000",
 *   "x-ratelimit-reset-tokens": "6m0s"
 * }
 * const reset = OpenAiRateLimit.resetOf((name) => headers[name], Date.now())
 * // the requests limit is the one spent: 90.5 seconds
 * console.log(reset && Duration.toMillis(reset)) // 90500
 *
 * // On a 200 the same headers say the requests limit is spent, for 90.5 seconds.
 * const spent = OpenAiRateLimit.spentOf((name) => headers[name], Date.now())
 * console.log(spent?.limit, spent && Duration.toMillis(spent.resetsIn)) // requests 90500
 *
 * @since 0.2.0
 */
import type { Provider } from "@ironlabsai/core"
import type { ProviderReply } from "@ironlabsai/http"
import { Duration } from "effect"

/** Nanoseconds per unit of a Go duration. */
const unitNanos: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", 1_000n],
  ["µs", 1_000n], // U+00B5 MICRO SIGN
  ["μs", 1_000n], // U+03BC GREEK SMALL LETTER MU
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n]
])

/** A whole Go duration: one or more `<number><unit>`, the number with an optional fraction (`1.`, `.5`, `1.5`). */
const durationPattern = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|h|m|s))+$/

/** One `<number><unit>` of a duration that `durationPattern` accepted. */
const componentPattern = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|h|m|s)/g

/** The longest duration Go can represent (2^63 - 1 ns, about 292 years); anything longer is garbage. */
const maxNanos = 9_223_372_036_854_775_807n

/**
 * Parses a Go duration as OpenAI writes it in `x-ratelimit-reset-*`: `6m0s`,
 * `1s`, `250ms`, `1m30.5s`, `2h0m0s`, `0s` (units `h`, `m`, `s`, `ms`, `us`
 * or `µs`, `ns`; a bare `0` is zero, as in Go). Surrounding whitespace is
 * allowed; anything else, a sign included, is `undefined`, never a throw.
 * A whole number of milliseconds is a `Duration.millis`, anything finer
 * `Duration.nanos`.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseDuration = (value: string): Duration.Duration | undefined => {
  const text = value.trim()
  if (text === "0") return Duration.zero
  if (!durationPattern.test(text)) return undefined
  let nanos = 0n
  for (const [, whole = "", fraction = "", unit = ""] of text.matchAll(componentPattern)) {
    const perUnit = unitNanos.get(unit) ?? 0n
    nanos += BigInt(whole === "" ? "0" : whole) * perUnit
    if (fraction !== "") nanos += (BigInt(fraction) * perUnit) / 10n ** BigInt(fraction.length)
  }
  if (nanos > maxNanos) return undefined
  return nanos % 1_000_000n === 0n ? Duration.millis(Number(nanos / 1_000_000n)) : Duration.nanos(nanos)
}

/** Each limit OpenAI reports: the header saying how much is left, and the one saying when it resets. */
const limits = [
  { limit: "requests", remaining: "x-ratelimit-remaining-requests", reset: "x-ratelimit-reset-requests" },
  { limit: "tokens", remaining: "x-ratelimit-remaining-tokens", reset: "x-ratelimit-reset-tokens" }
] as const

/**
 * When the limit a 429 hit resets, from OpenAI's headers: the reset of the
 * limit whose `x-ratelimit-remaining-*` is `0` (both spent: the later reset);
 * when no limit says it is spent, or a spent one's reset does not parse, the
 * later of the resets that parse. Unparseable values are ignored; `undefined`
 * when none parses. `now` is unused: OpenAI's resets are already durations.
 *
 * @since 0.2.0
 * @category parsing
 */
export const resetOf: ProviderReply.RateLimitResetOf = (header) => {
  let spent: Duration.Duration | undefined
  let any: Duration.Duration | undefined
  for (const limit of limits) {
    const value = header(limit.reset)
    const reset = value === undefined ? undefined : parseDuration(value)
    if (reset === undefined) continue
    any = later(any, reset)
    if (header(limit.remaining)?.trim() === "0") spent = later(spent, reset)
  }
  return spent ?? any
}

const later = (a: Duration.Duration | undefined, b: Duration.Duration): Duration.Duration =>
  a === undefined ? b : Duration.max(a, b)

/**
 * The limit a successful reply's headers say has nothing left: one whose
 * `x-ratelimit-remaining-*` is exactly `0`, with its
 * `x-ratelimit-reset-*` as `resetsIn` (both spent: the one that resets last;
 * on a tie, requests). A remaining count that is anything else (a number
 * left, `-1` or another negative for "unknown", or text) is not spent. A spent limit whose reset is missing or
 * does not parse as a Go duration is ignored: there is no telling how long
 * to hold the model. `undefined` when nothing is spent. `now` is unused:
 * OpenAI's resets are already durations.
 *
 * @since 0.3.0
 * @category parsing
 */
export const spentOf: ProviderReply.LimitSpentOf = (header) => {
  let spent: Provider.LimitSpent | undefined
  for (const limit of limits) {
    // The remaining count first: on most replies it is not 0, and no reset is parsed.
    if (header(limit.remaining)?.trim() !== "0") continue
    const value = header(limit.reset)
    const reset = value === undefined ? undefined : parseDuration(value)
    if (reset === undefined) continue
    if (spent === undefined || Duration.greaterThan(reset, spent.resetsIn)) {
      spent = { limit: limit.limit, resetsIn: reset }
    }
  }
  return spent
}
