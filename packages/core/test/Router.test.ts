import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, type Reliability, Router } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Duration, Effect, Either, Exit, Fiber, FastCheck, Random, TestClock } from "effect"

const { delay, fail, hang, succeed } = ScriptedProvider
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const MINI = "openai/gpt-4o-mini"
const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }] } as const

/** A client over scripted providers, with a seeded `Random`. */
const setup = (
  reliability: Reliability.Input,
  script: Parameters<typeof ScriptedProvider.make>[0],
  options: Omit<IronlabsClient.Options, "reliability"> = {}
) => {
  const scripted = ScriptedProvider.make(script)
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability, ...options }, scripted.registry))
  return { scripted, client }
}

/** Runs a request in a fiber and drives the `TestClock` until it settles. */
const runToEnd = <A, E>(effect: Effect.Effect<A, E>, advance: Duration.DurationInput = "1 hour") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(advance)
    return yield* Fiber.join(fiber).pipe(Effect.either)
  })

const seeded = <A, E, R>(effect: Effect.Effect<A, E, R>, seed: number = 42) =>
  Effect.withRandom(effect, Random.make(seed))

/** Gaps between consecutive calls, in millis. */
const gaps = (calls: ReadonlyArray<ScriptedProvider.Call>) =>
  calls.slice(1).map((call, i) => call.startedAt - calls[i]!.startedAt)

describe("Router: failover chain", () => {
  it.effect("tries the chain in order and answers with the full routed id", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT }, { model: HAIKU }, { model: MINI }] },
        { [GPT]: [fail("Authentication", { status: 401 })], [HAIKU]: [fail("NotFound", { status: 404 })] }
      )
      const result = yield* runToEnd(client.completions.create(ask))
      assert.isTrue(Either.isRight(result))
      const response = Either.getOrThrow(result)
      assert.strictEqual(response.model, MINI)
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU, MINI])
      assert.deepStrictEqual(
        response.attempts.map((a) => [a.model, a.outcome, a.error?.reason]),
        [
          [GPT, "failure", "Authentication"],
          [HAIKU, "failure", "NotFound"],
          [MINI, "success", undefined]
        ]
      )
    })
  )

  it.effect("retries a transient reason max_retries times, then fails over", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 2, backoff: 1 }, { model: HAIKU }] },
        { [GPT]: [fail("ServerError"), fail("Overloaded"), fail("RateLimited")] }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      assert.strictEqual(scripted.count(GPT), 3)
      assert.strictEqual(scripted.count(HAIKU), 1)
      assert.strictEqual(response.model, HAIKU)
    })
  )

  for (const reason of ["ServerError", "Overloaded", "RateLimited", "Timeout", "Transport"] as const) {
    it.effect(`retries ${reason} on the same model`, () =>
      Effect.gen(function* () {
        const { scripted, client } = setup(
          { failover_chain: [{ model: GPT, backoff: 0 }, { model: HAIKU }] },
          {
            [GPT]: [fail(reason)]
          }
        )
        const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
        assert.deepStrictEqual(scripted.order(), [GPT, GPT])
        assert.strictEqual(response.model, GPT)
      })
    )
  }

  for (const reason of [
    "QuotaExceeded",
    "Authentication",
    "PermissionDenied",
    "NotFound",
    "InvalidRequest",
    "MalformedResponse",
    "ResponseTooLarge"
  ] as const) {
    it.effect(`fails over at once on ${reason}, without a retry`, () =>
      Effect.gen(function* () {
        const { scripted, client } = setup(
          { failover_chain: [{ model: GPT, max_retries: 5 }, { model: HAIKU }] },
          {
            [GPT]: [fail(reason)]
          }
        )
        const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
        assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
        assert.strictEqual(response.model, HAIKU)
        assert.strictEqual(scripted.calls[1]!.startedAt, 0)
      })
    )
  }

  it.effect("AllModelsFailed carries every attempt with its error, in order", () =>
    Effect.gen(function* () {
      const { client } = setup(
        {
          failover_chain: [
            { model: GPT, max_retries: 1, backoff: 0 },
            { model: HAIKU, max_retries: 0 }
          ]
        },
        {
          [GPT]: [fail("ServerError", { status: 500 }), fail("ServerError", { status: 502 })],
          [HAIKU]: [fail("Overloaded")]
        }
      )
      const error = Either.getLeft(yield* runToEnd(client.completions.create(ask)))
      assert.isTrue(error._tag === "Some" && error.value._tag === "AllModelsFailed")
      const failed = error._tag === "Some" && error.value._tag === "AllModelsFailed" ? error.value : undefined
      assert.deepStrictEqual(
        failed?.attempts.map((a) => [a.model, a.outcome, a.error?.reason, a.error?.status]),
        [
          [GPT, "failure", "ServerError", 500],
          [GPT, "failure", "ServerError", 502],
          [HAIKU, "failure", "Overloaded", undefined]
        ]
      )
      assert.include(failed?.message ?? "", "openai/gpt-4o: ServerError x2")
    })
  )
})

describe("Router: backoff", () => {
  it.effect("delay before retry k is backoff * 2^(k-1) * [0.8, 1.2], drawn from Random", () =>
    Effect.gen(function* () {
      const seen = new Set<number>()
      for (let seed = 1; seed <= 40; seed++) {
        const { scripted, client } = setup(
          { failover_chain: [{ model: GPT, max_retries: 3, backoff: 1 }] },
          {
            [GPT]: [fail("ServerError"), fail("ServerError"), fail("ServerError")]
          }
        )
        yield* seeded(runToEnd(client.completions.create(ask)), seed)
        const [d1, d2, d3] = gaps(scripted.calls)
        assert.isTrue(d1! >= 800 && d1! <= 1200, `retry 1 after ${d1} ms`)
        assert.isTrue(d2! >= 1600 && d2! <= 2400, `retry 2 after ${d2} ms`)
        assert.isTrue(d3! >= 3200 && d3! <= 4800, `retry 3 after ${d3} ms`)
        seen.add(d1!)
      }
      // The jitter is real: 40 seeds do not all give the same delay.
      assert.isAbove(seen.size, 20)
    })
  )

  it.effect("a provider's retry-after raises the delay", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, backoff: 0.1 }] },
        {
          [GPT]: [fail("RateLimited", { status: 429, retryAfter: "7 seconds" })]
        }
      )
      yield* runToEnd(client.completions.create(ask))
      assert.deepStrictEqual(gaps(scripted.calls), [7000])
    })
  )

  it.effect("a retry-after shorter than the backoff does not lower it", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, backoff: 10 }] },
        {
          [GPT]: [fail("RateLimited", { retryAfter: "1 second" })]
        }
      )
      yield* runToEnd(client.completions.create(ask))
      const [gap] = gaps(scripted.calls)
      assert.isTrue(gap! >= 8000 && gap! <= 12000, `gap ${gap}`)
    })
  )

  it.effect("a retry-after beyond the cap fails over at once", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 2 }, { model: HAIKU }] },
        {
          [GPT]: [fail("RateLimited", { retryAfter: "61 seconds" })]
        }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
      assert.deepStrictEqual(gaps(scripted.calls), [0])
      assert.strictEqual(response.model, HAIKU)
    })
  )

  it.effect("the cap is configurable", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT }, { model: HAIKU }] },
        { [GPT]: [fail("RateLimited", { retryAfter: "3 seconds" })] },
        { retryAfterCap: "2 seconds" }
      )
      yield* runToEnd(client.completions.create(ask))
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
    })
  )
})

describe("Router: timeouts and deadlines", () => {
  it.effect("each attempt has its own timeout; a timed-out call is interrupted and retried", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 2, max_retries: 1, backoff: 0 }] },
        {
          [GPT]: [hang]
        }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.startedAt, c.status]),
        [
          [0, "interrupted"],
          [2000, "success"]
        ]
      )
      assert.strictEqual(response.attempts[0]!.error?.reason, "Timeout")
      assert.strictEqual(Duration.toMillis(response.attempts[0]!.duration), 2000)
    })
  )

  it.effect("a slow answer within the timeout is not a failure", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 2 }] },
        {
          [GPT]: [delay("1999 millis", succeed("late but fine"))]
        }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      assert.strictEqual(response.choices[0]!.message.content, "late but fine")
      assert.strictEqual(scripted.count(GPT), 1)
    })
  )

  it.effect("the overall deadline bounds every attempt and backoff, with the attempts so far", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        {
          failover_chain: [
            { model: GPT, timeout: 3, max_retries: 0 },
            { model: HAIKU, timeout: 30 }
          ]
        },
        { [GPT]: [hang], [HAIKU]: [hang] }
      )
      const result = yield* runToEnd(client.completions.create(ask, { timeout: "5 seconds" }))
      const error = Either.getLeft(result)
      assert.isTrue(error._tag === "Some" && error.value._tag === "DeadlineExceeded")
      if (error._tag === "Some" && error.value._tag === "DeadlineExceeded") {
        assert.deepStrictEqual(
          error.value.attempts.map((a) => [a.model, a.error?.reason]),
          [[GPT, "Timeout"]]
        )
      }
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt, c.status]),
        [
          [GPT, 0, "interrupted"],
          [HAIKU, 3000, "interrupted"]
        ]
      )
    })
  )

  it.effect("a default deadline from the client options applies to every request", () =>
    Effect.gen(function* () {
      const { client } = setup({ failover_chain: [{ model: GPT }] }, { [GPT]: [hang] }, { timeout: "1 second" })
      const result = yield* runToEnd(client.completions.create(ask))
      assert.strictEqual(
        Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value._tag : "")),
        "DeadlineExceeded"
      )
    })
  )

  it.effect("a backoff that would end after the deadline fails over at once", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, backoff: 4 }, { model: HAIKU }] },
        {
          [GPT]: [fail("ServerError")]
        }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask, { timeout: "3 seconds" })))
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
      assert.deepStrictEqual(gaps(scripted.calls), [0])
      assert.strictEqual(response.model, HAIKU)
    })
  )

  it.effect("interruption stops the attempt in flight: no retry, no failover", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 10, max_retries: 3 }, { model: HAIKU }] },
        { [GPT]: [hang] }
      )
      const fiber = yield* Effect.fork(client.completions.create(ask))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 hour")
      assert.isTrue(Exit.isInterrupted(exit))
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.status]),
        [[GPT, "interrupted"]]
      )
    })
  )

  it.effect("interruption during a backoff wait stops before the retry", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, backoff: 10 }, { model: HAIKU }] },
        {
          [GPT]: [fail("ServerError")]
        }
      )
      const fiber = yield* Effect.fork(client.completions.create(ask))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(scripted.order(), [GPT])
    })
  )
})

describe("Router: extra messages", () => {
  it.effect("a model's extra messages are appended to its own calls only", () =>
    Effect.gen(function* () {
      const extra = { role: "user", content: "Please provide a concise response." } as const
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0, messages: [extra] }, { model: HAIKU }] },
        { [GPT]: [fail("ServerError")] }
      )
      yield* runToEnd(client.completions.create(ask))
      assert.deepStrictEqual(scripted.calls[0]!.request.messages, [...ask.messages, extra])
      assert.deepStrictEqual(scripted.calls[1]!.request.messages, ask.messages)
    })
  )

  it.effect("model_messages of the weighted shape go to their model", () =>
    Effect.gen(function* () {
      const extra = { role: "system", content: "Be brief." } as const
      const { scripted, client } = setup({ weights: { [GPT]: 1, [HAIKU]: 0 }, model_messages: { [GPT]: [extra] } }, {})
      yield* runToEnd(client.completions.create(ask))
      assert.deepStrictEqual(scripted.calls[0]!.request.messages, [...ask.messages, extra])
    })
  )
})

describe("Router: weighted", () => {
  it.effect("first picks follow the weights (70/30 over 4000 requests, within 5 standard deviations)", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ weights: { [GPT]: 0.7, [HAIKU]: 0.3 } }, {})
      for (let i = 0; i < 4000; i++) yield* client.completions.create(ask)
      const share = scripted.count(GPT) / 4000
      const sd = Math.sqrt((0.7 * 0.3) / 4000)
      assert.isTrue(Math.abs(share - 0.7) < 5 * sd, `share ${share}`)
      assert.strictEqual(scripted.count(GPT) + scripted.count(HAIKU), 4000)
    }).pipe(seeded)
  )

  it.effect("a model of weight 0 is never chosen, not even on failover", () =>
    Effect.gen(function* () {
      // Without model memory, so that the failing models keep being called and the draw is seen 400 times.
      const { scripted, client } = setup(
        { weights: { [GPT]: 1, [MINI]: 1, [HAIKU]: 0 }, max_retries: { [GPT]: 0, [MINI]: 0 }, health: false },
        { [GPT]: Array(500).fill(fail("ServerError")), [MINI]: Array(500).fill(fail("ServerError")) }
      )
      for (let i = 0; i < 200; i++) {
        const result = yield* Effect.either(client.completions.create(ask))
        assert.isTrue(Either.isLeft(result))
      }
      assert.strictEqual(scripted.count(HAIKU), 0)
      assert.strictEqual(scripted.count(GPT), 200)
      assert.strictEqual(scripted.count(MINI), 200)
    }).pipe(seeded)
  )

  it.effect("failover draws without replacement: every model once, then AllModelsFailed", () =>
    Effect.gen(function* () {
      const models = ["openai/a", "openai/b", "openai/c", "anthropic/d", "anthropic/e"]
      const firsts = new Set<string>()
      for (let seed = 0; seed < 30; seed++) {
        const { scripted, client } = setup(
          {
            weights: Object.fromEntries(models.map((m, i) => [m, i + 1])),
            max_retries: Object.fromEntries(models.map((m) => [m, 0]))
          },
          Object.fromEntries(models.map((m) => [m, [fail("Overloaded")]]))
        )
        const result = yield* seeded(Effect.either(client.completions.create(ask)), seed)
        assert.isTrue(Either.isLeft(result) && result.left._tag === "AllModelsFailed")
        assert.deepStrictEqual([...scripted.order()].sort(), [...models].sort())
        firsts.add(scripted.order()[0]!)
      }
      assert.isAbove(firsts.size, 1)
    })
  )

  it.effect("the same seed gives the same route", () =>
    Effect.gen(function* () {
      const route = (seed: number) =>
        Effect.gen(function* () {
          const { scripted, client } = setup({ weights: { [GPT]: 1, [HAIKU]: 1, [MINI]: 1 } }, {})
          for (let i = 0; i < 20; i++) yield* seeded(client.completions.create(ask), seed + i)
          return scripted.order()
        })
      assert.deepStrictEqual(yield* route(7), yield* route(7))
    })
  )

  it.prop(
    "pickWeighted maps [0, 1) onto the models in proportion to their weights",
    [
      FastCheck.array(FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 1, max: 100 })), {
        minLength: 1,
        maxLength: 8
      })
    ],
    ([weights]) => {
      const models = weights.map((weight, i) => ({ i, weight }))
      const total = weights.reduce((a, b) => a + b, 0)
      const steps = 10_000
      const counts = weights.map(() => 0)
      for (let k = 0; k < steps; k++) {
        const picked = Router.pickWeighted(models, k / steps)
        if (total === 0) return picked === undefined
        counts[picked!.i]!++
      }
      // `w * steps / total`, not `(w / total) * steps`: the latter is 2849.9999999999995 for 57 of 200, and a
      // count of 2851 would look 1.0000000000005 off.
      return weights.every(
        (w, i) => Math.abs(counts[i]! - (w * steps) / total) <= 1 + 1e-9 && (w > 0 || counts[i] === 0)
      )
    }
  )
})
