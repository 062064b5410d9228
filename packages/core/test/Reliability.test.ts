import { assert, describe, it } from "@effect/vitest"
import { Reliability, Router } from "@ironlabsai/core"
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
    "any finite non-negative weights with one positive are accepted, as shares of 1 in their ratios",
    [
      FastCheck.array(FastCheck.double({ min: 0, max: Number.MAX_VALUE, noNaN: true }), { minLength: 1, maxLength: 10 })
    ],
    ([weights]) => {
      const input = { weights: Object.fromEntries(weights.map((w, i) => [`openai/m${i}`, w])) }
      const result = decode(input)
      if (weights.every((w) => w === 0)) return Either.isLeft(result)
      if (Either.isLeft(result)) return false
      const shares = result.right.models.map((m) => m.weight)
      const largest = Math.max(...weights)
      const total = weights.reduce((sum, w) => sum + w / largest, 0)
      return (
        Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9 &&
        shares.every((share, i) => (weights[i] === 0 ? share === 0 : share > 0)) &&
        shares.every((share, i) => Math.abs(share - weights[i]! / largest / total) <= 1e-12 + Number.MIN_VALUE)
      )
    }
  )
})

describe("Reliability: health and retry_budget", () => {
  const weights = { "openai/a": 1 }
  /** A policy with its durations in millis, for exact comparison. */
  const policyMillis = (policy: Reliability.Plan["health"]) =>
    policy === undefined
      ? undefined
      : {
          ...policy,
          window: Duration.toMillis(policy.window),
          openFor: Duration.toMillis(policy.openFor),
          maxOpenFor: Duration.toMillis(policy.maxOpenFor),
          rateLimitHold: Duration.toMillis(policy.rateLimitHold),
          longHold: Duration.toMillis(policy.longHold),
          maxWait: Duration.toMillis(policy.maxWait)
        }
  const budgetMillis = (budget: Reliability.Plan["retryBudget"]) =>
    budget === undefined ? undefined : { ...budget, window: Duration.toMillis(budget.window) }
  const defaultPolicy = {
    consecutiveFailures: 3,
    failureRate: 0.5,
    window: 30_000,
    minCalls: 10,
    openFor: 10_000,
    maxOpenFor: 300_000,
    rateLimitHold: 1_000,
    longHold: 300_000,
    onAllUnavailable: "wait",
    maxWait: 5_000
  }
  const defaultBudget = { ratio: 0.2, window: 10_000, minPerSecond: 1 }

  it("both are on by default, with the documented defaults (the seed's configs get them)", () => {
    for (const input of [{ weights }, { failover_chain: [{ model: "openai/a" }] }]) {
      const plan = Either.getOrThrow(decode(input))
      assert.deepStrictEqual(policyMillis(plan.health), defaultPolicy)
      assert.deepStrictEqual(budgetMillis(plan.retryBudget), defaultBudget)
    }
  })

  it("true keeps the defaults", () => {
    const plan = Either.getOrThrow(decode({ weights, health: true, retry_budget: true }))
    assert.deepStrictEqual(policyMillis(plan.health), defaultPolicy)
    assert.deepStrictEqual(budgetMillis(plan.retryBudget), defaultBudget)
  })

  it("false turns each off, independently", () => {
    const noHealth = Either.getOrThrow(decode({ weights, health: false }))
    assert.isUndefined(noHealth.health)
    assert.deepStrictEqual(budgetMillis(noHealth.retryBudget), defaultBudget)
    const noBudget = Either.getOrThrow(decode({ weights, retry_budget: false }))
    assert.deepStrictEqual(policyMillis(noBudget.health), defaultPolicy)
    assert.isUndefined(noBudget.retryBudget)
  })

  it("every key is read, and seconds become durations", () => {
    const plan = Either.getOrThrow(
      decode({
        failover_chain: [{ model: "openai/a" }],
        health: {
          consecutive_failures: 5,
          failure_rate: 0.25,
          window: 60,
          min_calls: 20,
          open_for: 2.5,
          max_open_for: 120,
          rate_limit_hold: 0.5,
          long_hold: 600,
          on_all_unavailable: "probe",
          max_wait: 0
        },
        retry_budget: { ratio: 0, window: 5, min_per_second: 0 }
      })
    )
    assert.deepStrictEqual(policyMillis(plan.health), {
      consecutiveFailures: 5,
      failureRate: 0.25,
      window: 60_000,
      minCalls: 20,
      openFor: 2_500,
      maxOpenFor: 120_000,
      rateLimitHold: 500,
      longHold: 600_000,
      onAllUnavailable: "probe",
      maxWait: 0
    })
    assert.deepStrictEqual(budgetMillis(plan.retryBudget), { ratio: 0, window: 5_000, minPerSecond: 0 })
  })

  it("a partial health config keeps the defaults of the keys it leaves out", () => {
    const plan = Either.getOrThrow(decode({ weights, health: { on_all_unavailable: "fail", max_wait: 2 } }))
    assert.deepStrictEqual(policyMillis(plan.health), { ...defaultPolicy, onAllUnavailable: "fail", maxWait: 2_000 })
  })

  const rejected: ReadonlyArray<readonly [string, unknown, string, string]> = [
    ["consecutive_failures of 0", { consecutive_failures: 0 }, "health.consecutive_failures", "integer >= 1"],
    ["fractional consecutive_failures", { consecutive_failures: 1.5 }, "health.consecutive_failures", "integer >= 1"],
    ["a failure_rate of 0", { failure_rate: 0 }, "health.failure_rate", "> 0 and <= 1"],
    ["a failure_rate above 1", { failure_rate: 1.5 }, "health.failure_rate", "> 0 and <= 1"],
    ["a zero window", { window: 0 }, "health.window", "> 0"],
    ["min_calls of 0", { min_calls: 0 }, "health.min_calls", "integer >= 1"],
    ["a negative open_for", { open_for: -1 }, "health.open_for", "> 0"],
    [
      "a max_open_for less than open_for",
      { open_for: 20, max_open_for: 10 },
      "health.max_open_for",
      "max_open_for (10 s) must be >= open_for (20 s)"
    ],
    [
      "a long_hold less than rate_limit_hold",
      { rate_limit_hold: 10, long_hold: 5 },
      "health.long_hold",
      "long_hold (5 s) must be >= rate_limit_hold (10 s)"
    ],
    ["a zero rate_limit_hold", { rate_limit_hold: 0 }, "health.rate_limit_hold", "> 0"],
    ["an infinite long_hold", { long_hold: Number.POSITIVE_INFINITY }, "health.long_hold", "> 0"],
    [
      "an unknown on_all_unavailable",
      { on_all_unavailable: "sometimes" },
      "health.on_all_unavailable",
      'on_all_unavailable is "wait", "fail" or "probe"'
    ],
    ["a negative max_wait", { max_wait: -1 }, "health.max_wait", ">= 0"],
    ["a string in place of seconds", { open_for: "10" }, "health.open_for", "number"],
    ["an unknown key (a typo)", { foo: 1 }, "health.foo", "unexpected"]
  ]
  for (const [name, health, path, fragment] of rejected) {
    it(`health: ${name}`, () => assertIssue({ weights, health }, path, fragment))
  }

  it("health: neither a boolean nor an object, reported once", () =>
    assert.deepStrictEqual(issues({ weights, health: "yes" }), ["health: is true, false or an object of settings"]))

  const rejectedBudget: ReadonlyArray<readonly [string, unknown, string, string]> = [
    ["a ratio above 1", { ratio: 1.5 }, "retry_budget.ratio", ">= 0 and <= 1"],
    ["a negative ratio", { ratio: -0.1 }, "retry_budget.ratio", ">= 0 and <= 1"],
    ["a zero window", { window: 0 }, "retry_budget.window", "> 0"],
    ["a negative min_per_second", { min_per_second: -1 }, "retry_budget.min_per_second", ">= 0"],
    ["an unknown key (a typo)", { bar: 1 }, "retry_budget.bar", "unexpected"]
  ]
  for (const [name, retryBudget, path, fragment] of rejectedBudget) {
    it(`retry_budget: ${name}`, () => assertIssue({ weights, retry_budget: retryBudget }, path, fragment))
  }

  it("lists every problem of health and retry_budget at once, beside the others", () => {
    const found = issues({
      weights: { "openai/a": -1 },
      health: { consecutive_failures: 0, window: -1 },
      retry_budget: { ratio: 2 }
    })
    const paths = found.map((line) => line.slice(0, line.indexOf(": ")))
    for (const path of ['weights["openai/a"]', "health.consecutive_failures", "health.window", "retry_budget.ratio"]) {
      assert.include(paths, path)
    }
  })

  it("a max_open_for less than the default open_for (10 s) is rejected too", () =>
    assertIssue({ weights, health: { max_open_for: 5 } }, "health.max_open_for", "must be >= open_for (10 s)"))

  it("an open_for above the default max_open_for (300 s) is rejected, at the key given", () =>
    assertIssue({ weights, health: { open_for: 400 } }, "health.open_for", "max_open_for (300 s) must be >= open_for"))

  it("a rate_limit_hold above the default long_hold (300 s) is rejected, at the key given", () =>
    assertIssue(
      { weights, health: { rate_limit_hold: 400 } },
      "health.rate_limit_hold",
      "long_hold (300 s) must be >= rate_limit_hold (400 s)"
    ))

  it("a bad health value is reported once, at its own path (no line about the boolean form)", () => {
    assert.deepStrictEqual(issues({ weights, health: { consecutive_failures: 0 } }), [
      "health.consecutive_failures: consecutive_failures is an integer >= 1"
    ])
    assert.deepStrictEqual(issues({ weights, retry_budget: { min_per_second: -1 } }), [
      "retry_budget.min_per_second: min_per_second is a number >= 0"
    ])
  })
})

describe("weights mean their ratios at any magnitude", () => {
  const shares = (weights: Record<string, number>) =>
    Either.getOrThrow(decode({ weights })).models.map((m) => [m.model.id, m.weight])
  /** How often each model is drawn by `draws` evenly spaced random numbers: the exact ratio, without sampling noise. */
  const drawn = (weights: Record<string, number>, draws: number) => {
    const models = Either.getOrThrow(decode({ weights })).models
    const counts = new Map<string, number>()
    for (let i = 0; i < draws; i++) {
      const id = Router.pickWeighted(models, (i + 0.5) / draws)!.model.id
      counts.set(id, (counts.get(id) ?? 0) + 1)
    }
    return Object.fromEntries(counts)
  }

  it("three weights of 1e308 (whose sum overflows) split evenly", () => {
    assert.deepStrictEqual(drawn({ "openai/a": 1e308, "openai/b": 1e308, "openai/c": 1e308 }, 3000), {
      "openai/a": 1000,
      "openai/b": 1000,
      "openai/c": 1000
    })
  })

  it("Number.MAX_VALUE twice splits evenly", () => {
    assert.deepStrictEqual(drawn({ "openai/a": Number.MAX_VALUE, "openai/b": Number.MAX_VALUE }, 1000), {
      "openai/a": 500,
      "openai/b": 500
    })
  })

  it("tiny weights keep their ratio", () => {
    assert.deepStrictEqual(drawn({ "openai/a": 1e-300, "openai/b": 3e-300 }, 4000), {
      "openai/a": 1000,
      "openai/b": 3000
    })
  })

  it("shares sum to 1 and keep the seed's ratio", () => {
    const [[, gpt], [, haiku]] = shares({ "openai/gpt-4o": 0.7, "anthropic/claude-3-5-haiku-20241022": 0.3 }) as [
      [string, number],
      [string, number]
    ]
    assert.closeTo(gpt, 0.7, 1e-12)
    assert.closeTo(haiku, 0.3, 1e-12)
    assert.closeTo(gpt + haiku, 1, 1e-12)
  })

  it("a positive weight too small for its share is still drawn when it is all that is left (failover)", () => {
    const models = Either.getOrThrow(decode({ weights: { "openai/a": 1, "openai/b": Number.MIN_VALUE } })).models
    const tiny = models.find((m) => m.model.id === "openai/b")!
    assert.isAbove(tiny.weight, 0)
    assert.strictEqual(Router.pickWeighted([tiny], 0.999)?.model.id, "openai/b")
    assert.strictEqual(drawn({ "openai/a": 1, "openai/b": Number.MIN_VALUE }, 1000)["openai/a"], 1000)
  })

  it("a zero weight stays zero: never drawn", () => {
    assert.deepStrictEqual(shares({ "openai/a": 2, "openai/b": 0 }), [
      ["openai/a", 1],
      ["openai/b", 0]
    ])
  })
})

describe("Reliability.warnings: valid, but almost certainly a mistake", () => {
  const warningsOf = (input: unknown) => Reliability.warnings(Either.getOrThrow(decode(input)))

  it("a timeout of an hour or more (milliseconds typed into seconds), at its path", () => {
    assert.deepStrictEqual(warningsOf({ weights: { "openai/a": 1 }, timeout: { "openai/a": 5000 } }), [
      {
        path: 'timeout["openai/a"]',
        message: "is 5000 s (83 minutes): timeouts are in seconds; did you mean 5?"
      }
    ])
    assert.deepStrictEqual(
      warningsOf({ failover_chain: [{ model: "openai/a" }, { model: "openai/b", timeout: 3600 }] }).map((w) => w.path),
      ["failover_chain[1].timeout"]
    )
  })

  it("a backoff over the 60 s retry-after cap, which never retries; none with max_retries 0", () => {
    assert.deepStrictEqual(warningsOf({ failover_chain: [{ model: "openai/a", backoff: 90 }] }), [
      {
        path: "failover_chain[0].backoff",
        message: "is 90 s: a retry wait over 60 s fails over at once, so this model is never retried"
      }
    ])
    assert.deepStrictEqual(warningsOf({ failover_chain: [{ model: "openai/a", backoff: 90, max_retries: 0 }] }), [])
  })

  it("the seed's configs have none", () => {
    assert.deepStrictEqual(
      warningsOf({
        weights: { "openai/gpt-4o": 0.7, "anthropic/claude-3-5-haiku-20241022": 0.3 },
        max_retries: { "openai/gpt-4o": 2, "anthropic/claude-3-5-haiku-20241022": 1 },
        timeout: { "openai/gpt-4o": 5.0, "anthropic/claude-3-5-haiku-20241022": 5.0 },
        backoff: { "openai/gpt-4o": 2.0, "anthropic/claude-3-5-haiku-20241022": 1.0 }
      }),
      []
    )
  })
})
