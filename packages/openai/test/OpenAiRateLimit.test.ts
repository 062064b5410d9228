/**
 * OpenAI's rate-limit headers, without HTTP: Go durations as OpenAI writes
 * them, garbage, and which limit's reset is chosen. The provider tests check
 * the same over the wire.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, FastCheck } from "effect"
import { OpenAiRateLimit } from "../src/index.js"

/** The duration in nanoseconds, exactly; `undefined` stays `undefined`. */
const nanosOf = (duration: Duration.Duration | undefined): bigint | undefined =>
  duration === undefined ? undefined : Duration.unsafeToNanos(duration)

const ms = (millis: number): bigint => BigInt(millis) * 1_000_000n

/** A header lookup over a plain record, by lower-case name as `ProviderReply` offers it. */
const lookup =
  (headers: Readonly<Record<string, string>>) =>
  (name: string): string | undefined =>
    headers[name]

const headerNames = [
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens"
] as const

/** Any instant: OpenAI's resets are durations, so `now` must not matter. */
const NOW = 1_700_000_000_000

describe("OpenAiRateLimit", () => {
  describe("parseDuration", () => {
    const rows: ReadonlyArray<readonly [string, bigint | undefined]> = [
      ["6m0s", ms(360_000)],
      ["1s", ms(1_000)],
      ["250ms", ms(250)],
      ["1m30.5s", ms(90_500)],
      ["2h0m0s", ms(7_200_000)],
      ["0s", 0n],
      ["0", 0n],
      ["20ms", ms(20)],
      ["1.5s", ms(1_500)],
      ["1.1s", ms(1_100)],
      ["0.001s", ms(1)],
      [".5s", ms(500)],
      ["1.s", ms(1_000)],
      ["1h1m1s1ms", ms(3_661_001)],
      ["90s", ms(90_000)],
      ["1.5h", ms(5_400_000)],
      ["17us", 17_000n],
      ["17µs", 17_000n], // U+00B5 MICRO SIGN, as Go prints it
      ["17μs", 17_000n], // U+03BC GREEK SMALL LETTER MU, which Go accepts too
      ["1.5µs", 1_500n],
      ["999ns", 999n],
      ["1ms500us", 1_500_000n],
      ["1.0000000001s", 1_000_000_000n],
      [" 1s ", ms(1_000)],
      ["2562047h47m16.854775807s", 9_223_372_036_854_775_807n]
    ]
    for (const [value, nanos] of rows) {
      it(`${JSON.stringify(value)} -> ${nanos} ns`, () => {
        assert.strictEqual(nanosOf(OpenAiRateLimit.parseDuration(value)), nanos)
      })
    }

    for (const value of [
      "",
      " ",
      "soon",
      "1",
      "60",
      "s",
      ".s",
      "1.5",
      "-1s",
      "+1s",
      "1 s",
      "1s 2s",
      "1S",
      "1d",
      "1sec",
      "1m30",
      "1..5s",
      "1e3ms",
      "0x10s",
      "NaN",
      "Infinity",
      "2026-11-30T23:59:30Z",
      "2562047h47m16.854775808s"
    ]) {
      it(`${JSON.stringify(value)} -> undefined`, () => {
        assert.isUndefined(OpenAiRateLimit.parseDuration(value))
      })
    }

    it("a whole number of milliseconds is a millis duration, anything finer nanos", () => {
      assert.deepStrictEqual(OpenAiRateLimit.parseDuration("1m30.5s")?.value, { _tag: "Millis", millis: 90_500 })
      assert.deepStrictEqual(OpenAiRateLimit.parseDuration("1.5µs")?.value, { _tag: "Nanos", nanos: 1_500n })
    })

    it.prop(
      "<h>h<m>m<s>.<ms>s parses to exactly that many milliseconds",
      [
        FastCheck.integer({ min: 0, max: 10_000 }),
        FastCheck.integer({ min: 0, max: 59 }),
        FastCheck.integer({ min: 0, max: 59 }),
        FastCheck.integer({ min: 0, max: 999 })
      ],
      ([h, m, s, millis]) => {
        const value = `${h}h${m}m${s}.${String(millis).padStart(3, "0")}s`
        return nanosOf(OpenAiRateLimit.parseDuration(value)) === ms(((h * 60 + m) * 60 + s) * 1000 + millis)
      }
    )

    it.prop("never throws, and never gives a negative duration", [FastCheck.string()], ([value]) => {
      const nanos = nanosOf(OpenAiRateLimit.parseDuration(value))
      return nanos === undefined || nanos >= 0n
    })
  })

  describe("resetOf", () => {
    const rows: ReadonlyArray<readonly [string, Readonly<Record<string, string>>, number | undefined]> = [
      ["no headers", {}, undefined],
      ["only the requests reset", { "x-ratelimit-reset-requests": "1s" }, 1_000],
      ["only the tokens reset", { "x-ratelimit-reset-tokens": "6m0s" }, 360_000],
      [
        "no remaining headers: the longer reset",
        { "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s" },
        360_000
      ],
      [
        "requests spent: the requests reset, though the tokens reset is longer",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-remaining-tokens": "1500",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        1_000
      ],
      [
        "tokens spent: the tokens reset, though the requests reset is longer",
        {
          "x-ratelimit-remaining-requests": "59",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-requests": "1m30.5s",
          "x-ratelimit-reset-tokens": "20ms"
        },
        20
      ],
      [
        "both spent: the longer reset",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-requests": "1m30.5s",
          "x-ratelimit-reset-tokens": "250ms"
        },
        90_500
      ],
      [
        "neither spent: the longer reset",
        {
          "x-ratelimit-remaining-requests": "3",
          "x-ratelimit-remaining-tokens": "100",
          "x-ratelimit-reset-requests": "250ms",
          "x-ratelimit-reset-tokens": "1.5s"
        },
        1_500
      ],
      [
        "remaining 0 with surrounding whitespace counts as spent",
        {
          "x-ratelimit-remaining-tokens": " 0 ",
          "x-ratelimit-reset-requests": "2h0m0s",
          "x-ratelimit-reset-tokens": "1s"
        },
        1_000
      ],
      [
        "a remaining that is empty or garbage is not spent",
        {
          "x-ratelimit-remaining-requests": "",
          "x-ratelimit-remaining-tokens": "none",
          "x-ratelimit-reset-requests": "250ms",
          "x-ratelimit-reset-tokens": "1s"
        },
        1_000
      ],
      [
        "the spent limit's reset is garbage: the longer of the resets that parse",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "soon",
          "x-ratelimit-reset-tokens": "20ms"
        },
        20
      ],
      ["a garbage reset is ignored", { "x-ratelimit-reset-requests": "-1s", "x-ratelimit-reset-tokens": "250ms" }, 250],
      ["both resets garbage", { "x-ratelimit-reset-requests": "1d", "x-ratelimit-reset-tokens": "" }, undefined],
      ["remaining 0 but no reset", { "x-ratelimit-remaining-requests": "0" }, undefined],
      ["a zero reset", { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "0s" }, 0]
    ]
    for (const [name, headers, millis] of rows) {
      it(`${name} -> ${millis === undefined ? "undefined" : `${millis} ms`}`, () => {
        const reset = OpenAiRateLimit.resetOf(lookup(headers), NOW)
        assert.strictEqual(nanosOf(reset), millis === undefined ? undefined : ms(millis))
      })
    }

    it("does not depend on now", () => {
      const headers = lookup({ "x-ratelimit-reset-tokens": "6m0s" })
      assert.strictEqual(nanosOf(OpenAiRateLimit.resetOf(headers, 0)), ms(360_000))
      assert.strictEqual(nanosOf(OpenAiRateLimit.resetOf(headers, NOW)), ms(360_000))
    })

    it.prop(
      "never throws on any header values",
      [FastCheck.dictionary(FastCheck.constantFrom(...headerNames), FastCheck.string())],
      ([headers]) => {
        const reset = OpenAiRateLimit.resetOf(lookup(headers), NOW)
        return reset === undefined || Duration.unsafeToNanos(reset) >= 0n
      }
    )
  })

  describe("spentOf", () => {
    type Spent = { readonly limit: "requests" | "tokens"; readonly nanos: bigint } | undefined
    const rows: ReadonlyArray<readonly [string, Readonly<Record<string, string>>, Spent]> = [
      ["no headers", {}, undefined],
      [
        "requests spent, reset 1m30.5s",
        { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30.5s" },
        { limit: "requests", nanos: ms(90_500) }
      ],
      [
        "tokens spent, reset 6ms",
        { "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6ms" },
        { limit: "tokens", nanos: ms(6) }
      ],
      [
        "tokens spent, reset 17µs: kept to the nanosecond",
        { "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "17µs" },
        { limit: "tokens", nanos: 17_000n }
      ],
      [
        "requests spent, tokens left: the requests limit, though the tokens reset is longer",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-remaining-tokens": "12000",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        { limit: "requests", nanos: ms(1_000) }
      ],
      [
        "both spent: the one that resets last (tokens)",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "250ms",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-tokens": "1m30.5s"
        },
        { limit: "tokens", nanos: ms(90_500) }
      ],
      [
        "both spent: the one that resets last (requests)",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "2h0m0s",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        { limit: "requests", nanos: ms(7_200_000) }
      ],
      [
        "both spent, resetting together: requests",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-tokens": "1000ms"
        },
        { limit: "requests", nanos: ms(1_000) }
      ],
      [
        "none spent",
        {
          "x-ratelimit-remaining-requests": "59",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-remaining-tokens": "1",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        undefined
      ],
      [
        "-1 is unknown, not spent",
        {
          "x-ratelimit-remaining-requests": "-1",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-remaining-tokens": "-1",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        undefined
      ],
      [
        "another negative or text is not spent",
        {
          "x-ratelimit-remaining-requests": "-5",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-remaining-tokens": "none",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        undefined
      ],
      [
        "0.5 or an empty value is not spent",
        {
          "x-ratelimit-remaining-requests": "0.5",
          "x-ratelimit-reset-requests": "1s",
          "x-ratelimit-remaining-tokens": "",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        undefined
      ],
      [
        "0 with surrounding whitespace is spent",
        { "x-ratelimit-remaining-requests": " 0 ", "x-ratelimit-reset-requests": "1s" },
        { limit: "requests", nanos: ms(1_000) }
      ],
      ["spent without a reset is ignored", { "x-ratelimit-remaining-requests": "0" }, undefined],
      [
        "spent with an unparsable reset is ignored",
        { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "soon" },
        undefined
      ],
      [
        "spent with a negative reset is ignored",
        { "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "-1s" },
        undefined
      ],
      [
        "one spent with an unparsable reset, the other with a parsable one: the other",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "2026-11-30T23:59:30Z",
          "x-ratelimit-remaining-tokens": "0",
          "x-ratelimit-reset-tokens": "20ms"
        },
        { limit: "tokens", nanos: ms(20) }
      ],
      [
        "the reset of a limit with something left is not used",
        {
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "soon",
          "x-ratelimit-remaining-tokens": "5",
          "x-ratelimit-reset-tokens": "6m0s"
        },
        undefined
      ],
      [
        "a zero reset is spent for zero",
        { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "0s" },
        { limit: "requests", nanos: 0n }
      ]
    ]
    for (const [name, headers, expected] of rows) {
      it(`${name} -> ${expected === undefined ? "undefined" : `${expected.limit} for ${expected.nanos} ns`}`, () => {
        const spent = OpenAiRateLimit.spentOf(lookup(headers), NOW)
        assert.deepStrictEqual(
          spent === undefined ? undefined : { limit: spent.limit, nanos: nanosOf(spent.resetsIn) },
          expected
        )
      })
    }

    it("does not depend on now", () => {
      const headers = lookup({ "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s" })
      assert.strictEqual(nanosOf(OpenAiRateLimit.spentOf(headers, 0)?.resetsIn), ms(360_000))
      assert.strictEqual(nanosOf(OpenAiRateLimit.spentOf(headers, NOW)?.resetsIn), ms(360_000))
    })

    it("reads no reset when nothing is spent", () => {
      const read: Array<string> = []
      const headers = { "x-ratelimit-remaining-requests": "59", "x-ratelimit-remaining-tokens": "-1" }
      const spent = OpenAiRateLimit.spentOf((name) => {
        read.push(name)
        return lookup(headers)(name)
      }, NOW)
      assert.isUndefined(spent)
      assert.deepStrictEqual(read, ["x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"])
    })

    it.prop(
      "never throws on any header values, and what it finds is a 0 remaining with the reset that parses",
      [
        FastCheck.dictionary(
          FastCheck.constantFrom(...headerNames),
          FastCheck.oneof(FastCheck.string(), FastCheck.constantFrom("0", "-1", "1s", "1m30.5s"))
        )
      ],
      ([headers]) => {
        const spent = OpenAiRateLimit.spentOf(lookup(headers), NOW)
        if (spent === undefined) return true
        const reset = OpenAiRateLimit.parseDuration(headers[`x-ratelimit-reset-${spent.limit}`] ?? "")
        return (
          headers[`x-ratelimit-remaining-${spent.limit}`]?.trim() === "0" &&
          reset !== undefined &&
          Duration.equals(reset, spent.resetsIn)
        )
      }
    )
  })
})
