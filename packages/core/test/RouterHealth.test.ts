import { assert, describe, it } from "@effect/vitest"
import {
  type Attempt,
  ChatCompletion,
  IronlabsClient,
  ModelHealth,
  type Reliability,
  type Router,
  type RoutingError
} from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Chunk, Duration, Effect, Either, Fiber, Option, Random, Stream, TestClock } from "effect"

const { breakAfter, delay, fail, hang, succeed } = ScriptedProvider
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }] } as const

/** A client over scripted providers, with its own in-memory model health (or `health`, shared). */
const setup = (
  reliability: Reliability.Input,
  script: Parameters<typeof ScriptedProvider.make>[0],
  options: Omit<IronlabsClient.Options, "reliability"> = {},
  health?: ModelHealth.Service
) => {
  const scripted = ScriptedProvider.make(script)
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability, ...options }, scripted.registry, health))
  return { scripted, client }
}

type Client = ReturnType<typeof setup>["client"]

/**
 * Open periods and backoffs are jittered through `Random`: with r = 0.5 both
 * factors are exactly 1 (open for exactly 10 s, backoff exactly as configured),
 * and a weighted draw always lands on the middle of the total weight.
 */
const unjittered = Effect.withRandom(Random.fixed([0.5]))

/** Lets every forked fiber run until it waits on the clock. */
const settle = TestClock.adjust(0)

/** Runs a request in a fiber and drives the `TestClock` until it settles. */
const runToEnd = <A, E>(effect: Effect.Effect<A, E>, advance: Duration.DurationInput = "1 hour") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(advance)
    return yield* Fiber.join(fiber).pipe(Effect.either)
  })

/** An attempt, compactly: `[model, "failure", reason]`, `[model, "success"]`, `[model, "skipped", skip]`. */
const step = (attempt: Attempt.Attempt) =>
  attempt.outcome === "skipped"
    ? [attempt.model, "skipped", attempt.skip]
    : attempt.outcome === "failure"
      ? [attempt.model, "failure", attempt.error?.reason]
      : [attempt.model, "success"]

const trace = (attempts: ReadonlyArray<Attempt.Attempt>) => attempts.map(step)

/** The trace of an answer, or of the routing error. */
const traceOf = (result: Either.Either<{ readonly attempts: ReadonlyArray<Attempt.Attempt> }, unknown>) =>
  Either.isRight(result)
    ? trace(result.right.attempts)
    : trace((result.left as { readonly attempts: ReadonlyArray<Attempt.Attempt> }).attempts)

const statusOf = (client: Client, model: string) =>
  Effect.map(client.health, (statuses) => statuses.find((s) => s.model === model)!)

/** A model's status: healthy with zero counters, then `fields`. */
const status = (model: string, fields: Partial<ModelHealth.ModelStatus> = {}): ModelHealth.ModelStatus => ({
  ...ModelHealth.healthy(model),
  ...fields
})

const calls = (scripted: ScriptedProvider.ScriptedProviders, model?: string) =>
  scripted.calls.filter((c) => model === undefined || c.model === model).map((c) => c.startedAt)

const skipped = (model: string, skip: Attempt.Skip) => [model, "skipped", skip]

/** Forks `n` copies of `effect`. */
const forkN = <A, E>(n: number, effect: Effect.Effect<A, E>) =>
  Effect.forEach(Array.from({ length: n }), () => Effect.fork(Effect.either(effect)))

const joinAll = <A>(fibers: ReadonlyArray<Fiber.RuntimeFiber<A>>) => Effect.forEach(fibers, Fiber.join)

/** Collects the first `n` health transitions of `client`, from now on. */
const watch = (client: Client, n: number) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Stream.runCollect(Stream.take(client.healthChanges, n)))
    yield* settle
    return Effect.map(Fiber.join(fiber), Chunk.toReadonlyArray)
  })

/** Runs `effect` in a fiber and returns its result, failing the test if it needs the clock to move. */
const atOnceOrFail = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Effect.either(effect))
    yield* settle
    const done = yield* Fiber.poll(fiber)
    assert.isTrue(Option.isSome(done), "the request did not settle at once")
    return yield* Fiber.join(fiber)
  })

/** Opens GPT's breaker at the current time: three requests whose GPT call fails with a counted reason. */
const openByRequests = (client: Client) =>
  Effect.gen(function* () {
    for (let i = 0; i < 3; i++) yield* Effect.either(client.completions.create(ask))
  })

describe("RouterHealth: holds", () => {
  it.effect("a 429's retry-after holds the model: later requests skip it without a call until the hold ends", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [fail("RateLimited", { status: 429, retryAfter: "7 seconds" })] }
      )
      const first = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(first.attempts), [
        [GPT, "failure", "RateLimited"],
        [HAIKU, "success"]
      ])
      assert.deepStrictEqual(yield* client.health, [
        status(GPT, { state: "held", until: 7_000, reason: "RateLimited", recentRequests: 1 }),
        status(HAIKU, { recentCalls: 1, recentRequests: 1 })
      ])
      const second = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(second.attempts), [
        skipped(GPT, { reason: "held", until: 7_000, cause: "RateLimited" }),
        [HAIKU, "success"]
      ])
      assert.deepStrictEqual(second.attempts[0], {
        model: GPT,
        outcome: "skipped",
        duration: Duration.zero,
        skip: { reason: "held", until: 7_000, cause: "RateLimited" }
      })
      yield* TestClock.setTime(6_999)
      assert.strictEqual((yield* client.completions.create(ask)).model, HAIKU)
      yield* TestClock.setTime(7_000)
      const after = yield* client.completions.create(ask)
      assert.strictEqual(after.model, GPT)
      assert.deepStrictEqual(trace(after.attempts), [[GPT, "success"]])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 7_000])
      assert.deepStrictEqual(calls(scripted, HAIKU), [0, 0, 6_999])
    })
  )

  it.effect("without a retry-after, a 429's rate-limit reset holds the model", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [fail("RateLimited", { status: 429, rateLimitReset: "6 seconds" })] }
      )
      yield* client.completions.create(ask)
      const held = yield* statusOf(client, GPT)
      assert.deepStrictEqual([held.state, held.until, held.reason], ["held", 6_000, "RateLimited"])
      yield* TestClock.setTime(5_999)
      assert.deepStrictEqual(trace((yield* client.completions.create(ask)).attempts), [
        skipped(GPT, { reason: "held", until: 6_000, cause: "RateLimited" }),
        [HAIKU, "success"]
      ])
      yield* TestClock.setTime(6_000)
      assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
      assert.deepStrictEqual(calls(scripted, GPT), [0, 6_000])
    })
  )

  it.effect("a retry-after wins over the rate-limit reset", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [fail("RateLimited", { status: 429, retryAfter: "3 seconds", rateLimitReset: "6 seconds" })] }
      )
      yield* client.completions.create(ask)
      assert.strictEqual((yield* statusOf(client, GPT)).until, 3_000)
    })
  )

  it.effect("a 429 with no stated wait holds 1 s, then 2 s, then 4 s on repeats; a success resets it", () =>
    Effect.gen(function* () {
      const rateLimited = fail("RateLimited", { status: 429 })
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [rateLimited, rateLimited, rateLimited, succeed(), rateLimited] }
      )
      const untils: Array<number | undefined> = []
      for (const at of [0, 1_000, 3_000, 7_000, 7_000]) {
        yield* TestClock.setTime(at)
        yield* client.completions.create(ask)
        untils.push((yield* statusOf(client, GPT)).until)
      }
      assert.deepStrictEqual(untils, [1_000, 3_000, 7_000, undefined, 8_000])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 1_000, 3_000, 7_000, 7_000])
    })
  )

  for (const [reason, status] of [
    ["Authentication", 401],
    ["PermissionDenied", 403],
    ["NotFound", 404],
    ["QuotaExceeded", 429]
  ] as const) {
    it.effect(`${reason} (${status}) holds the model for 5 minutes`, () =>
      Effect.gen(function* () {
        const { scripted, client } = setup(
          { failover_chain: [{ model: GPT }, { model: HAIKU }] },
          { [GPT]: [fail(reason, { status })] }
        )
        yield* client.completions.create(ask)
        yield* TestClock.setTime(299_999)
        const skipping = yield* client.completions.create(ask)
        assert.deepStrictEqual(trace(skipping.attempts), [
          skipped(GPT, { reason: "held", until: 300_000, cause: reason }),
          [HAIKU, "success"]
        ])
        yield* TestClock.setTime(300_000)
        assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
        assert.deepStrictEqual(calls(scripted, GPT), [0, 300_000])
      })
    )
  }

  it.effect(
    "429s in flight together: a hold that ends later extends it, one that ends sooner does not shorten it",
    () =>
      Effect.gen(function* () {
        const { scripted, client } = setup(
          { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
          {
            [GPT]: [
              delay("1 second", fail("RateLimited", { status: 429, retryAfter: "10 seconds" })),
              delay("2 seconds", fail("RateLimited", { status: 429, retryAfter: "30 seconds" })),
              delay("3 seconds", fail("RateLimited", { status: 429, retryAfter: "1 second" }))
            ]
          }
        )
        const fibers = yield* forkN(3, client.completions.create(ask))
        yield* settle
        const untils: Array<number | undefined> = []
        for (let i = 0; i < 3; i++) {
          yield* TestClock.adjust("1 second")
          untils.push((yield* statusOf(client, GPT)).until)
        }
        assert.deepStrictEqual(untils, [11_000, 32_000, 32_000])
        for (const result of yield* joinAll(fibers)) {
          assert.deepStrictEqual(traceOf(result), [
            [GPT, "failure", "RateLimited"],
            [HAIKU, "success"]
          ])
        }
        assert.deepStrictEqual(calls(scripted, HAIKU), [1_000, 2_000, 3_000])
      })
  )

  it.effect("a request's own 429 is retried on its own schedule, though it holds the model", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, backoff: 0.5 }, { model: HAIKU }] },
        { [GPT]: [fail("RateLimited", { status: 429 })] }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      // Held until 1 s by this request's own 429; its backoff (0.5 s) is its own business.
      assert.deepStrictEqual(trace(response.attempts), [
        [GPT, "failure", "RateLimited"],
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted), [0, 500])
    }).pipe(unjittered)
  )
})

describe("RouterHealth: breaker", () => {
  it.effect("three failures open the breaker; requests skip the model; at until one probe closes it", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: Array(3).fill(fail("ServerError", { status: 500 })) }
      )
      const transitions = yield* watch(client, 3)
      assert.deepStrictEqual(yield* client.health, [status(GPT), status(HAIKU)])
      for (let i = 1; i <= 3; i++) {
        const response = yield* client.completions.create(ask)
        assert.deepStrictEqual(trace(response.attempts), [
          [GPT, "failure", "ServerError"],
          [HAIKU, "success"]
        ])
        if (i === 2) {
          assert.deepStrictEqual(
            yield* statusOf(client, GPT),
            status(GPT, { consecutiveFailures: 2, recentCalls: 2, recentFailures: 2, recentRequests: 2 })
          )
        }
      }
      const opened = { consecutiveFailures: 3, recentCalls: 3, recentFailures: 3, opens: 1 }
      assert.deepStrictEqual(yield* client.health, [
        status(GPT, { state: "open", until: 10_000, reason: "ServerError", ...opened, recentRequests: 3 }),
        status(HAIKU, { recentCalls: 3, recentRequests: 3 })
      ])
      const skipping = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(skipping.attempts), [
        skipped(GPT, { reason: "open", until: 10_000, cause: "ServerError" }),
        [HAIKU, "success"]
      ])
      yield* TestClock.setTime(9_999)
      assert.strictEqual((yield* client.completions.create(ask)).model, HAIKU)
      yield* TestClock.setTime(10_000)
      assert.deepStrictEqual(
        yield* statusOf(client, GPT),
        status(GPT, { state: "half-open", reason: "ServerError", ...opened })
      )
      const probe = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(probe.attempts), [[GPT, "success"]])
      assert.deepStrictEqual(yield* client.health, [
        status(GPT, { recentCalls: 1, opens: 1, recentRequests: 1 }),
        status(HAIKU, { recentCalls: 5, recentRequests: 1 })
      ])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0, 10_000])
      assert.deepStrictEqual(yield* transitions, [
        { model: GPT, from: "healthy", to: "open", at: 0, until: 10_000, reason: "ServerError" },
        { model: GPT, from: "open", to: "half-open", at: 10_000, reason: "ServerError" },
        { model: GPT, from: "half-open", to: "healthy", at: 10_000 }
      ])
    }).pipe(unjittered)
  )

  it.effect("a failing probe reopens the breaker for twice as long (20 s), and the request fails over", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: Array(4).fill(fail("ServerError", { status: 500 })) }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const probe = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(probe.attempts), [
        [GPT, "failure", "ServerError"],
        [HAIKU, "success"]
      ])
      const reopened = yield* statusOf(client, GPT)
      assert.deepStrictEqual([reopened.state, reopened.until, reopened.opens], ["open", 30_000, 2])
      yield* TestClock.setTime(29_999)
      assert.deepStrictEqual(trace((yield* client.completions.create(ask)).attempts), [
        skipped(GPT, { reason: "open", until: 30_000, cause: "ServerError" }),
        [HAIKU, "success"]
      ])
      yield* TestClock.setTime(30_000)
      assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0, 10_000, 30_000])
      assert.strictEqual((yield* statusOf(client, GPT)).state, "healthy")
    }).pipe(unjittered)
  )

  it.effect("a probe that times out reopens the breaker with reason Timeout", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0, timeout: 1 }, { model: HAIKU }] },
        { [GPT]: [...Array(3).fill(fail("ServerError")), hang] }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const probe = Either.getOrThrow(yield* runToEnd(client.completions.create(ask), "1 second"))
      assert.deepStrictEqual(trace(probe.attempts), [
        [GPT, "failure", "Timeout"],
        [HAIKU, "success"]
      ])
      const reopened = yield* statusOf(client, GPT)
      assert.deepStrictEqual([reopened.state, reopened.until, reopened.reason], ["open", 31_000, "Timeout"])
      assert.deepStrictEqual(calls(scripted, HAIKU), [0, 0, 0, 11_000])
    }).pipe(unjittered)
  )

  it.effect("10 concurrent requests while half-open make exactly one probe call; the rest go to the other model", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { weights: { [GPT]: 3, [HAIKU]: 1 }, max_retries: { [GPT]: 0 } },
        { [GPT]: [...Array(3).fill(fail("Overloaded", { status: 503 })), delay("1 second", succeed("probed"))] }
      )
      yield* openByRequests(client)
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0])
      yield* TestClock.setTime(10_000)
      const fibers = yield* forkN(10, client.completions.create(ask))
      yield* settle
      // The probe is out: the other nine went to HAIKU without waiting for it.
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0, 10_000])
      assert.deepStrictEqual(calls(scripted, HAIKU), [0, 0, 0, ...Array(9).fill(10_000)])
      assert.strictEqual((yield* statusOf(client, GPT)).state, "half-open")
      yield* TestClock.adjust("1 second")
      const results = (yield* joinAll(fibers)).map((r) => Either.getOrThrow(r))
      const probes = results.filter((r) => r.model === GPT)
      const others = results.filter((r) => r.model === HAIKU)
      assert.strictEqual(probes.length, 1)
      assert.strictEqual(probes[0]!.choices[0]!.message.content, "probed")
      assert.deepStrictEqual(trace(probes[0]!.attempts), [[GPT, "success"]])
      assert.strictEqual(others.length, 9)
      for (const other of others) {
        assert.deepStrictEqual(trace(other.attempts), [
          skipped(GPT, { reason: "half-open", cause: "Overloaded" }),
          [HAIKU, "success"]
        ])
      }
      assert.deepStrictEqual(yield* client.health, [
        status(GPT, { recentCalls: 1, opens: 1, recentRequests: 1 }),
        status(HAIKU, { recentCalls: 12, recentRequests: 9 })
      ])
      // Closed: the next request goes to GPT again.
      assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
    }).pipe(unjittered)
  )

  it.effect("a failure of a call started before the open does not extend it", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0, timeout: 1 }, { model: HAIKU }] },
        { [GPT]: [hang, hang, hang, hang] }
      )
      const transitions = yield* watch(client, 2)
      // Four requests, started 100 ms apart, each time out after 1 s.
      const fibers: Array<
        Fiber.RuntimeFiber<
          Either.Either<Router.RoutedCompletion, RoutingError.RoutingError | ChatCompletion.InvalidChatRequest>
        >
      > = []
      for (let i = 0; i < 4; i++) {
        if (i > 0) yield* TestClock.adjust("100 millis")
        fibers.push(yield* Effect.fork(Effect.either(client.completions.create(ask))))
      }
      yield* TestClock.adjust("900 millis") // 1000: the first times out
      yield* TestClock.adjust("100 millis") // 1100: the second
      yield* TestClock.adjust("100 millis") // 1200: the third opens the breaker
      const opened = { state: "open", until: 11_200, reason: "Timeout" } as const
      const counters = { consecutiveFailures: 3, recentCalls: 3, recentFailures: 3, opens: 1, recentRequests: 4 }
      assert.deepStrictEqual(yield* statusOf(client, GPT), status(GPT, { ...opened, ...counters }))
      yield* TestClock.adjust("100 millis") // 1300: the fourth, started at 300, before the open
      assert.deepStrictEqual(yield* statusOf(client, GPT), status(GPT, { ...opened, ...counters }))
      for (const result of yield* joinAll(fibers)) {
        assert.deepStrictEqual(traceOf(result), [
          [GPT, "failure", "Timeout"],
          [HAIKU, "success"]
        ])
      }
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt, c.status]),
        [
          [GPT, 0, "interrupted"],
          [GPT, 100, "interrupted"],
          [GPT, 200, "interrupted"],
          [GPT, 300, "interrupted"],
          [HAIKU, 1_000, "success"],
          [HAIKU, 1_100, "success"],
          [HAIKU, 1_200, "success"],
          [HAIKU, 1_300, "success"]
        ]
      )
      yield* TestClock.setTime(11_200)
      yield* client.health
      assert.deepStrictEqual(yield* transitions, [
        { model: GPT, from: "healthy", to: "open", at: 1_200, until: 11_200, reason: "Timeout" },
        { model: GPT, from: "open", to: "half-open", at: 11_200, reason: "Timeout" }
      ])
    }).pipe(unjittered)
  )
})

describe("RouterHealth: requests already in flight", () => {
  it.effect("a request waiting to retry a model that other requests opened fails over at once", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 2, backoff: 2 }, { model: HAIKU }] },
        {
          [GPT]: [fail("ServerError"), fail("MalformedResponse"), fail("MalformedResponse")]
        }
      )
      const waiting = yield* Effect.fork(Effect.either(client.completions.create(ask)))
      yield* TestClock.adjust("500 millis")
      yield* client.completions.create(ask)
      yield* TestClock.adjust("500 millis")
      yield* client.completions.create(ask) // the third counted failure in a row: open at 1 s
      assert.deepStrictEqual((yield* statusOf(client, GPT)).until, 11_000)
      yield* TestClock.adjust("1 second") // 2 s: the first request's backoff ends
      const response = Either.getOrThrow(yield* Fiber.join(waiting))
      assert.deepStrictEqual(trace(response.attempts), [
        [GPT, "failure", "ServerError"],
        skipped(GPT, { reason: "open", until: 11_000, cause: "MalformedResponse" }),
        [HAIKU, "success"]
      ])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 500, 1_000])
      assert.deepStrictEqual(calls(scripted, HAIKU), [500, 1_000, 2_000])
    }).pipe(unjittered)
  )

  it.effect("a request waiting to retry a model that another request held meanwhile fails over at once", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 2, backoff: 2 }, { model: HAIKU }] },
        { [GPT]: [fail("ServerError"), fail("RateLimited", { status: 429, retryAfter: "30 seconds" })] }
      )
      const first = yield* Effect.fork(Effect.either(client.completions.create(ask)))
      yield* TestClock.adjust("500 millis")
      const second = yield* Effect.fork(Effect.either(client.completions.create(ask)))
      yield* TestClock.adjust("1500 millis")
      assert.deepStrictEqual(trace(Either.getOrThrow(yield* Fiber.join(first)).attempts), [
        [GPT, "failure", "ServerError"],
        skipped(GPT, { reason: "held", until: 30_500, cause: "RateLimited" }),
        [HAIKU, "success"]
      ])
      // The request that got the 429 waits it out and retries, as it always did.
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(trace(Either.getOrThrow(yield* Fiber.join(second)).attempts), [
        [GPT, "failure", "RateLimited"],
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 500, 30_500])
      assert.deepStrictEqual(calls(scripted, HAIKU), [2_000])
    }).pipe(unjittered)
  )

  it.effect("a request whose failure completes a trip that others began fails over at once, without its backoff", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 2, backoff: 2 }, { model: HAIKU }] },
        { [GPT]: [fail("MalformedResponse"), fail("MalformedResponse"), fail("ServerError")] }
      )
      yield* client.completions.create(ask)
      yield* client.completions.create(ask)
      yield* TestClock.setTime(500)
      const response = Either.getOrThrow(yield* atOnceOrFail(client.completions.create(ask)))
      assert.deepStrictEqual(trace(response.attempts), [
        [GPT, "failure", "ServerError"],
        skipped(GPT, { reason: "open", until: 10_500, cause: "ServerError" }),
        [HAIKU, "success"]
      ])
      assert.deepStrictEqual(calls(scripted, HAIKU), [0, 0, 500])
      // No retry was taken from the budget.
      assert.strictEqual((yield* statusOf(client, GPT)).recentRetries, 0)
    }).pipe(unjittered)
  )

  it.effect("a request whose own failures alone opened the breaker keeps its retry schedule", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 3, backoff: 1 }, { model: HAIKU }] },
        { [GPT]: Array(3).fill(fail("ServerError")) }
      )
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      assert.deepStrictEqual(trace(response.attempts), [
        [GPT, "failure", "ServerError"],
        [GPT, "failure", "ServerError"],
        [GPT, "failure", "ServerError"],
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted), [0, 1_000, 3_000, 7_000])
      assert.strictEqual((yield* statusOf(client, GPT)).state, "healthy")
    }).pipe(unjittered)
  )

  for (const [name, reliability] of [
    ["the only model of a chain", { failover_chain: [{ model: GPT, max_retries: 2, backoff: 2 }] }],
    [
      "a model whose only alternative has weight 0",
      { weights: { [GPT]: 1, [HAIKU]: 0 }, max_retries: { [GPT]: 2 }, backoff: { [GPT]: 2 } }
    ]
  ] as const) {
    it.effect(`${name} keeps all its retries though other requests opened it`, () =>
      Effect.gen(function* () {
        const { scripted, client } = setup(reliability, {
          [GPT]: [
            fail("ServerError"),
            fail("MalformedResponse"),
            fail("MalformedResponse"),
            fail("ServerError"),
            succeed()
          ]
        })
        const waiting = yield* Effect.fork(Effect.either(client.completions.create(ask)))
        yield* TestClock.adjust("500 millis")
        yield* Effect.either(client.completions.create(ask))
        yield* TestClock.adjust("500 millis")
        yield* Effect.either(client.completions.create(ask))
        assert.strictEqual((yield* statusOf(client, GPT)).state, "open")
        yield* TestClock.adjust("1 minute")
        const response = Either.getOrThrow(yield* Fiber.join(waiting))
        assert.deepStrictEqual(trace(response.attempts), [
          [GPT, "failure", "ServerError"],
          [GPT, "failure", "ServerError"],
          [GPT, "success"]
        ])
        // Backoff 2 s, then 4 s: the schedule is the request's own.
        assert.deepStrictEqual(calls(scripted), [0, 500, 1_000, 2_000, 6_000])
        assert.strictEqual(scripted.count(HAIKU), 0)
      }).pipe(unjittered)
    )
  }
})

describe("RouterHealth: on_all_unavailable", () => {
  /**
   * HAIKU held until 12 s (a 429) and GPT open until 10 s (three failures),
   * both at time 0, by three requests over the chain [HAIKU, GPT].
   */
  const bothDown = (health: Reliability.Input["health"], options: Omit<IronlabsClient.Options, "reliability"> = {}) =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        {
          failover_chain: [
            { model: HAIKU, max_retries: 0 },
            { model: GPT, max_retries: 0 }
          ],
          ...(health === undefined ? {} : { health })
        },
        {
          [HAIKU]: [fail("RateLimited", { status: 429, retryAfter: "12 seconds" })],
          [GPT]: Array(3).fill(fail("ServerError", { status: 500 }))
        },
        options
      )
      const first = yield* Effect.either(client.completions.create(ask))
      assert.deepStrictEqual(traceOf(first), [
        [HAIKU, "failure", "RateLimited"],
        [GPT, "failure", "ServerError"]
      ])
      for (let i = 0; i < 2; i++) {
        const next = yield* Effect.either(client.completions.create(ask))
        assert.isTrue(Either.isLeft(next) && next.left._tag === "AllModelsFailed")
        assert.deepStrictEqual(traceOf(next), [
          skipped(HAIKU, { reason: "held", until: 12_000, cause: "RateLimited" }),
          [GPT, "failure", "ServerError"]
        ])
      }
      return { scripted, client }
    })

  const downStatuses = [
    status(HAIKU, { state: "held", until: 12_000, reason: "RateLimited", recentRequests: 1 }),
    status(GPT, {
      state: "open",
      until: 10_000,
      reason: "ServerError",
      consecutiveFailures: 3,
      recentCalls: 3,
      recentFailures: 3,
      opens: 1,
      recentRequests: 3
    })
  ]
  const downSkips = [
    skipped(HAIKU, { reason: "held", until: 12_000, cause: "RateLimited" }),
    skipped(GPT, { reason: "open", until: 10_000, cause: "ServerError" })
  ]

  const assertNoModelAvailable = (
    result: Either.Either<unknown, unknown>,
    expected: { readonly models: unknown; readonly retryAt?: number; readonly attempts: unknown }
  ) => {
    assert.isTrue(Either.isLeft(result), "expected the request to fail")
    const error = Either.isLeft(result) ? (result.left as { _tag: string }) : undefined
    assert.strictEqual(error?._tag, "NoModelAvailable")
    if (error?._tag !== "NoModelAvailable") return
    const noModel = error as unknown as {
      models: unknown
      retryAt?: number
      attempts: ReadonlyArray<Attempt.Attempt>
    }
    assert.deepStrictEqual(noModel.models, expected.models)
    assert.strictEqual(noModel.retryAt, expected.retryAt)
    assert.deepStrictEqual(trace(noModel.attempts), expected.attempts)
  }

  it.effect("wait (the default) sleeps until the earliest reopening and calls that model exactly then", () =>
    Effect.gen(function* () {
      const { scripted, client } = yield* bothDown({ max_wait: 15 })
      const fiber = yield* Effect.fork(client.completions.create(ask))
      yield* TestClock.adjust("9999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0])
      yield* TestClock.adjust("1 millis")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.model, GPT)
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0, 10_000])
      // Looking again finds HAIKU as it was: the trace does not say it twice.
      assert.deepStrictEqual(trace(response.attempts), [...downSkips, [GPT, "success"]])
      assert.strictEqual((yield* statusOf(client, GPT)).state, "healthy")
    }).pipe(unjittered)
  )

  it.effect("wait: a reopening beyond max_wait (5 s) gives NoModelAvailable at once, with every state", () =>
    Effect.gen(function* () {
      const { scripted, client } = yield* bothDown(undefined)
      const result = yield* atOnceOrFail(client.completions.create(ask))
      assertNoModelAvailable(result, { models: downStatuses, retryAt: 10_000, attempts: downSkips })
      if (Either.isLeft(result)) {
        assert.strictEqual(
          (result.left as Error).message,
          `No model available: ${HAIKU}: held (RateLimited); ${GPT}: open (ServerError); ` +
            "the earliest reopens at 1970-01-01T00:00:10.000Z"
        )
      }
      assert.strictEqual(scripted.calls.length, 4)
    }).pipe(unjittered)
  )

  it.effect("wait: a reopening at or after the request's deadline gives NoModelAvailable at once", () =>
    Effect.gen(function* () {
      const { client } = yield* bothDown({ max_wait: 15 })
      for (const timeout of ["8 seconds", "10 seconds"] as const) {
        const result = yield* atOnceOrFail(client.completions.create(ask, { timeout }))
        assertNoModelAvailable(result, { models: downStatuses, retryAt: 10_000, attempts: downSkips })
      }
      const fits = yield* runToEnd(client.completions.create(ask, { timeout: "11 seconds" }))
      assert.strictEqual(Either.getOrThrow(fits).model, GPT)
    }).pipe(unjittered)
  )

  it.effect("wait: max_wait counts from the request's first wait", () =>
    Effect.gen(function* () {
      for (const [haikuHold, expected] of [
        [
          "4 seconds",
          {
            ok: true,
            trace: [
              skipped(GPT, { reason: "held", until: 3_000, cause: "RateLimited" }),
              skipped(HAIKU, { reason: "held", until: 4_000, cause: "RateLimited" }),
              [GPT, "failure", "RateLimited"],
              [HAIKU, "success"]
            ]
          }
        ],
        [
          // 6 s is 3 s after the second wait begins, but 6 s after the first: beyond max_wait.
          "6 seconds",
          {
            ok: false,
            trace: [
              skipped(GPT, { reason: "held", until: 3_000, cause: "RateLimited" }),
              skipped(HAIKU, { reason: "held", until: 6_000, cause: "RateLimited" }),
              [GPT, "failure", "RateLimited"]
            ]
          }
        ]
      ] as const) {
        yield* TestClock.setTime(0)
        const { scripted, client } = setup(
          {
            failover_chain: [
              { model: GPT, max_retries: 0 },
              { model: HAIKU, max_retries: 0 }
            ]
          },
          {
            [GPT]: [
              fail("RateLimited", { retryAfter: "3 seconds" }),
              fail("RateLimited", { retryAfter: "10 seconds" })
            ],
            [HAIKU]: [fail("RateLimited", { retryAfter: haikuHold })]
          }
        )
        yield* Effect.either(client.completions.create(ask))
        const result = yield* runToEnd(client.completions.create(ask))
        assert.strictEqual(Either.isRight(result), expected.ok)
        if (Either.isLeft(result)) assert.strictEqual((result.left as { _tag: string })._tag, "AllModelsFailed")
        assert.deepStrictEqual<unknown>(traceOf(result), expected.trace)
        assert.deepStrictEqual(calls(scripted, GPT), [0, 3_000])
      }
    }).pipe(unjittered)
  )

  /** GPT alone, opened at 0; at 10 s a probe goes out that answers after `probeFor`. */
  const probing = (probeFor: Duration.DurationInput) =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }] },
        { [GPT]: [...Array(3).fill(fail("ServerError")), delay(probeFor, succeed("probed"))] }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const probe = yield* Effect.fork(client.completions.create(ask))
      yield* settle
      return { scripted, client, probe }
    })

  it.effect("wait: a half-open model whose probe is out is looked at again until the probe ends", () =>
    Effect.gen(function* () {
      const { scripted, client, probe } = yield* probing("1025 millis")
      const waiting = yield* Effect.fork(client.completions.create(ask))
      yield* TestClock.adjust("1025 millis")
      assert.strictEqual((yield* Fiber.join(probe)).choices[0]!.message.content, "probed")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      // It looks again every 50 ms: the first look after the probe answered is at 11 050.
      yield* TestClock.adjust("25 millis")
      const response = yield* Fiber.join(waiting)
      assert.deepStrictEqual(trace(response.attempts), [
        skipped(GPT, { reason: "half-open", cause: "ServerError" }),
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted), [0, 0, 0, 10_000, 11_050])
    }).pipe(unjittered)
  )

  it.effect("wait: a probe out for longer than max_wait gives NoModelAvailable, with no time to retry", () =>
    Effect.gen(function* () {
      const { scripted, client, probe } = yield* probing("10 seconds")
      const waiting = yield* Effect.fork(Effect.either(client.completions.create(ask)))
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* TestClock.adjust("1 millis")
      const done = yield* Fiber.poll(waiting)
      assert.isTrue(Option.isSome(done), "gave up when max_wait (5 s) ran out")
      assertNoModelAvailable(yield* Fiber.join(waiting), {
        models: [
          status(GPT, {
            state: "half-open",
            reason: "ServerError",
            consecutiveFailures: 3,
            recentCalls: 3,
            recentFailures: 3,
            opens: 1,
            recentRequests: 1
          })
        ],
        attempts: [skipped(GPT, { reason: "half-open", cause: "ServerError" })]
      })
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* Fiber.join(probe)).model, GPT)
      assert.deepStrictEqual(calls(scripted), [0, 0, 0, 10_000])
    }).pipe(unjittered)
  )

  it.effect("fail: NoModelAvailable at once, with each model's state and the earliest time to retry", () =>
    Effect.gen(function* () {
      const { scripted, client } = yield* bothDown({ on_all_unavailable: "fail", max_wait: 15 })
      const result = yield* atOnceOrFail(client.completions.create(ask))
      assertNoModelAvailable(result, { models: downStatuses, retryAt: 10_000, attempts: downSkips })
      assert.strictEqual(scripted.calls.length, 4)
    }).pipe(unjittered)
  )

  it.effect("probe: calls the open model at once, never the auth-held one", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        {
          failover_chain: [
            { model: HAIKU, max_retries: 0 },
            { model: GPT, max_retries: 0 }
          ],
          health: { on_all_unavailable: "probe" }
        },
        {
          [HAIKU]: [fail("Authentication", { status: 401 })],
          [GPT]: Array(3).fill(fail("ServerError", { status: 500 }))
        }
      )
      for (let i = 0; i < 3; i++) yield* Effect.either(client.completions.create(ask))
      assert.strictEqual((yield* statusOf(client, GPT)).state, "open")
      const response = Either.getOrThrow(yield* atOnceOrFail(client.completions.create(ask)))
      assert.strictEqual(response.model, GPT)
      assert.deepStrictEqual(trace(response.attempts), [
        skipped(HAIKU, { reason: "held", until: 300_000, cause: "Authentication" }),
        skipped(GPT, { reason: "open", until: 10_000, cause: "ServerError" }),
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted, HAIKU), [0])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0, 0])
      // Its success closed the breaker.
      assert.strictEqual((yield* statusOf(client, GPT)).state, "healthy")
    }).pipe(unjittered)
  )

  it.effect("probe: a long (auth) hold is never probed; NoModelAvailable when it is the only model", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT }], health: { on_all_unavailable: "probe" } },
        { [GPT]: [fail("PermissionDenied", { status: 403 })] }
      )
      yield* Effect.either(client.completions.create(ask))
      const result = yield* atOnceOrFail(client.completions.create(ask))
      assertNoModelAvailable(result, {
        models: [status(GPT, { state: "held", until: 300_000, reason: "PermissionDenied", recentRequests: 1 })],
        retryAt: 300_000,
        attempts: [skipped(GPT, { reason: "held", until: 300_000, cause: "PermissionDenied" })]
      })
      assert.deepStrictEqual(calls(scripted), [0])
    })
  )

  it.effect("probe: a short hold is waited for, as with wait", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }], health: { on_all_unavailable: "probe" } },
        { [GPT]: [fail("RateLimited", { status: 429, retryAfter: "2 seconds" })] }
      )
      yield* Effect.either(client.completions.create(ask))
      const response = Either.getOrThrow(yield* runToEnd(client.completions.create(ask)))
      assert.deepStrictEqual(trace(response.attempts), [
        skipped(GPT, { reason: "held", until: 2_000, cause: "RateLimited" }),
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted), [0, 2_000])
    })
  )
})

describe("RouterHealth: retry budget", () => {
  /**
   * 20 requests at once over [GPT (1 retry, backoff 1 s), HAIKU]: every GPT
   * call fails after 1 s. The breaker is set out of reach, to see the budget alone.
   */
  const burst = (retryBudget?: false) =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        {
          failover_chain: [{ model: GPT, max_retries: 1, backoff: 1 }, { model: HAIKU }],
          health: { consecutive_failures: 1000, min_calls: 1000 },
          ...(retryBudget === false ? { retry_budget: false } : {})
        },
        {
          [GPT]: [
            ...Array(20).fill(delay("1 second", fail("ServerError"))),
            ...Array(retryBudget === false ? 20 : 14).fill(fail("ServerError")),
            delay("1 second", fail("ServerError")),
            delay("1 second", fail("ServerError"))
          ]
        }
      )
      const fibers = yield* forkN(20, client.completions.create(ask))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const traces = (yield* joinAll(fibers)).map(traceOf)
      return { scripted, client, traces }
    })

  const retried = [
    [GPT, "failure", "ServerError"],
    [GPT, "failure", "ServerError"],
    [HAIKU, "success"]
  ]
  const budgetSpent = [[GPT, "failure", "ServerError"], skipped(GPT, { reason: "retry-budget" }), [HAIKU, "success"]]

  it.effect("20 failing requests at once get 10 + 0.2 * 20 = 14 retries; the rest fail over at once, and say why", () =>
    Effect.gen(function* () {
      const { scripted, client, traces } = yield* burst()
      assert.strictEqual(traces.filter((t) => same(t, retried)).length, 14)
      assert.strictEqual(traces.filter((t) => same(t, budgetSpent)).length, 6)
      assert.deepStrictEqual(calls(scripted, GPT), [...Array(20).fill(0), ...Array(14).fill(2_000)])
      // Failed over at once (1 s) when the budget was spent; after the retry (2 s) otherwise.
      assert.deepStrictEqual(calls(scripted, HAIKU), [...Array(6).fill(1_000), ...Array(14).fill(2_000)])
      // Failing over to a healthy model is not charged: HAIKU got requests, no retries.
      assert.deepStrictEqual(yield* client.health, [
        status(GPT, {
          consecutiveFailures: 34,
          recentCalls: 34,
          recentFailures: 34,
          recentRequests: 20,
          recentRetries: 14
        }),
        status(HAIKU, { recentCalls: 20, recentRequests: 20 })
      ])
    }).pipe(unjittered)
  )

  it.effect("the budget refills as its 10 s window slides", () =>
    Effect.gen(function* () {
      const { scripted, client } = yield* burst()
      // At 9 s a request fails at 10 s: the 14 retries of 1 s are still in the window.
      yield* TestClock.setTime(9_000)
      const spent = yield* Effect.fork(Effect.either(client.completions.create(ask)))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(traceOf(yield* Fiber.join(spent)), budgetSpent)
      // At 10 s a request fails at 11 s: the retries of 1 s have left the window.
      const refilled = yield* Effect.fork(Effect.either(client.completions.create(ask)))
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(traceOf(yield* Fiber.join(refilled)), [
        [GPT, "failure", "ServerError"],
        [GPT, "success"]
      ])
      assert.deepStrictEqual(calls(scripted, GPT).slice(34), [9_000, 10_000, 12_000])
      assert.deepStrictEqual(calls(scripted, HAIKU).slice(20), [10_000])
    }).pipe(unjittered)
  )

  it.effect("retry_budget: false lets every request retry", () =>
    Effect.gen(function* () {
      const { scripted, client, traces } = yield* burst(false)
      assert.isTrue(traces.every((t) => same(t, retried)))
      assert.deepStrictEqual(calls(scripted, GPT), [...Array(20).fill(0), ...Array(20).fill(2_000)])
      const gpt = yield* statusOf(client, GPT)
      assert.deepStrictEqual([gpt.recentRequests, gpt.recentRetries], [0, 0])
    }).pipe(unjittered)
  )
})

/** Structural equality of two traces. */
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

describe("RouterHealth: aborts and interrupts do not count", () => {
  it.effect("interrupting requests mid-call leaves the model's counters as they were", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 10, max_retries: 3 }, { model: HAIKU }] },
        { [GPT]: Array(5).fill(hang) }
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () => Effect.fork(client.completions.create(ask)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interruptAll(fibers)
      assert.deepStrictEqual(yield* client.health, [status(GPT, { recentRequests: 5 }), status(HAIKU)])
      yield* TestClock.adjust("1 hour")
      // No retry, no failover after the interrupt.
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.status]),
        Array(5).fill([GPT, "interrupted"])
      )
    })
  )

  it.effect("a request's overall deadline does not count against the model", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT, timeout: 10 }, { model: HAIKU }] },
        { [GPT]: Array(3).fill(hang) }
      )
      for (let i = 0; i < 3; i++) {
        const result = yield* runToEnd(client.completions.create(ask, { timeout: "1 second" }), "2 seconds")
        assert.isTrue(Either.isLeft(result) && result.left._tag === "DeadlineExceeded")
      }
      const gpt = yield* statusOf(client, GPT)
      assert.deepStrictEqual(
        [gpt.state, gpt.consecutiveFailures, gpt.recentCalls, gpt.recentFailures],
        ["healthy", 0, 0, 0]
      )
    })
  )

  it.effect("an interrupted probe hands its permit back: the next request probes", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [...Array(3).fill(fail("ServerError")), hang] }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const probe = yield* Effect.fork(client.completions.create(ask))
      yield* settle
      const meanwhile = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(meanwhile.attempts), [
        skipped(GPT, { reason: "half-open", cause: "ServerError" }),
        [HAIKU, "success"]
      ])
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(probe)
      const gpt = yield* statusOf(client, GPT)
      assert.deepStrictEqual([gpt.state, gpt.opens, gpt.consecutiveFailures], ["half-open", 1, 3])
      const next = yield* client.completions.create(ask)
      assert.deepStrictEqual(trace(next.attempts), [[GPT, "success"]])
      assert.deepStrictEqual(
        scripted.calls.filter((c) => c.model === GPT).map((c) => [c.startedAt, c.status]),
        [
          [0, "failure"],
          [0, "failure"],
          [0, "failure"],
          [10_000, "interrupted"],
          [10_500, "success"]
        ]
      )
      assert.strictEqual((yield* statusOf(client, GPT)).state, "healthy")
    }).pipe(unjittered)
  )

  it.effect("a probe cut by its request's deadline hands its permit back too", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [...Array(3).fill(fail("ServerError")), hang] }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const cut = yield* runToEnd(client.completions.create(ask, { timeout: "2 seconds" }), "2 seconds")
      assert.isTrue(Either.isLeft(cut) && cut.left._tag === "DeadlineExceeded")
      assert.deepStrictEqual(trace((yield* client.completions.create(ask)).attempts), [[GPT, "success"]])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0, 10_000, 12_000])
    }).pipe(unjittered)
  )
})

describe("RouterHealth: health you can see", () => {
  it.effect("client.health lists every plan model in plan order, untouched ones healthy", () =>
    Effect.gen(function* () {
      const { client } = setup({ weights: { [HAIKU]: 1, [GPT]: 1 } }, { [GPT]: [fail("NotFound", { status: 404 })] })
      assert.deepStrictEqual(yield* client.health, [status(HAIKU), status(GPT)])
      // GPT is touched first (r = 0.5 lands on the second half of the weight), yet stays second.
      yield* client.completions.create(ask)
      assert.deepStrictEqual(yield* client.health, [
        status(HAIKU, { recentCalls: 1, recentRequests: 1 }),
        status(GPT, { state: "held", until: 300_000, reason: "NotFound", recentRequests: 1 })
      ])
    }).pipe(unjittered)
  )

  it.effect("a shared ModelHealth: the client sees only its plan's models", () =>
    Effect.gen(function* () {
      const shared = ModelHealth.unsafeMakeMemory({
        health: ModelHealth.defaultPolicy,
        retryBudget: ModelHealth.defaultRetryBudget
      })
      const { client } = setup(
        { failover_chain: [{ model: GPT }, { model: HAIKU }] },
        { [GPT]: [fail("Authentication", { status: 401 })] },
        {},
        shared
      )
      const transitions = yield* watch(client, 1)
      yield* shared.record({ _tag: "Failure", model: "openai/other", startedAt: 0, probe: false, reason: "NotFound" })
      yield* TestClock.setTime(1_000)
      yield* client.completions.create(ask)
      assert.deepStrictEqual(yield* transitions, [
        { model: GPT, from: "healthy", to: "held", at: 1_000, until: 301_000, reason: "Authentication" }
      ])
      assert.deepStrictEqual(
        (yield* client.health).map((s) => [s.model, s.state]),
        [
          [GPT, "held"],
          [HAIKU, "healthy"]
        ]
      )
      assert.strictEqual((yield* shared.snapshot).length, 3)
    })
  )

  it.effect("healthChanges: every transition of a bad day, in order, dated", () =>
    Effect.gen(function* () {
      const { client } = setup(
        {
          failover_chain: [
            { model: GPT, max_retries: 0 },
            { model: HAIKU, max_retries: 0 }
          ]
        },
        {
          [GPT]: [...Array(3).fill(fail("Timeout")), fail("Transport")],
          // Held beyond max_wait (5 s): the requests that find it held do not wait for it.
          [HAIKU]: [fail("RateLimited", { status: 429, retryAfter: "8 seconds" })]
        }
      )
      const transitions = yield* watch(client, 7)
      yield* openByRequests(client) // GPT opens at 0; HAIKU held until 8 s by the first request
      yield* TestClock.setTime(10_000)
      yield* client.completions.create(ask) // GPT's probe fails: reopened until 30 s
      yield* TestClock.setTime(30_000)
      yield* client.completions.create(ask) // the probe answers
      assert.deepStrictEqual(yield* transitions, [
        { model: HAIKU, from: "healthy", to: "held", at: 0, until: 8_000, reason: "RateLimited" },
        { model: GPT, from: "healthy", to: "open", at: 0, until: 10_000, reason: "Timeout" },
        { model: GPT, from: "open", to: "half-open", at: 10_000, reason: "Timeout" },
        { model: GPT, from: "half-open", to: "open", at: 10_000, until: 30_000, reason: "Transport" },
        { model: HAIKU, from: "held", to: "healthy", at: 8_000 },
        { model: GPT, from: "open", to: "half-open", at: 30_000, reason: "Transport" },
        { model: GPT, from: "half-open", to: "healthy", at: 30_000 }
      ])
    }).pipe(unjittered)
  )
})

describe("RouterHealth: config", () => {
  it.effect("health: false makes the router stateless: a failing model is called by every request", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }], health: false },
        { [GPT]: [...Array(5).fill(fail("ServerError")), fail("Authentication", { status: 401 })] }
      )
      for (let i = 0; i < 7; i++) {
        const response = yield* client.completions.create(ask)
        assert.isFalse(response.attempts.some((a) => a.outcome === "skipped"))
      }
      assert.deepStrictEqual(calls(scripted, GPT), Array(7).fill(0))
      assert.deepStrictEqual(calls(scripted, HAIKU), Array(6).fill(0))
      // The retry budget is still on and counts requests; nothing else is remembered.
      assert.deepStrictEqual(yield* client.health, [
        status(GPT, { recentRequests: 7 }),
        status(HAIKU, { recentRequests: 6 })
      ])
    })
  )

  it.effect("health: false and retry_budget: false remember nothing at all", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }], health: false, retry_budget: false },
        { [GPT]: Array(3).fill(fail("ServerError")) }
      )
      yield* openByRequests(client)
      assert.deepStrictEqual(yield* client.health, [status(GPT), status(HAIKU)])
    })
  )

  it.effect("health settings from the config drive the breaker: consecutive_failures and open_for", () =>
    Effect.gen(function* () {
      const { client } = setup(
        {
          failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }],
          health: { consecutive_failures: 2, open_for: 4 }
        },
        { [GPT]: Array(2).fill(fail("ServerError")) }
      )
      yield* client.completions.create(ask)
      yield* client.completions.create(ask)
      const gpt = yield* statusOf(client, GPT)
      assert.deepStrictEqual([gpt.state, gpt.until], ["open", 4_000])
    }).pipe(unjittered)
  )
})

describe("RouterHealth: streams", () => {
  const streamed = { ...ask, stream: true } as const

  it.effect("a stream that commits is a success at its commit: it closes a half-open breaker", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        {
          [GPT]: [
            ...Array(3).fill(fail("ServerError")),
            succeed(undefined, { chunks: ["Salt ", "wind."], interval: "1 second" })
          ]
        }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const fiber = yield* Effect.fork(Stream.runCollect(client.completions.create(streamed)))
      yield* settle
      assert.strictEqual((yield* statusOf(client, GPT)).state, "half-open")
      yield* TestClock.adjust("1 second") // the first content: the commit
      assert.deepStrictEqual(yield* statusOf(client, GPT), status(GPT, { recentCalls: 1, opens: 1, recentRequests: 1 }))
      yield* TestClock.adjust("1 second")
      const chunks = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      assert.strictEqual(chunks.map(ChatCompletion.chunkText).join(""), "Salt wind.")
    }).pipe(unjittered)
  )

  it.effect("a stream broken after its commit counts a failure, with its own reason", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT }, { model: HAIKU }] },
        { [GPT]: [breakAfter(2, "Transport")] }
      )
      const fiber = yield* Effect.fork(Effect.either(Stream.runCollect(client.completions.create(streamed))))
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      assert.isTrue(Either.isLeft(result) && result.left._tag === "StreamInterrupted")
      // A success at the commit, then the failure.
      assert.deepStrictEqual(
        yield* statusOf(client, GPT),
        status(GPT, { consecutiveFailures: 1, recentCalls: 2, recentFailures: 1, recentRequests: 1 })
      )
    })
  )

  it.effect("a probe stream that commits late and then breaks still counts its failure", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [...Array(3).fill(fail("ServerError")), delay("1 second", breakAfter(2, "Transport"))] }
      )
      yield* openByRequests(client)
      yield* TestClock.setTime(10_000)
      const fiber = yield* Effect.fork(Effect.either(Stream.runCollect(client.completions.create(streamed))))
      yield* TestClock.adjust("1 second") // commits at 11 s (closing the breaker), then breaks
      const result = yield* Fiber.join(fiber)
      assert.isTrue(Either.isLeft(result) && result.left._tag === "StreamInterrupted")
      // The break came after the close: it is news about the model, not a stale failure.
      assert.deepStrictEqual(
        yield* statusOf(client, GPT),
        status(GPT, { consecutiveFailures: 1, recentCalls: 2, recentFailures: 1, opens: 1, recentRequests: 1 })
      )
    }).pipe(unjittered)
  )

  it.effect("streams that fail before their commit count like any call: three open the breaker", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: Array(3).fill(fail("Overloaded", { status: 529 })) }
      )
      for (let i = 0; i < 4; i++) {
        const fiber = yield* Effect.fork(Stream.runCollect(client.completions.create(streamed)))
        yield* settle
        yield* Fiber.join(fiber)
      }
      const gpt = yield* statusOf(client, GPT)
      assert.deepStrictEqual([gpt.state, gpt.until, gpt.reason], ["open", 10_000, "Overloaded"])
      assert.deepStrictEqual(calls(scripted, GPT), [0, 0, 0])
      assert.deepStrictEqual(calls(scripted, HAIKU), [0, 0, 0, 0])
    }).pipe(unjittered)
  )
})
