/**
 * Model health over real HTTP (issue 10, DESIGN §8): the loopback simulator
 * answers on 127.0.0.1, so these tests run on the real clock. Waits are kept
 * short (timeouts of 50 ms, open periods of 0.1 to 0.4 s), and the only
 * tolerances are the ones the real clock forces, each said where it is used:
 * a time the router computed is bracketed by clock readings taken just before
 * and just after the request that made it.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ModelHealth } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { type Attempt, IronlabsAI, IronlabsClient, type IronlabsClientOptions, UndiciHttpClient } from "ironlabsai"
import { Clock, Context, Duration, Effect, Layer, Stream } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

/** The model name the simulator sees for a routed id. */
const wireName = (id: string): string => id.slice(id.indexOf("/") + 1)

/** The Effect client over real HTTP to `sim`, with its own model health; closed with the test's scope. */
const connect = (sim: Simulator.Simulator, reliability: IronlabsClientOptions["reliability"]) =>
  Effect.map(
    Layer.build(
      IronlabsClient.layer({
        reliability,
        openai: { apiKey: "sk-openai-test", baseURL: sim.openaiBaseUrl },
        anthropic: { apiKey: "sk-ant-test", baseURL: sim.anthropicBaseUrl }
      }).pipe(Layer.provide(UndiciHttpClient.layer))
    ),
    (context) => Context.get(context, IronlabsClient)
  )

type Client = Effect.Effect.Success<ReturnType<typeof connect>>

const ask = (client: Client) => client.completions.create({ messages: [{ role: "user", content: "Hi" }] })

/** Runs `effect` between two readings of the clock: `[result, before, after]`. */
const bracketed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const before = yield* Clock.currentTimeMillis
    const result = yield* effect
    const after = yield* Clock.currentTimeMillis
    return [result, before, after] as const
  })

/** Asserts `min <= actual <= max`. */
const within = (actual: number | undefined, min: number, max: number, what: string) => {
  assert.isDefined(actual, what)
  assert.isAtLeast(actual!, min, what)
  assert.isAtMost(actual!, max, what)
}

/** The trace without call durations (real time): each call's outcome, and each skip whole. */
const trace = (attempts: ReadonlyArray<Attempt.Attempt>) =>
  attempts.map((a) => {
    if (a.outcome === "success") return { model: a.model, outcome: a.outcome }
    if (a.outcome === "failure")
      return { model: a.model, outcome: a.outcome, reason: a.error?.reason, status: a.error?.status }
    return { model: a.model, outcome: a.outcome, duration: Duration.toMillis(a.duration), skip: a.skip }
  })

/** Requests the simulator received, per wire model name. */
const calls = (sim: Simulator.Simulator): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const request of sim.requests) counts[request.model ?? "?"] = (counts[request.model ?? "?"] ?? 0) + 1
  return counts
}

/** A model's status with every counter at zero, as `health` reports a model nothing happened to. */
const untouched = (model: string): ModelHealth.ModelStatus => ({
  model,
  state: "healthy",
  consecutiveFailures: 0,
  recentCalls: 0,
  recentFailures: 0,
  opens: 0,
  recentRequests: 0,
  recentRetries: 0
})

/**
 * One form of a 429: its headers, written at `now`, and the bounds of the
 * hold's end given clock readings just before and just after the request
 * that received it. A stated wait runs from when the router records the 429,
 * which the real clock only places between those readings; an absolute time
 * (HTTP date, RFC 3339) is turned into a wait at parsing and back at
 * recording, which can move it later by at most the request's duration.
 */
interface HoldCase {
  readonly name: string
  /** The model that answers 429 (first in the chain, no retries); the other answers. */
  readonly limited: string
  readonly other: string
  readonly reply: (now: number) => {
    readonly headers: Readonly<Record<string, string>>
    readonly bounds: (before: number, after: number) => readonly [number, number]
  }
}

const waitOf =
  (millis: number) =>
  (before: number, after: number): readonly [number, number] => [before + millis, after + millis]

const endsAt =
  (at: number) =>
  (before: number, after: number): readonly [number, number] => [at, at + (after - before)]

const holdCases: ReadonlyArray<HoldCase> = [
  {
    name: "retry-after-ms",
    limited: GPT,
    other: HAIKU,
    reply: () => ({ headers: { "retry-after-ms": "2500" }, bounds: waitOf(2500) })
  },
  {
    name: "retry-after in seconds",
    limited: GPT,
    other: HAIKU,
    reply: () => ({ headers: { "retry-after": "3" }, bounds: waitOf(3000) })
  },
  {
    name: "retry-after as an HTTP date",
    limited: GPT,
    other: HAIKU,
    reply: (now) => {
      // An HTTP date has whole seconds: take one on a second boundary, so nothing is rounded off.
      const at = Math.ceil((now + 4000) / 1000) * 1000
      return { headers: { "retry-after": new Date(at).toUTCString() }, bounds: endsAt(at) }
    }
  },
  {
    name: "OpenAI's x-ratelimit-reset-requests (a Go duration) with the requests limit spent",
    limited: GPT,
    other: HAIKU,
    reply: () => ({
      // The tokens limit is not spent: its later reset does not count.
      headers: {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30.5s",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-tokens": "2m0s"
      },
      bounds: waitOf(90_500)
    })
  },
  {
    name: "Anthropic's anthropic-ratelimit-requests-reset (RFC 3339) with the requests limit spent",
    limited: HAIKU,
    other: GPT,
    reply: (now) => {
      const at = now + 5_250
      return {
        // The tokens limit is not spent: its later reset does not count.
        headers: {
          "anthropic-ratelimit-requests-limit": "50",
          "anthropic-ratelimit-requests-remaining": "0",
          "anthropic-ratelimit-requests-reset": new Date(at).toISOString(),
          "anthropic-ratelimit-tokens-limit": "40000",
          "anthropic-ratelimit-tokens-remaining": "39000",
          "anthropic-ratelimit-tokens-reset": new Date(now + 60_000).toISOString()
        },
        bounds: endsAt(at)
      }
    }
  },
  {
    name: "no header (the default 1 s hold)",
    limited: GPT,
    other: HAIKU,
    reply: () => ({ headers: {}, bounds: waitOf(1000) })
  }
]

describe("Model health over HTTP: holds", () => {
  for (const c of holdCases) {
    it.scopedLive(`a 429 with ${c.name} holds the model; the next request skips it without a call`, () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const client = yield* connect(sim, {
          failover_chain: [{ model: c.limited, max_retries: 0 }, { model: c.other }]
        })
        const { bounds, headers } = c.reply(yield* Clock.currentTimeMillis)
        sim.script(wireName(c.limited), { status: 429, headers })

        const [first, before, after] = yield* bracketed(ask(client))
        assert.strictEqual(first.model, c.other)
        assert.deepStrictEqual(trace(first.attempts), [
          { model: c.limited, outcome: "failure", reason: "RateLimited", status: 429 },
          { model: c.other, outcome: "success" }
        ])
        const [held, other] = yield* client.health
        // The only tolerance: where the real clock put the router's reading (see HoldCase).
        const [min, max] = bounds(before, after)
        within(held?.until, min, max, "until")
        assert.deepStrictEqual(held, {
          ...untouched(c.limited),
          state: "held",
          until: held!.until!,
          reason: "RateLimited",
          recentRequests: 1
        })
        assert.deepStrictEqual(other, { ...untouched(c.other), recentCalls: 1, recentRequests: 1 })

        const second = yield* ask(client)
        assert.strictEqual(second.model, c.other)
        assert.deepStrictEqual(trace(second.attempts), [
          {
            model: c.limited,
            outcome: "skipped",
            duration: 0,
            skip: { reason: "held", until: held!.until!, cause: "RateLimited" }
          },
          { model: c.other, outcome: "success" }
        ])
        assert.deepStrictEqual(calls(sim), { [wireName(c.limited)]: 1, [wireName(c.other)]: 2 })
        // A skip is no request and no call: the held model's status is as it was.
        assert.deepStrictEqual(yield* client.health, [held!, { ...other!, recentCalls: 2, recentRequests: 2 }])
      })
    )
  }
})

describe("Model health over HTTP: a hold ends", () => {
  it.scopedLive("once the stated wait is over, the held model is called again", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const client = yield* connect(sim, { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] })
      const transitions: Array<ModelHealth.Transition> = []
      yield* Effect.forkScoped(Stream.runForEach(client.healthChanges, (t) => Effect.sync(() => transitions.push(t))))
      // Long enough for the next request to be made within it on a loaded machine.
      sim.script("gpt-4o", { status: 429, headers: { "retry-after-ms": "1000" } })

      const [, before, after] = yield* bracketed(ask(client))
      const [held] = yield* client.health
      // The only tolerance: the 429 was recorded, and its 1000 ms started, between `before` and `after`.
      within(held?.until, before + 1000, after + 1000, "held until")
      const skipped = yield* ask(client)
      assert.deepStrictEqual(trace(skipped.attempts), [
        {
          model: GPT,
          outcome: "skipped",
          duration: 0,
          skip: { reason: "held", until: held!.until!, cause: "RateLimited" }
        },
        { model: HAIKU, outcome: "success" }
      ])
      assert.isBelow(yield* Clock.currentTimeMillis, held!.until!, "the skip happened while it was held")

      yield* Effect.sleep(Duration.millis(held!.until! + 10 - (yield* Clock.currentTimeMillis)))
      const again = yield* ask(client)
      assert.strictEqual(again.model, GPT)
      assert.deepStrictEqual(trace(again.attempts), [{ model: GPT, outcome: "success" }])
      assert.deepStrictEqual(calls(sim), { "gpt-4o": 2, "claude-3-5-haiku-20241022": 2 })
      assert.deepStrictEqual(yield* client.health, [
        { ...untouched(GPT), recentCalls: 1, recentRequests: 2 },
        { ...untouched(HAIKU), recentCalls: 2, recentRequests: 2 }
      ])
      // The end of the hold is dated when the hold ran out, not when it was noticed.
      assert.deepStrictEqual(transitions.slice(1), [{ model: GPT, from: "held", to: "healthy", at: held!.until! }])
      assert.deepStrictEqual(
        transitions.slice(0, 1).map(({ at: _, ...t }) => t),
        [{ model: GPT, from: "healthy", to: "held", until: held!.until!, reason: "RateLimited" }]
      )
      within(transitions[0]!.at, before, after, "held at")
    })
  )
})

describe("Model health over HTTP: the breaker", () => {
  it.scopedLive(
    "a hanging model stops receiving calls once its breaker opens, and gets them back after its probe succeeds",
    () =>
      Effect.gen(function* () {
        let hanging = true
        const sim = yield* Simulator.make({ handler: (r) => (hanging && r.model === "gpt-4o" ? { hang: true } : {}) })
        const client = yield* connect(sim, {
          failover_chain: [{ model: GPT, timeout: 0.05, max_retries: 0 }, { model: HAIKU }],
          // Open for 0.4 s jittered to [0.32, 0.48] s: time enough for two requests while it is open.
          health: { consecutive_failures: 3, open_for: 0.4 }
        })
        const transitions: Array<ModelHealth.Transition> = []
        yield* Effect.forkScoped(Stream.runForEach(client.healthChanges, (t) => Effect.sync(() => transitions.push(t))))
        const gptStatus = Effect.map(client.health, ([gpt]) => gpt!)

        // Three requests: each spends its 50 ms on the hanging model, then fails over.
        let opened: readonly [number, number] = [0, 0]
        for (let i = 1; i <= 3; i++) {
          const [response, before, after] = yield* bracketed(ask(client))
          opened = [before, after]
          assert.strictEqual(response.model, HAIKU)
          assert.deepStrictEqual(trace(response.attempts), [
            { model: GPT, outcome: "failure", reason: "Timeout", status: undefined },
            { model: HAIKU, outcome: "success" }
          ])
          if (i < 3) {
            assert.deepStrictEqual(yield* gptStatus, {
              ...untouched(GPT),
              consecutiveFailures: i,
              recentCalls: i,
              recentFailures: i,
              recentRequests: i
            })
          }
        }
        assert.deepStrictEqual(calls(sim), { "gpt-4o": 3, "claude-3-5-haiku-20241022": 3 })
        // Each timed-out call closed its socket.
        for (const request of sim.requests.filter((r) => r.model === "gpt-4o")) {
          yield* Effect.promise(() => sim.waitForClientClose(request.id))
        }

        const open = yield* gptStatus
        // The open period is jittered to [0.8, 1.2] x 0.4 s, from the third failure, which the real clock
        // places within the third request.
        within(open.until, opened[0] + 320, opened[1] + 480, "open until")
        assert.deepStrictEqual(open, {
          ...untouched(GPT),
          state: "open",
          until: open.until!,
          reason: "Timeout",
          consecutiveFailures: 3,
          recentCalls: 3,
          recentFailures: 3,
          opens: 1,
          recentRequests: 3
        })

        // While open: skipped without a call.
        for (let i = 0; i < 2; i++) {
          const response = yield* ask(client)
          assert.strictEqual(response.model, HAIKU)
          assert.deepStrictEqual(trace(response.attempts), [
            {
              model: GPT,
              outcome: "skipped",
              duration: 0,
              skip: { reason: "open", until: open.until!, cause: "Timeout" }
            },
            { model: HAIKU, outcome: "success" }
          ])
        }
        assert.isBelow(yield* Clock.currentTimeMillis, open.until!, "the skips happened while it was open")
        assert.deepStrictEqual(calls(sim), { "gpt-4o": 3, "claude-3-5-haiku-20241022": 5 })

        // The model recovers; once the open period is over it is half-open.
        hanging = false
        yield* Effect.sleep(Duration.millis(open.until! + 10 - (yield* Clock.currentTimeMillis)))
        assert.deepStrictEqual(yield* gptStatus, {
          ...untouched(GPT),
          state: "half-open",
          reason: "Timeout",
          consecutiveFailures: 3,
          recentCalls: 3,
          recentFailures: 3,
          opens: 1,
          recentRequests: 3
        })

        // The next request is the probe: exactly one call, which answers and closes the breaker.
        const [probe, probeBefore, probeAfter] = yield* bracketed(ask(client))
        assert.strictEqual(probe.model, GPT)
        assert.deepStrictEqual(trace(probe.attempts), [{ model: GPT, outcome: "success" }])
        assert.deepStrictEqual(calls(sim), { "gpt-4o": 4, "claude-3-5-haiku-20241022": 5 })
        assert.deepStrictEqual(yield* gptStatus, { ...untouched(GPT), recentCalls: 1, opens: 1, recentRequests: 4 })

        // And the model gets its calls back.
        for (let i = 0; i < 2; i++) {
          const response = yield* ask(client)
          assert.strictEqual(response.model, GPT)
          assert.deepStrictEqual(trace(response.attempts), [{ model: GPT, outcome: "success" }])
        }
        assert.deepStrictEqual(calls(sim), { "gpt-4o": 6, "claude-3-5-haiku-20241022": 5 })
        assert.deepStrictEqual(yield* client.health, [
          { ...untouched(GPT), recentCalls: 3, opens: 1, recentRequests: 6 },
          { ...untouched(HAIKU), recentCalls: 5, recentRequests: 5 }
        ])

        // The transitions, as healthChanges streamed them: only the hanging model changed.
        assert.deepStrictEqual(
          transitions.map(({ at: _, ...t }) => t),
          [
            { model: GPT, from: "healthy", to: "open", until: open.until!, reason: "Timeout" },
            { model: GPT, from: "open", to: "half-open", reason: "Timeout" },
            { model: GPT, from: "half-open", to: "healthy" }
          ]
        )
        within(transitions[0]!.at, opened[0], opened[1], "opened at")
        // A change that time alone makes is dated when it happened.
        assert.strictEqual(transitions[1]!.at, open.until!)
        within(transitions[2]!.at, probeBefore, probeAfter, "closed at")
      })
  )

  it.scopedLive(
    "while half-open, one request is the probe and a concurrent one skips the model; the probe's failure reopens it for twice as long",
    () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const client = yield* connect(sim, {
          failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }],
          health: { consecutive_failures: 1, open_for: 0.1 }
        })
        // The probe answers late, so that the other request arrives while it is out.
        sim.script("gpt-4o", { status: 500 }, { status: 500, latency: "50 millis" })
        const gptStatus = Effect.map(client.health, ([gpt]) => gpt!)

        const [first, before, after] = yield* bracketed(ask(client))
        assert.deepStrictEqual(trace(first.attempts), [
          { model: GPT, outcome: "failure", reason: "ServerError", status: 500 },
          { model: HAIKU, outcome: "success" }
        ])
        const open = yield* gptStatus
        // Jittered to [0.8, 1.2] x 0.1 s from the failure, which the real clock places within the request.
        within(open.until, before + 80, after + 120, "open until")
        assert.deepStrictEqual([open.state, open.reason, open.opens], ["open", "ServerError", 1])

        yield* Effect.sleep(Duration.millis(open.until! + 10 - (yield* Clock.currentTimeMillis)))
        assert.strictEqual((yield* gptStatus).state, "half-open")
        const [both, probeBefore, probeAfter] = yield* bracketed(
          Effect.all([ask(client), ask(client)], { concurrency: "unbounded" })
        )
        const traces = both.map((response) => trace(response.attempts))
        // Which of the two took the permit is up to the scheduler; one did, the other skipped.
        traces.sort((a, b) => Number(a[0]!.outcome === "skipped") - Number(b[0]!.outcome === "skipped"))
        assert.deepStrictEqual(traces, [
          [
            { model: GPT, outcome: "failure", reason: "ServerError", status: 500 },
            { model: HAIKU, outcome: "success" }
          ],
          [
            { model: GPT, outcome: "skipped", duration: 0, skip: { reason: "half-open", cause: "ServerError" } },
            { model: HAIKU, outcome: "success" }
          ]
        ])
        assert.deepStrictEqual(calls(sim), { "gpt-4o": 2, "claude-3-5-haiku-20241022": 3 })

        const reopened = yield* gptStatus
        // Open twice in a row: [0.8, 1.2] x 0.2 s from the probe's failure, at least 50 ms into the pair.
        within(reopened.until, probeBefore + 50 + 160, probeAfter + 240, "reopened until")
        assert.deepStrictEqual([reopened.state, reopened.reason, reopened.opens], ["open", "ServerError", 2])
      })
  )
})

describe("Model health over HTTP: the Promise facade", () => {
  it("client.health() returns each plan model's state synchronously, in plan order, as requests change it", async () => {
    const sim = await Simulator.start()
    const client = new IronlabsAI({
      reliability: {
        failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }],
        health: { on_all_unavailable: "fail" }
      },
      openai: { apiKey: "sk-openai-test", baseURL: sim.openaiBaseUrl },
      anthropic: { apiKey: "sk-ant-test", baseURL: sim.anthropicBaseUrl }
    })
    const hi = { messages: [{ role: "user", content: "Hi" }] } as const
    const rejection = async (promise: Promise<unknown>) => {
      try {
        await promise
      } catch (error) {
        return error as Error & Record<string, unknown>
      }
      return assert.fail("expected a rejection")
    }
    try {
      const initial = client.health()
      assert.isArray(initial)
      assert.deepStrictEqual(initial, [untouched(GPT), untouched(HAIKU)])

      // A 429 holds gpt-4o for its retry-after.
      sim.script("gpt-4o", { status: 429, headers: { "retry-after": "2" } })
      const before = Date.now()
      const first = await client.completions.create(hi)
      const after = Date.now()
      assert.strictEqual(first.model, HAIKU)
      const [held, haiku] = client.health()
      // The only tolerance: the 429 was recorded, and its 2 s started, between `before` and `after`.
      within(held?.until, before + 2000, after + 2000, "held until")
      assert.deepStrictEqual(client.health(), [
        { ...untouched(GPT), state: "held", until: held!.until!, reason: "RateLimited", recentRequests: 1 },
        { ...untouched(HAIKU), recentCalls: 1, recentRequests: 1 }
      ])
      assert.deepStrictEqual(haiku, { ...untouched(HAIKU), recentCalls: 1, recentRequests: 1 })

      // A 401 holds the other long (5 min by default): the request skips gpt-4o and fails on haiku.
      sim.script("claude-3-5-haiku-20241022", { status: 401 })
      const before2 = Date.now()
      const failed = await rejection(client.completions.create(hi))
      const after2 = Date.now()
      assert.strictEqual(failed._tag, "AllModelsFailed")
      assert.deepStrictEqual(trace(failed.attempts as ReadonlyArray<Attempt.Attempt>), [
        {
          model: GPT,
          outcome: "skipped",
          duration: 0,
          skip: { reason: "held", until: held!.until!, cause: "RateLimited" }
        },
        { model: HAIKU, outcome: "failure", reason: "Authentication", status: 401 }
      ])
      const [, locked] = client.health()
      within(locked?.until, before2 + 300_000, after2 + 300_000, "long hold until")
      const both: ReadonlyArray<ModelHealth.ModelStatus> = [
        { ...untouched(GPT), state: "held", until: held!.until!, reason: "RateLimited", recentRequests: 1 },
        {
          ...untouched(HAIKU),
          state: "held",
          until: locked!.until!,
          reason: "Authentication",
          recentCalls: 1,
          recentRequests: 2
        }
      ]
      assert.deepStrictEqual(client.health(), both)

      // Both held, on_all_unavailable "fail": NoModelAvailable at once, without a call.
      const none = await rejection(client.completions.create(hi))
      assert.strictEqual(none._tag, "NoModelAvailable")
      assert.deepStrictEqual(none.models, both)
      assert.strictEqual(none.retryAt, held!.until!)
      assert.deepStrictEqual(trace(none.attempts as ReadonlyArray<Attempt.Attempt>), [
        {
          model: GPT,
          outcome: "skipped",
          duration: 0,
          skip: { reason: "held", until: held!.until!, cause: "RateLimited" }
        },
        {
          model: HAIKU,
          outcome: "skipped",
          duration: 0,
          skip: { reason: "held", until: locked!.until!, cause: "Authentication" }
        }
      ])
      assert.deepStrictEqual(calls(sim), { "gpt-4o": 1, "claude-3-5-haiku-20241022": 2 })
      assert.deepStrictEqual(client.health(), both)
    } finally {
      await client.close()
      await sim.close()
    }
  })
})
