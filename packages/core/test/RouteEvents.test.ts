/**
 * The typed route events a listener (`onEvent`) is told, in order, as they
 * happen: each attempt as it ends, each retry with its exact wait, each
 * failover and each skip; and a listener that throws never breaks a request.
 */
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, type Reliability, type RouteEvent } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { type Duration, Effect, Either, Fiber, Random, TestClock } from "effect"

const { delay, fail } = ScriptedProvider
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }] } as const

/**
 * Backoffs and open periods are jittered through `Random`: with r = 0.5 the
 * jitter factor is exactly 1, so a retry waits exactly its backoff and a
 * breaker stays open exactly `open_for`.
 */
const unjittered = Effect.withRandom(Random.fixed([0.5]))

/** A client over scripted providers whose listener keeps every event; `listener` may wrap the recording. */
const setup = (
  reliability: Reliability.Input,
  script: Parameters<typeof ScriptedProvider.make>[0],
  listener: (record: RouteEvent.Listener) => RouteEvent.Listener = (record) => record
) => {
  const events: Array<RouteEvent.RouteEvent> = []
  const scripted = ScriptedProvider.make(script)
  const client = Either.getOrThrow(
    IronlabsClient.makeWith({ reliability, onEvent: listener((event) => events.push(event)) }, scripted.registry)
  )
  return { client, events, scripted }
}

/** Runs a request in a fiber, drives the `TestClock` by `advance`, and returns its result. */
const runToEnd = <A, E>(effect: Effect.Effect<A, E>, advance: Duration.DurationInput = "1 hour") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(advance)
    return yield* Fiber.join(fiber)
  })

describe("RouteEvents", () => {
  it.effect("a failure, its retry with the exact backoff, a second failure, the failover, the success", () =>
    Effect.gen(function* () {
      const { client, events, scripted } = setup(
        { failover_chain: [{ model: GPT, max_retries: 1, backoff: 1.5 }, { model: HAIKU }] },
        {
          [GPT]: [
            delay("200 millis", fail("Overloaded", { status: 503 })),
            delay("300 millis", fail("Overloaded", { status: 503 }))
          ],
          [HAIKU]: [delay("2 seconds")]
        }
      )
      const answer = yield* runToEnd(client.completions.create(ask)).pipe(unjittered)
      assert.strictEqual(answer.model, HAIKU)
      assert.deepStrictEqual(events, [
        {
          type: "attempt",
          model: GPT,
          outcome: "failure",
          attempt: 1,
          duration_ms: 200,
          reason: "Overloaded",
          status: 503,
          probe: false
        },
        { type: "retry", model: GPT, reason: "Overloaded", delay_ms: 1500, attempt: 2 },
        {
          type: "attempt",
          model: GPT,
          outcome: "failure",
          attempt: 2,
          duration_ms: 300,
          reason: "Overloaded",
          status: 503,
          probe: false
        },
        { type: "failover", model: GPT, reason: "Overloaded", status: 503, to_models: 1 },
        { type: "attempt", model: HAIKU, outcome: "success", attempt: 1, duration_ms: 2000, probe: false }
      ])
      // The retry did wait what its event said: 200 ms of call, then 1500 ms.
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt]),
        [
          [GPT, 0],
          [GPT, 1700],
          [HAIKU, 2000]
        ]
      )
    })
  )

  it.effect("a model its breaker opened is skipped, with the reason, the reopening and the cause", () =>
    Effect.gen(function* () {
      const { client, events } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }], health: { consecutive_failures: 3 } },
        { [GPT]: [fail("ServerError", { status: 500 }), fail("ServerError"), fail("ServerError")] }
      )
      // Three requests at t = 0 open the breaker for exactly 10 s (the default open_for, unjittered).
      for (let i = 0; i < 3; i++) yield* client.completions.create(ask).pipe(unjittered)
      assert.deepStrictEqual(
        events.map((e) => [e.type, e.model]),
        [
          ["attempt", GPT],
          ["failover", GPT],
          ["attempt", HAIKU],
          ["attempt", GPT],
          ["failover", GPT],
          ["attempt", HAIKU],
          ["attempt", GPT],
          ["failover", GPT],
          ["attempt", HAIKU]
        ]
      )
      events.length = 0
      yield* TestClock.adjust("4 seconds")
      const answer = yield* client.completions.create(ask).pipe(unjittered)
      assert.strictEqual(answer.model, HAIKU)
      assert.deepStrictEqual(events, [
        { type: "skip", model: GPT, reason: "open", until: 10_000, cause: "ServerError" },
        { type: "attempt", model: HAIKU, outcome: "success", attempt: 1, duration_ms: 0, probe: false }
      ])
    })
  )

  it.effect("a retry the retry budget refuses is a skip, and the request fails over at once", () =>
    Effect.gen(function* () {
      const { client, events, scripted } = setup(
        {
          failover_chain: [{ model: GPT, max_retries: 2, backoff: 1 }, { model: HAIKU }],
          retry_budget: { ratio: 0, min_per_second: 0 }
        },
        { [GPT]: [fail("ServerError", { status: 500 })] }
      )
      const answer = yield* runToEnd(client.completions.create(ask)).pipe(unjittered)
      assert.strictEqual(answer.model, HAIKU)
      assert.deepStrictEqual(events, [
        {
          type: "attempt",
          model: GPT,
          outcome: "failure",
          attempt: 1,
          duration_ms: 0,
          reason: "ServerError",
          status: 500,
          probe: false
        },
        { type: "skip", model: GPT, reason: "retry-budget" },
        { type: "failover", model: GPT, reason: "ServerError", status: 500, to_models: 1 },
        { type: "attempt", model: HAIKU, outcome: "success", attempt: 1, duration_ms: 0, probe: false }
      ])
      // No backoff was waited: the failover came at once.
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt]),
        [
          [GPT, 0],
          [HAIKU, 0]
        ]
      )
    })
  )

  it.effect("a listener that throws on every event does not break the request, and is still told each one", () =>
    Effect.gen(function* () {
      const { client, events, scripted } = setup(
        { failover_chain: [{ model: GPT, max_retries: 1, backoff: 1 }, { model: HAIKU }] },
        { [GPT]: [fail("ServerError", { status: 500 }), fail("ServerError", { status: 500 })] },
        (record) => (event) => {
          record(event)
          throw new Error(`listener failed on ${event.type}`)
        }
      )
      const answer = yield* runToEnd(client.completions.create(ask)).pipe(unjittered)
      assert.strictEqual(answer.model, HAIKU)
      assert.deepStrictEqual(
        answer.attempts.map((a) => [a.model, a.outcome]),
        [
          [GPT, "failure"],
          [GPT, "failure"],
          [HAIKU, "success"]
        ]
      )
      assert.deepStrictEqual(
        events.map((e) => [e.type, e.model]),
        [
          ["attempt", GPT],
          ["retry", GPT],
          ["attempt", GPT],
          ["failover", GPT],
          ["attempt", HAIKU]
        ]
      )
      assert.deepStrictEqual(scripted.order(), [GPT, GPT, HAIKU])
    })
  )
})
