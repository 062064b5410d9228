import { assert, describe, it } from "@effect/vitest"
import { Reliability } from "@ironlabsai/core"
import { Duration, Either, FastCheck } from "effect"

const providers = ["openai", "anthropic"]
const decode = (input: unknown) => Reliability.decode(input, { providers })

/** The issues of a rejected config, as `path: message` lines. */
const issues = (input: unknown): ReadonlyArray<string> => {
  const result = decode(input)
  assert.isTrue(Either.isLeft(result), "expected the config to be rejected")
  return Either.isLeft(result) ? result.left.issues.map((i) => `${i.path}: ${i.message}`) : []
}

const assertIssue = (input: unknown, path: string, fragment: string) => {
  const found = issues(input)
  assert.isTrue(
    found.some((line) => line.startsWith(`${path}: `) && line.includes(fragment)),
    `no issue at ${path} mentioning "${fragment}" in:\n${found.join("\n")}`
  )
}

describe("Reliability: the seed's configs", () => {
  it("accepts the weighted seed verbatim and resolves every setting", () => {
    const plan = Either.getOrThrow(
      decode({
        weights: { "openai/gpt-4o": 0.7, "anthropic/claude-3-5-haiku-20241022": 0.3 },
        max_retries: { "openai/gpt-4o": 2, "anthropic/claude-3-5-haiku-20241022": 1 },
        timeout: { "openai/gpt-4o": 5.0, "anthropic/claude-3-5-haiku-20241022": 5.0 },
        backoff: { "openai/gpt-4o": 2.0, "anthropic/claude-3-5-haiku-20241022": 1.0 },
        model_messages: { "openai/gpt-4o": [{ role: "user", content: "Please provide a concise response." }] }
      })
    )
    assert.strictEqual(plan._tag, "Weighted")
    const [gpt, haiku] = plan.models
    assert.deepStrictEqual(gpt!.model, { id: "openai/gpt-4o", provider: "openai", name: "gpt-4o" })
    assert.strictEqual(gpt!.weight, 0.7)
    assert.strictEqual(gpt!.maxRetries, 2)
    assert.strictEqual(Duration.toMillis(gpt!.timeout), 5000)
    assert.strictEqual(Duration.toMillis(gpt!.backoff), 2000)
    assert.deepStrictEqual(gpt!.messages, [{ role: "user", content: "Please provide a concise response." }])
    assert.strictEqual(haiku!.model.name, "claude-3-5-haiku-20241022")
    assert.strictEqual(haiku!.maxRetries, 1)
    assert.strictEqual(Duration.toMillis(haiku!.backoff), 1000)
    assert.deepStrictEqual(haiku!.messages, [])
  })

  it("accepts the failover seed verbatim", () => {
    const plan = Either.getOrThrow(
      decode({
        failover_chain: [
          {
            model: "openai/gpt-4o",
            max_retries: 2,
            timeout: 5.0,
            backoff: 2.0,
            messages: [{ role: "user", content: "Please provide a concise response." }]
          },
          { model: "anthropic/claude-3-5-haiku-20241022", max_retries: 1, timeout: 5.0, backoff: 1.0 }
        ]
      })
    )
    assert.strictEqual(plan._tag, "Ordered")
    assert.deepStrictEqual(
      plan.models.map((m) => [m.model.id, m.maxRetries, Duration.toMillis(m.timeout), Duration.toMillis(m.backoff)]),
      [
        ["openai/gpt-4o", 2, 5000, 2000],
        ["anthropic/claude-3-5-haiku-20241022", 1, 5000, 1000]
      ]
    )
  })

  it("fills in the documented defaults: 2 retries, 0.5 s backoff, 600 s timeout", () => {
    const plan = Either.getOrThrow(decode({ weights: { "openai/gpt-4o": 1 } }))
    const [model] = plan.models
    assert.strictEqual(model!.maxRetries, 2)
    assert.strictEqual(Duration.toMillis(model!.backoff), 500)
    assert.strictEqual(Duration.toMillis(model!.timeout), 600_000)
    assert.strictEqual(Reliability.defaults.maxRetries, 2)
  })
})

describe("Reliability: rejections name their path", () => {
  it("both shapes", () =>
    assertIssue({ weights: { "openai/a": 1 }, failover_chain: [{ model: "openai/b" }] }, "", "not both"))
  it("neither shape", () => assertIssue({}, "", "give weights"))
  it("not an object", () => assert.isNotEmpty(issues("weights")))
  it("an unknown top-level key (a typo)", () => assertIssue({ weight: { "openai/a": 1 } }, "weight", "unexpected"))
  it("an unknown provider prefix", () =>
    assertIssue(
      { weights: { "mistral/large": 1, "openai/a": 1 } },
      'weights["mistral/large"]',
      'unknown provider "mistral"'
    ))
  it("an unknown provider in the chain", () =>
    assertIssue(
      { failover_chain: [{ model: "openai/a" }, { model: "cohere/x" }] },
      "failover_chain[1].model",
      "cohere"
    ))
  it("a model id without a provider", () =>
    assertIssue({ weights: { "gpt-4o": 1 } }, 'weights["gpt-4o"]', "provider/model"))
  it("a negative weight", () =>
    assertIssue({ weights: { "openai/a": -1, "openai/b": 1 } }, 'weights["openai/a"]', ">= 0"))
  it("a weight that is not finite", () =>
    assertIssue({ weights: { "openai/a": Number.POSITIVE_INFINITY } }, 'weights["openai/a"]', "finite"))
  it("a weight that is NaN", () =>
    assertIssue({ weights: { "openai/a": Number.NaN } }, 'weights["openai/a"]', "finite"))
  it("a weight that is a string", () =>
    assertIssue({ weights: { "openai/a": "0.5" } }, 'weights["openai/a"]', "number"))
  it("all weights zero", () => assertIssue({ weights: { "openai/a": 0, "openai/b": 0 } }, "weights", "weight > 0"))
  it("no weights at all", () => assertIssue({ weights: {} }, "weights", "weight > 0"))
  for (const key of ["max_retries", "timeout", "backoff", "model_messages"]) {
    it(`a ${key} key that is not in weights`, () =>
      assertIssue(
        { weights: { "openai/a": 1 }, [key]: { "openai/b": key === "model_messages" ? [] : 1 } },
        `${key}["openai/b"]`,
        "not a model in weights"
      ))
  }
  it("per-model maps beside a failover chain", () =>
    assertIssue(
      { failover_chain: [{ model: "openai/a" }], max_retries: { "openai/a": 1 } },
      "max_retries",
      "each entry"
    ))
  it("duplicate chain models", () =>
    assertIssue(
      { failover_chain: [{ model: "openai/a" }, { model: "openai/b" }, { model: "openai/a" }] },
      "failover_chain[2].model",
      "duplicates failover_chain[0]"
    ))
  it("an empty chain", () => assertIssue({ failover_chain: [] }, "failover_chain", "at least one model"))
  it("negative retries", () =>
    assertIssue(
      { weights: { "openai/a": 1 }, max_retries: { "openai/a": -1 } },
      'max_retries["openai/a"]',
      "integer >= 0"
    ))
  it("fractional retries", () =>
    assertIssue(
      { failover_chain: [{ model: "openai/a", max_retries: 1.5 }] },
      "failover_chain[0].max_retries",
      "integer >= 0"
    ))
  it("a zero timeout", () =>
    assertIssue({ weights: { "openai/a": 1 }, timeout: { "openai/a": 0 } }, 'timeout["openai/a"]', "> 0"))
  it("a negative timeout", () =>
    assertIssue({ failover_chain: [{ model: "openai/a", timeout: -5 }] }, "failover_chain[0].timeout", "> 0"))
  it("a negative backoff", () =>
    assertIssue({ weights: { "openai/a": 1 }, backoff: { "openai/a": -0.1 } }, 'backoff["openai/a"]', ">= 0"))
  it("a message of an unknown role", () =>
    assertIssue(
      { failover_chain: [{ model: "openai/a", messages: [{ role: "robot", content: "x" }] }] },
      "failover_chain[0].messages[0].role",
      "role is one of"
    ))

  it("lists every problem at once, and the message names each path", () => {
    const result = decode({
      weights: { "openai/a": -1, "nope/b": 1 },
      timeout: { "openai/a": 0 },
      backoff: { "openai/zzz": 1 }
    })
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) {
      const paths = result.left.issues.map((i) => i.path)
      for (const path of ['weights["openai/a"]', 'weights["nope/b"]', 'timeout["openai/a"]', 'backoff["openai/zzz"]']) {
        assert.include(paths, path)
        assert.include(result.left.message, path)
      }
      assert.strictEqual(result.left._tag, "ReliabilityConfigError")
    }
  })

  it.prop(
    "any finite non-negative weights with one positive are accepted, and keep their values",
    [FastCheck.array(FastCheck.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 10 })],
    ([weights]) => {
      const input = { weights: Object.fromEntries(weights.map((w, i) => [`openai/m${i}`, w])) }
      const result = decode(input)
      if (weights.every((w) => w === 0)) return Either.isLeft(result)
      return Either.isRight(result) && result.right.models.every((m, i) => m.weight === weights[i])
    }
  )
})
