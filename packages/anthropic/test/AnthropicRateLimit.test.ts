/**
 * Anthropic's rate-limit headers, without HTTP: RFC 3339 timestamps, garbage,
 * timestamps in the past, and which limit's reset is chosen, always against
 * an explicit `now`. The provider tests check the same over the wire.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, FastCheck } from "effect"
import { AnthropicRateLimit } from "../src/index.js"

/** 2026-11-30T23:59:00.000Z. */
const NOW = Date.UTC(2026, 10, 30, 23, 59, 0)

/** The RFC 3339 timestamp (UTC, with milliseconds) `millis` after `NOW`. */
const at = (millis: number): string => new Date(NOW + millis).toISOString()

const millisOf = (duration: Duration.Duration | undefined): number | undefined =>
  duration === undefined ? undefined : Duration.toMillis(duration)

/** A header lookup over a plain record, by lower-case name as `ProviderReply` offers it. */
const lookup =
  (headers: Readonly<Record<string, string>>) =>
  (name: string): string | undefined =>
    headers[name]

const limits = ["requests", "tokens", "input-tokens", "output-tokens"] as const
const headerNames = limits.flatMap((limit) => [
  `anthropic-ratelimit-${limit}-remaining`,
  `anthropic-ratelimit-${limit}-reset`
])

describe("AnthropicRateLimit", () => {
  describe("parseTimestamp", () => {
    const rows: ReadonlyArray<readonly [string, number | undefined]> = [
      ["2026-11-30T23:59:30Z", Date.UTC(2026, 10, 30, 23, 59, 30)],
      ["2026-11-30T23:59:30.5Z", Date.UTC(2026, 10, 30, 23, 59, 30, 500)],
      ["2026-11-30T23:59:30.123Z", Date.UTC(2026, 10, 30, 23, 59, 30, 123)],
      ["2026-11-30T23:59:30.123999999Z", Date.UTC(2026, 10, 30, 23, 59, 30, 123)],
      ["2026-11-30T23:59:30+01:00", Date.UTC(2026, 10, 30, 22, 59, 30)],
      ["2026-11-30T23:59:30-05:30", Date.UTC(2026, 11, 1, 5, 29, 30)],
      ["2026-11-30T23:59:30.25+00:00", Date.UTC(2026, 10, 30, 23, 59, 30, 250)],
      ["2026-11-30T23:59:30-00:00", Date.UTC(2026, 10, 30, 23, 59, 30)],
      ["2026-11-30t23:59:30z", Date.UTC(2026, 10, 30, 23, 59, 30)],
      [" 2026-11-30T23:59:30Z ", Date.UTC(2026, 10, 30, 23, 59, 30)],
      ["2028-02-29T00:00:00Z", Date.UTC(2028, 1, 29)],
      ["2000-02-29T00:00:00Z", Date.UTC(2000, 1, 29)],
      // Not RFC 3339, though Date.parse takes each of them.
      ["2026-11-30", undefined],
      ["2026-11-30T23:59:30", undefined],
      ["2026-11-30T23:59Z", undefined],
      ["2026-11-30 23:59:30Z", undefined],
      ["2026-11-30T23:59:30.Z", undefined],
      ["2026-11-30T23:59:30+0100", undefined],
      ["2026-11-30T23:59:30 GMT", undefined],
      ["Mon, 30 Nov 2026 23:59:30 GMT", undefined],
      ["+002026-11-30T23:59:30Z", undefined],
      ["1796083170", undefined],
      ["30s", undefined],
      // RFC 3339 in shape, but no such instant.
      ["2026-02-30T00:00:00Z", undefined],
      ["2026-02-29T00:00:00Z", undefined],
      ["2100-02-29T00:00:00Z", undefined],
      ["2026-04-31T00:00:00Z", undefined],
      ["2026-13-01T00:00:00Z", undefined],
      ["2026-00-10T00:00:00Z", undefined],
      ["2026-11-00T00:00:00Z", undefined],
      ["2026-11-30T24:00:00Z", undefined],
      ["2026-11-30T23:60:00Z", undefined],
      ["2026-12-31T23:59:60Z", undefined],
      ["2026-11-30T23:59:30+24:00", undefined],
      ["2026-11-30T23:59:30+01:60", undefined],
      ["", undefined],
      ["soon", undefined]
    ]
    for (const [value, millis] of rows) {
      it(`${JSON.stringify(value)} -> ${millis === undefined ? "undefined" : new Date(millis).toISOString()}`, () => {
        assert.strictEqual(AnthropicRateLimit.parseTimestamp(value), millis)
      })
    }

    it.prop(
      "any instant written by toISOString parses back to itself",
      [FastCheck.integer({ min: 0, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) })],
      ([millis]) => AnthropicRateLimit.parseTimestamp(new Date(millis).toISOString()) === millis
    )

    it.prop("never throws", [FastCheck.string()], ([value]) => {
      const millis = AnthropicRateLimit.parseTimestamp(value)
      return millis === undefined || Number.isFinite(millis)
    })
  })

  describe("resetOf", () => {
    const rows: ReadonlyArray<readonly [string, Readonly<Record<string, string>>, number | undefined]> = [
      ["no headers", {}, undefined],
      ["only the requests reset", { "anthropic-ratelimit-requests-reset": at(30_000) }, 30_000],
      ["a reset with a fraction of a second", { "anthropic-ratelimit-tokens-reset": at(1_250) }, 1_250],
      ["a reset with an offset", { "anthropic-ratelimit-requests-reset": "2026-12-01T00:59:30+01:00" }, 30_000],
      [
        "no remaining headers: the latest reset",
        {
          "anthropic-ratelimit-requests-reset": at(30_000),
          "anthropic-ratelimit-tokens-reset": at(5_000),
          "anthropic-ratelimit-input-tokens-reset": at(45_000),
          "anthropic-ratelimit-output-tokens-reset": at(1_000)
        },
        45_000
      ],
      [
        "requests spent: the requests reset, though others are later",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(2_000),
          "anthropic-ratelimit-tokens-remaining": "9000",
          "anthropic-ratelimit-tokens-reset": at(60_000)
        },
        2_000
      ],
      [
        "tokens spent: the tokens reset",
        {
          "anthropic-ratelimit-requests-remaining": "49",
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-tokens-remaining": "0",
          "anthropic-ratelimit-tokens-reset": at(7_500)
        },
        7_500
      ],
      [
        "input tokens spent: the input-tokens reset",
        {
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-input-tokens-remaining": "0",
          "anthropic-ratelimit-input-tokens-reset": at(3_000),
          "anthropic-ratelimit-output-tokens-remaining": "100",
          "anthropic-ratelimit-output-tokens-reset": at(50_000)
        },
        3_000
      ],
      [
        "output tokens spent: the output-tokens reset",
        {
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-output-tokens-remaining": "0",
          "anthropic-ratelimit-output-tokens-reset": at(4_000)
        },
        4_000
      ],
      [
        "requests and tokens spent: the later of their resets",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(2_000),
          "anthropic-ratelimit-tokens-remaining": "0",
          "anthropic-ratelimit-tokens-reset": at(9_000),
          "anthropic-ratelimit-input-tokens-reset": at(60_000)
        },
        9_000
      ],
      [
        "neither spent: the latest reset",
        {
          "anthropic-ratelimit-requests-remaining": "10",
          "anthropic-ratelimit-requests-reset": at(2_000),
          "anthropic-ratelimit-tokens-remaining": "1",
          "anthropic-ratelimit-tokens-reset": at(9_000)
        },
        9_000
      ],
      [
        "the spent limit's reset is garbage: the latest of the resets that parse",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": "soon",
          "anthropic-ratelimit-tokens-reset": at(9_000)
        },
        9_000
      ],
      [
        "the spent limit's reset is in the past: the latest of the resets that parse",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(-1_000),
          "anthropic-ratelimit-tokens-reset": at(9_000)
        },
        9_000
      ],
      [
        "a reset in the past is ignored",
        { "anthropic-ratelimit-requests-reset": at(-1), "anthropic-ratelimit-tokens-reset": at(500) },
        500
      ],
      ["a reset at now is zero", { "anthropic-ratelimit-requests-reset": at(0) }, 0],
      ["only a past reset", { "anthropic-ratelimit-requests-reset": at(-60_000) }, undefined],
      [
        "a reset Date.parse accepts but RFC 3339 does not is ignored",
        {
          "anthropic-ratelimit-requests-reset": new Date(NOW + 60_000).toUTCString(),
          "anthropic-ratelimit-tokens-reset": at(500)
        },
        500
      ],
      [
        "an impossible date is ignored, not rolled over",
        { "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2026-11-31T00:00:00Z" },
        undefined
      ],
      [
        "a remaining that is empty or garbage is not spent",
        {
          "anthropic-ratelimit-requests-remaining": "",
          "anthropic-ratelimit-requests-reset": at(2_000),
          "anthropic-ratelimit-tokens-remaining": "none",
          "anthropic-ratelimit-tokens-reset": at(9_000)
        },
        9_000
      ],
      ["remaining 0 but no reset", { "anthropic-ratelimit-requests-remaining": "0" }, undefined]
    ]
    for (const [name, headers, millis] of rows) {
      it(`${name} -> ${millis === undefined ? "undefined" : `${millis} ms`}`, () => {
        assert.strictEqual(millisOf(AnthropicRateLimit.resetOf(lookup(headers), NOW)), millis)
      })
    }

    it("is measured from the now it is given", () => {
      const headers = lookup({ "anthropic-ratelimit-requests-reset": "2026-11-30T23:59:30Z" })
      assert.strictEqual(millisOf(AnthropicRateLimit.resetOf(headers, NOW)), 30_000)
      assert.strictEqual(millisOf(AnthropicRateLimit.resetOf(headers, NOW + 29_999)), 1)
      assert.isUndefined(AnthropicRateLimit.resetOf(headers, NOW + 30_001))
    })

    it.prop(
      "never throws on any header values, and never gives a negative duration",
      [FastCheck.dictionary(FastCheck.constantFrom(...headerNames), FastCheck.string())],
      ([headers]) => {
        const millis = millisOf(AnthropicRateLimit.resetOf(lookup(headers), NOW))
        return millis === undefined || millis >= 0
      }
    )
  })

  describe("spentOf", () => {
    type Spent = { readonly limit: "requests" | "tokens"; readonly millis: number } | undefined
    const rows: ReadonlyArray<readonly [string, Readonly<Record<string, string>>, Spent]> = [
      ["no headers", {}, undefined],
      [
        "requests spent: the time to its reset",
        { "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2026-11-30T23:59:30Z" },
        { limit: "requests", millis: 30_000 }
      ],
      [
        "tokens spent, reset with a fraction and an offset",
        {
          "anthropic-ratelimit-tokens-remaining": "0",
          "anthropic-ratelimit-tokens-reset": "2026-12-01T00:59:01.25+01:00"
        },
        { limit: "tokens", millis: 1_250 }
      ],
      [
        "input tokens spent: reported as tokens",
        { "anthropic-ratelimit-input-tokens-remaining": "0", "anthropic-ratelimit-input-tokens-reset": at(3_000) },
        { limit: "tokens", millis: 3_000 }
      ],
      [
        "output tokens spent: reported as tokens",
        { "anthropic-ratelimit-output-tokens-remaining": "0", "anthropic-ratelimit-output-tokens-reset": at(4_000) },
        { limit: "tokens", millis: 4_000 }
      ],
      [
        "requests spent, tokens left: the requests limit, though the tokens reset is later",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(2_000),
          "anthropic-ratelimit-tokens-remaining": "12000",
          "anthropic-ratelimit-tokens-reset": at(60_000)
        },
        { limit: "requests", millis: 2_000 }
      ],
      [
        "several spent: the one that resets last (output tokens, as tokens)",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(2_000),
          "anthropic-ratelimit-input-tokens-remaining": "0",
          "anthropic-ratelimit-input-tokens-reset": at(5_000),
          "anthropic-ratelimit-output-tokens-remaining": "0",
          "anthropic-ratelimit-output-tokens-reset": at(9_000)
        },
        { limit: "tokens", millis: 9_000 }
      ],
      [
        "several spent: the one that resets last (requests)",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": at(42_500),
          "anthropic-ratelimit-tokens-remaining": "0",
          "anthropic-ratelimit-tokens-reset": at(1_000)
        },
        { limit: "requests", millis: 42_500 }
      ],
      [
        "none spent",
        {
          "anthropic-ratelimit-requests-remaining": "49",
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-tokens-remaining": "1",
          "anthropic-ratelimit-tokens-reset": at(9_000)
        },
        undefined
      ],
      [
        "-1 is unknown, not spent",
        {
          "anthropic-ratelimit-requests-remaining": "-1",
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-tokens-remaining": "-1",
          "anthropic-ratelimit-tokens-reset": at(9_000)
        },
        undefined
      ],
      [
        "another negative, a fraction, text or an empty value is not spent",
        {
          "anthropic-ratelimit-requests-remaining": "-5",
          "anthropic-ratelimit-requests-reset": at(60_000),
          "anthropic-ratelimit-tokens-remaining": "0.5",
          "anthropic-ratelimit-tokens-reset": at(9_000),
          "anthropic-ratelimit-input-tokens-remaining": "none",
          "anthropic-ratelimit-input-tokens-reset": at(9_000),
          "anthropic-ratelimit-output-tokens-remaining": "",
          "anthropic-ratelimit-output-tokens-reset": at(9_000)
        },
        undefined
      ],
      ["spent without a reset is ignored", { "anthropic-ratelimit-requests-remaining": "0" }, undefined],
      [
        "spent with a reset that is not RFC 3339 is ignored",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": new Date(NOW + 60_000).toUTCString()
        },
        undefined
      ],
      [
        "spent with a Go duration for a reset is ignored",
        { "anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "1m30.5s" },
        undefined
      ],
      [
        "spent with an impossible date is ignored",
        { "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2026-11-31T00:00:00Z" },
        undefined
      ],
      [
        "one spent with an unparsable reset, another with a parsable one: the other",
        {
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": "soon",
          "anthropic-ratelimit-output-tokens-remaining": "0",
          "anthropic-ratelimit-output-tokens-reset": at(700)
        },
        { limit: "tokens", millis: 700 }
      ],
      [
        "spent with a reset in the past: zero",
        { "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": at(-1_000) },
        { limit: "requests", millis: 0 }
      ],
      [
        "0 with surrounding whitespace is spent",
        { "anthropic-ratelimit-tokens-remaining": " 0 ", "anthropic-ratelimit-tokens-reset": at(1_000) },
        { limit: "tokens", millis: 1_000 }
      ]
    ]
    for (const [name, headers, expected] of rows) {
      it(`${name} -> ${expected === undefined ? "undefined" : `${expected.limit} for ${expected.millis} ms`}`, () => {
        const spent = AnthropicRateLimit.spentOf(lookup(headers), NOW)
        assert.deepStrictEqual(
          spent === undefined ? undefined : { limit: spent.limit, millis: millisOf(spent.resetsIn) },
          expected
        )
      })
    }

    it("is measured from the now it is given, and is never negative", () => {
      const headers = lookup({
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-11-30T23:59:30Z"
      })
      assert.strictEqual(millisOf(AnthropicRateLimit.spentOf(headers, NOW)?.resetsIn), 30_000)
      assert.strictEqual(millisOf(AnthropicRateLimit.spentOf(headers, NOW + 29_999)?.resetsIn), 1)
      assert.strictEqual(millisOf(AnthropicRateLimit.spentOf(headers, NOW + 30_001)?.resetsIn), 0)
    })

    it("reads no reset when nothing is spent", () => {
      const read: Array<string> = []
      const spent = AnthropicRateLimit.spentOf((name) => {
        read.push(name)
        return name.endsWith("-remaining") ? "7" : at(1_000)
      }, NOW)
      assert.isUndefined(spent)
      assert.isTrue(read.every((name) => name.endsWith("-remaining")))
    })

    it.prop(
      "never throws on any header values, and never gives a negative duration",
      [
        FastCheck.dictionary(
          FastCheck.constantFrom(...headerNames),
          FastCheck.oneof(FastCheck.string(), FastCheck.constantFrom("0", "-1", at(1_000), at(-1_000)))
        )
      ],
      ([headers]) => {
        const millis = millisOf(AnthropicRateLimit.spentOf(lookup(headers), NOW)?.resetsIn)
        return millis === undefined || millis >= 0
      }
    )
  })
})
