/**
 * Telemetry through the real OpenTelemetry SDK (`@effect/opentelemetry`,
 * in-memory exporters): a request's INTERNAL `ironlabsai.route` span and its
 * CLIENT `chat {model}` spans with their GenAI attributes, the router's span
 * events, the GenAI and router metrics as a metric reader collects them, no
 * key or prompt anywhere unless content recording is on, and no span at all
 * when no tracer would see it.
 */
import { inspect } from "node:util"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { IronlabsClient as CoreClient, type Provider, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider, Simulator } from "@ironlabsai/testing"
import { type Attributes, type HrTime, SpanKind, SpanStatusCode } from "@opentelemetry/api"
import {
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  MetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import {
  Cause,
  Chunk,
  Clock,
  type Duration,
  Effect,
  Either,
  Equal,
  Fiber,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Option,
  Random,
  Stream,
  TestClock,
  Tracer
} from "effect"
import { IronlabsClient } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }] } as const

// --- Harness -------------------------------------------------------------------------------------------------------

/** A metric reader a test collects from when it likes (no timer, no exporter). */
class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
}

/** The in-memory exporter, except that the SDK's shutdown (when the layer is released) keeps what it exported. */
class KeepingExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

/**
 * The OpenTelemetry Node SDK with an in-memory span exporter and a metric
 * reader, as a layer to provide once around a test's program (the reader is
 * shut down with the layer: collect inside it).
 */
const makeOtel = () => {
  const exporter = new KeepingExporter()
  const reader = new CollectingReader()
  return {
    layer: NodeSdk.layer(() => ({
      resource: { serviceName: "ironlabsai-telemetry-test" },
      spanProcessor: new SimpleSpanProcessor(exporter),
      metricReader: reader
    })),
    spans: (): ReadonlyArray<ReadableSpan> => exporter.getFinishedSpans(),
    collect: Effect.promise(() => reader.collect())
  }
}

/**
 * Backoffs and open periods are jittered through `Random`: with r = 0.5 the
 * factor is exactly 1 (a retry waits exactly its backoff, a breaker stays
 * open exactly `open_for`).
 */
const unjittered = Effect.withRandom(Random.fixed([0.5]))

/** A client over scripted providers, with its own in-memory model health from its config. */
const scriptedClient = (
  reliability: Reliability.Input,
  script: Parameters<typeof ScriptedProvider.make>[0],
  options: Omit<CoreClient.Options, "reliability"> = {}
) => {
  const scripted = ScriptedProvider.make(script)
  const client = Either.getOrThrow(CoreClient.makeWith({ reliability, ...options }, scripted.registry))
  return { client, scripted }
}

/** Runs `effect` in a fiber, drives the `TestClock` by `advance`, and returns its result. */
const runToEnd = <A, E>(effect: Effect.Effect<A, E>, advance: Duration.DurationInput = "1 hour") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(advance)
    return yield* Fiber.join(fiber)
  })

/** Epoch millis of an OpenTelemetry time. */
const millis = (time: HrTime): number => time[0] * 1000 + time[1] / 1e6
/** Epoch nanos of an OpenTelemetry time, exactly. */
const nanos = (time: HrTime): bigint => BigInt(time[0]) * 1_000_000_000n + BigInt(time[1])

/**
 * A list attribute as the OpenTelemetry SDK must receive it: a list, as the conventions say
 * (`gen_ai.response.finish_reasons` is a `string[]`), not the JSON text `@effect/opentelemetry` 0.64 makes of
 * any value that is not a string, number or boolean.
 */
const exportedArray = (values: ReadonlyArray<string>): ReadonlyArray<string> => values

const routeSpans = (spans: ReadonlyArray<ReadableSpan>) => spans.filter((s) => s.name === "ironlabsai.route")
const callSpans = (spans: ReadonlyArray<ReadableSpan>) => spans.filter((s) => s.name.startsWith("chat "))

/**
 * The router's own span events (`ironlabsai.*`): name, time (millis) and attributes. Left out: the log
 * lines Effect adds to the current span as events, and the `exception` event of a failed span.
 */
const routerEvents = (span: ReadableSpan) =>
  span.events
    .filter((e) => e.name.startsWith("ironlabsai."))
    .map((e) => ({ name: e.name, at: millis(e.time), attributes: e.attributes ?? {} }))

const isChildOf = (child: ReadableSpan, parent: ReadableSpan): boolean =>
  child.parentSpanContext?.spanId === parent.spanContext().spanId &&
  child.spanContext().traceId === parent.spanContext().traceId

const findMetric = (result: CollectionResult, name: string): MetricData | undefined =>
  result.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name)

/** A metric of a collection, by name. */
const metric = (result: CollectionResult, name: string): MetricData => {
  const found = findMetric(result, name)
  assert.isDefined(found, `no metric ${name}`)
  return found!
}

/** Whether a data point has exactly these attributes, no more and no fewer. */
const hasAttributes = (p: DataPoint<unknown>, attributes: Attributes): boolean =>
  Equal.equals(HashMap.fromIterable(Object.entries(p.attributes)), HashMap.fromIterable(Object.entries(attributes)))

/** The data point of `data` with exactly these attributes. */
const point = <T>(data: MetricData, attributes: Attributes): DataPoint<T> => {
  const found = (data.dataPoints as ReadonlyArray<DataPoint<unknown>>).filter((p) => hasAttributes(p, attributes))
  assert.strictEqual(found.length, 1, `${data.descriptor.name}: one point with ${JSON.stringify(attributes)}`)
  return found[0] as DataPoint<T>
}

/** A histogram's count at the point with exactly these attributes, 0 when there is none yet. */
const countAt = (result: CollectionResult, name: string, attributes: Attributes): number => {
  const points = (findMetric(result, name)?.dataPoints ?? []) as ReadonlyArray<DataPoint<Histogram>>
  return points.find((p) => hasAttributes(p, attributes))?.value.count ?? 0
}

/** A histogram point's count, sum, min and max. */
const summary = (p: DataPoint<Histogram>) => ({
  count: p.value.count,
  sum: p.value.sum,
  min: p.value.min,
  max: p.value.max
})

// --- Spans over scripted providers -----------------------------------------------------------------------------------

describe("Telemetry: spans", () => {
  it.effect("a retry then a failover: one route span, three client spans under it, the retry and failover events", () =>
    Effect.gen(function* () {
      const otel = makeOtel()
      const { client } = scriptedClient(
        { failover_chain: [{ model: GPT, max_retries: 1, backoff: 0.5 }, { model: HAIKU }] },
        {
          [GPT]: [
            ScriptedProvider.delay("100 millis", ScriptedProvider.fail("Overloaded", { status: 503 })),
            ScriptedProvider.delay("100 millis", ScriptedProvider.fail("Overloaded", { status: 503 }))
          ],
          [HAIKU]: [ScriptedProvider.delay("1 second")]
        }
      )
      const answer = yield* runToEnd(client.completions.create({ ...ask, temperature: 0.25, max_tokens: 64 })).pipe(
        unjittered,
        Effect.provide(otel.layer)
      )
      assert.strictEqual(answer.model, HAIKU)

      const spans = otel.spans()
      const routes = routeSpans(spans)
      assert.strictEqual(routes.length, 1)
      const route = routes[0]!
      assert.strictEqual(route.kind, SpanKind.INTERNAL)
      assert.isUndefined(route.parentSpanContext)
      assert.deepStrictEqual(route.attributes, {
        "gen_ai.operation.name": "chat",
        "ironlabsai.strategy": "failover_chain",
        "ironlabsai.stream": false,
        "ironlabsai.attempts": 3,
        "ironlabsai.failovers": 1,
        "ironlabsai.skips": 0,
        "ironlabsai.hedges": 0,
        "ironlabsai.budget_rejections": 0,
        "ironlabsai.model": HAIKU
      })
      assert.deepStrictEqual(route.status, { code: SpanStatusCode.OK })
      assert.deepStrictEqual([millis(route.startTime), millis(route.endTime)], [0, 1700])
      // The first call fails at 100 ms and waits 500 ms; the second fails at 700 ms, and the request fails over.
      assert.deepStrictEqual(routerEvents(route), [
        {
          name: "ironlabsai.retry",
          at: 100,
          attributes: {
            "ironlabsai.model": GPT,
            "ironlabsai.reason": "Overloaded",
            "ironlabsai.delay_ms": 500,
            "ironlabsai.attempt": 2
          }
        },
        {
          name: "ironlabsai.failover",
          at: 700,
          attributes: {
            "ironlabsai.model": GPT,
            "ironlabsai.reason": "Overloaded",
            "ironlabsai.status": 503,
            "ironlabsai.to_models": 1
          }
        }
      ])

      const calls = callSpans(spans)
      assert.deepStrictEqual(
        calls.map((s) => [s.name, s.kind, isChildOf(s, route), millis(s.startTime), millis(s.endTime)]),
        [
          ["chat gpt-4o", SpanKind.CLIENT, true, 0, 100],
          ["chat gpt-4o", SpanKind.CLIENT, true, 600, 700],
          ["chat claude-3-5-haiku-20241022", SpanKind.CLIENT, true, 700, 1700]
        ]
      )
      assert.strictEqual(spans.length, 4)
      const request = { "gen_ai.request.max_tokens": 64, "gen_ai.request.temperature": 0.25 }
      const gpt = (attempt: number) => ({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "ironlabsai.model": GPT,
        "ironlabsai.attempt": attempt,
        ...request,
        "error.type": "Overloaded"
      })
      assert.deepStrictEqual(calls[0]!.attributes, gpt(1))
      assert.deepStrictEqual(calls[1]!.attributes, gpt(2))
      assert.deepStrictEqual(calls[2]!.attributes, {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku-20241022",
        "ironlabsai.model": HAIKU,
        "ironlabsai.attempt": 1,
        ...request,
        // A scripted provider answers with the routed id as its model, and an id made from the time it answers.
        "gen_ai.response.model": HAIKU,
        "gen_ai.response.id": "chatcmpl-scripted-1700",
        "gen_ai.response.finish_reasons": exportedArray(["stop"]),
        "gen_ai.usage.input_tokens": 1,
        "gen_ai.usage.output_tokens": 1
      })
      assert.deepStrictEqual(
        calls.map((s) => s.status.code),
        [SpanStatusCode.ERROR, SpanStatusCode.ERROR, SpanStatusCode.OK]
      )
    })
  )

  it.effect("a 429's hold is a health event; the next request's skip of the held model is a skip event", () =>
    Effect.gen(function* () {
      const otel = makeOtel()
      const { client } = scriptedClient(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [ScriptedProvider.fail("RateLimited", { status: 429, retryAfter: "7 seconds" })] }
      )
      yield* Effect.gen(function* () {
        yield* client.completions.create(ask)
        yield* TestClock.adjust("2 seconds")
        const second = yield* client.completions.create(ask)
        assert.strictEqual(second.model, HAIKU)
      }).pipe(unjittered, Effect.provide(otel.layer))

      const spans = otel.spans()
      const [first, second] = routeSpans(spans)
      assert.strictEqual(routeSpans(spans).length, 2)
      const until = new Date(7_000).toISOString()
      assert.deepStrictEqual(routerEvents(first!), [
        {
          name: "ironlabsai.health",
          at: 0,
          attributes: {
            "ironlabsai.model": GPT,
            "ironlabsai.state": "held",
            "ironlabsai.reason": "RateLimited",
            "ironlabsai.until": until
          }
        },
        {
          name: "ironlabsai.failover",
          at: 0,
          attributes: {
            "ironlabsai.model": GPT,
            "ironlabsai.reason": "RateLimited",
            "ironlabsai.status": 429,
            "ironlabsai.to_models": 1
          }
        }
      ])
      assert.deepStrictEqual(routerEvents(second!), [
        {
          name: "ironlabsai.skip",
          at: 2_000,
          attributes: {
            "ironlabsai.model": GPT,
            "ironlabsai.reason": "held",
            "ironlabsai.until": until,
            "ironlabsai.cause": "RateLimited"
          }
        }
      ])
      assert.deepStrictEqual(
        [first!, second!].map((s) => [
          s.attributes["ironlabsai.attempts"],
          s.attributes["ironlabsai.failovers"],
          s.attributes["ironlabsai.skips"],
          s.attributes["ironlabsai.model"]
        ]),
        [
          [2, 1, 0, HAIKU],
          [1, 0, 1, HAIKU]
        ]
      )
      // The skipped model was not called: the second request has one client span, the answering model's.
      assert.deepStrictEqual(
        callSpans(spans)
          .filter((s) => isChildOf(s, second!))
          .map((s) => s.name),
        ["chat claude-3-5-haiku-20241022"]
      )
    })
  )

  it.effect("a breaker's life as health events: opened by a failure, half-open for its probe, healthy after it", () =>
    Effect.gen(function* () {
      const otel = makeOtel()
      const { client } = scriptedClient(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: Array.from({ length: 3 }, () => ScriptedProvider.fail("ServerError", { status: 500 })) }
      )
      yield* Effect.gen(function* () {
        for (let i = 0; i < 3; i++) yield* client.completions.create(ask)
        // Open for exactly 10 s (unjittered): the probe goes at 10 s and succeeds.
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
      }).pipe(unjittered, Effect.provide(otel.layer))

      const routes = routeSpans(otel.spans())
      assert.strictEqual(routes.length, 4)
      assert.deepStrictEqual(
        routes.map((r) => routerEvents(r).filter((e) => e.name === "ironlabsai.health")),
        [
          [],
          [],
          [
            {
              name: "ironlabsai.health",
              at: 0,
              attributes: {
                "ironlabsai.model": GPT,
                "ironlabsai.state": "open",
                "ironlabsai.reason": "ServerError",
                "ironlabsai.until": new Date(10_000).toISOString()
              }
            }
          ],
          [
            {
              name: "ironlabsai.health",
              at: 10_000,
              attributes: { "ironlabsai.model": GPT, "ironlabsai.state": "half-open" }
            },
            {
              name: "ironlabsai.health",
              at: 10_000,
              attributes: { "ironlabsai.model": GPT, "ironlabsai.state": "healthy" }
            }
          ]
        ]
      )
      // The probe's client span says it is one.
      const probe = callSpans(otel.spans()).filter((s) => isChildOf(s, routes[3]!))
      assert.deepStrictEqual(
        probe.map((s) => [s.name, s.attributes["ironlabsai.probe"]]),
        [["chat gpt-4o", true]]
      )
    })
  )
})

describe("Telemetry: hedging", () => {
  // Models no other test uses, so that their metric points hold this test's values only.
  const SLOW = "openai/hedge-slow"
  const FAST = "anthropic/hedge-fast"

  it.effect(
    "a hedge's span says it is one; the loser's span ends interrupted, without an error.type or a duration",
    () =>
      Effect.gen(function* () {
        const otel = makeOtel()
        const { client } = scriptedClient(
          { failover_chain: [{ model: SLOW }, { model: FAST }], hedge: { delay: 0.3, budget: 1 } },
          { [SLOW]: [ScriptedProvider.delay("10 seconds")], [FAST]: [ScriptedProvider.delay("200 millis")] }
        )
        const metrics = yield* Effect.gen(function* () {
          const answer = yield* runToEnd(client.completions.create(ask))
          assert.strictEqual(answer.model, FAST)
          return yield* otel.collect
        }).pipe(unjittered, Effect.provide(otel.layer))

        const spans = otel.spans()
        const [route] = routeSpans(spans)
        const calls = callSpans(spans)
        assert.deepStrictEqual(
          calls.map((s) => [
            s.name,
            isChildOf(s, route!),
            s.attributes["ironlabsai.hedge"],
            s.attributes["error.type"],
            s.attributes["status.interrupted"],
            s.status.code,
            millis(s.startTime),
            millis(s.endTime)
          ]),
          [
            ["chat hedge-fast", true, true, undefined, undefined, SpanStatusCode.OK, 300, 500],
            ["chat hedge-slow", true, undefined, undefined, true, SpanStatusCode.OK, 0, 500]
          ]
        )
        assert.deepStrictEqual(
          [
            route!.attributes["ironlabsai.attempts"],
            route!.attributes["ironlabsai.hedges"],
            route!.attributes["ironlabsai.model"]
          ],
          [2, 1, FAST]
        )
        assert.deepStrictEqual(routerEvents(route!), [])

        assert.strictEqual(
          point<number>(metric(metrics, "ironlabsai.router.hedges"), { "ironlabsai.model": FAST }).value,
          1
        )
        const attempts = metric(metrics, "ironlabsai.router.attempts")
        assert.strictEqual(
          point<number>(attempts, { "ironlabsai.model": SLOW, "ironlabsai.outcome": "cancelled" }).value,
          1
        )
        // The cancelled call is not an operation that ended: no duration for it, with or without an error.type.
        const durations = metric(metrics, "gen_ai.client.operation.duration").dataPoints.filter(
          (p) => p.attributes["gen_ai.request.model"] === "hedge-slow"
        )
        assert.deepStrictEqual(durations, [])

        // A hedge (a second model called while the first still runs) is not a failover: the request never left a
        // model for another (it has no `ironlabsai.failover` event, as asserted above).
        assert.strictEqual(route!.attributes["ironlabsai.failovers"], 0)
      })
  )
})

// --- Metrics over scripted providers ---------------------------------------------------------------------------------

describe("Telemetry: metrics", () => {
  // Effect metrics are global: these models are used by no other test, so their points hold this test's values only.
  const MGPT = "openai/metrics-gpt"
  const MHAIKU = "anthropic/metrics-haiku"
  const FLAKY = "openai/metrics-flaky"
  const BACKUP = "anthropic/metrics-backup"
  const STINGY = "openai/metrics-stingy"

  it.effect("durations by error.type, token usage, attempts by outcome and reason, a model's state, rejections", () =>
    Effect.gen(function* () {
      const otel = makeOtel()
      const failing = ScriptedProvider.delay("250 millis", ScriptedProvider.fail("Overloaded", { status: 503 }))
      const retried = scriptedClient(
        { failover_chain: [{ model: MGPT, max_retries: 1, backoff: 0.5 }, { model: MHAIKU }] },
        { [MGPT]: [failing, failing], [MHAIKU]: [ScriptedProvider.delay("500 millis")] }
      ).client
      const breaking = scriptedClient(
        { failover_chain: [{ model: FLAKY, max_retries: 0 }, { model: BACKUP }] },
        { [FLAKY]: Array.from({ length: 3 }, () => ScriptedProvider.fail("ServerError", { status: 500 })) }
      ).client
      const budgeted = scriptedClient(
        {
          failover_chain: [{ model: STINGY, max_retries: 1 }, { model: BACKUP }],
          retry_budget: { ratio: 0, min_per_second: 0 }
        },
        { [STINGY]: [ScriptedProvider.fail("ServerError", { status: 500 })] }
      ).client

      const [afterOpen, atEnd] = yield* Effect.gen(function* () {
        yield* runToEnd(retried.completions.create(ask))
        for (let i = 0; i < 3; i++) yield* breaking.completions.create(ask)
        yield* budgeted.completions.create(ask)
        const afterOpen = yield* otel.collect
        // While open (4 s in), FLAKY is skipped; at 10 s its probe succeeds and it is healthy again.
        yield* TestClock.adjust("4 seconds")
        yield* breaking.completions.create(ask)
        yield* TestClock.adjust("6 seconds")
        yield* breaking.completions.create(ask)
        return [afterOpen, yield* otel.collect] as const
      }).pipe(unjittered, Effect.provide(otel.layer))

      const call = (model: string) => {
        const [provider, name] = model.split("/")
        return { "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider!, "gen_ai.request.model": name! }
      }

      const duration = metric(atEnd, "gen_ai.client.operation.duration")
      assert.strictEqual(duration.descriptor.unit, "s")
      const failed = point<Histogram>(duration, { unit: "s", ...call(MGPT), "error.type": "Overloaded" })
      assert.deepStrictEqual(summary(failed), { count: 2, sum: 0.5, min: 0.25, max: 0.25 })
      assert.deepStrictEqual(
        failed.value.buckets.boundaries,
        [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
      )
      const answered = point<Histogram>(duration, { unit: "s", ...call(MHAIKU), "gen_ai.response.model": MHAIKU })
      assert.deepStrictEqual(summary(answered), { count: 1, sum: 0.5, min: 0.5, max: 0.5 })

      const tokens = metric(atEnd, "gen_ai.client.token.usage")
      assert.strictEqual(tokens.descriptor.unit, "{token}")
      const usage = (type: string) =>
        summary(
          point<Histogram>(tokens, {
            unit: "{token}",
            ...call(MHAIKU),
            "gen_ai.response.model": MHAIKU,
            "gen_ai.token.type": type
          })
        )
      // A scripted answer reports 1 prompt token and 1 completion token.
      assert.deepStrictEqual(usage("input"), { count: 1, sum: 1, min: 1, max: 1 })
      assert.deepStrictEqual(usage("output"), { count: 1, sum: 1, min: 1, max: 1 })

      const attempts = metric(atEnd, "ironlabsai.router.attempts")
      const counted = (model: string, outcome: string, reason?: string) =>
        point<number>(attempts, {
          "ironlabsai.model": model,
          "ironlabsai.outcome": outcome,
          ...(reason === undefined ? {} : { "ironlabsai.reason": reason })
        }).value
      assert.deepStrictEqual(
        [
          counted(MGPT, "failure", "Overloaded"),
          counted(MHAIKU, "success"),
          counted(FLAKY, "failure", "ServerError"),
          counted(FLAKY, "skipped", "open"),
          counted(FLAKY, "success"),
          counted(STINGY, "failure", "ServerError"),
          counted(STINGY, "skipped", "retry-budget"),
          counted(BACKUP, "success")
        ],
        [2, 1, 3, 1, 1, 1, 1, 5]
      )
      assert.strictEqual(
        point<number>(metric(atEnd, "ironlabsai.router.retry_budget.rejections"), { "ironlabsai.model": STINGY }).value,
        1
      )

      const state = (result: CollectionResult) =>
        point<number>(metric(result, "ironlabsai.model.state"), { "ironlabsai.model": FLAKY }).value
      assert.strictEqual(state(afterOpen), 3)
      assert.strictEqual(state(atEnd), 0)
    })
  )
})

// --- Over the simulator: real HTTP, real clock ----------------------------------------------------------------------

describe("Telemetry over HTTP", () => {
  const KEY = "sk-canary-3f9a61c2d8"
  const PROMPT = "canary-prompt-7be24: the lighthouse keeper's secret recipe"

  /** The Effect client over the simulator, with `options` beside the reliability config. */
  const httpClient = (
    sim: Simulator.Simulator,
    reliability: Reliability.Input,
    options: { readonly recordContent?: boolean; readonly apiKey?: string } = {}
  ) =>
    IronlabsClient.layer({
      reliability,
      recordContent: options.recordContent,
      openai: { apiKey: options.apiKey ?? "sk-test", baseURL: sim.openaiBaseUrl },
      anthropic: { apiKey: options.apiKey ?? "sk-test", baseURL: sim.anthropicBaseUrl }
    }).pipe(Layer.provide(NodeHttpClient.layerUndici))

  layer(Simulator.layer(), { excludeTestServices: true })((it) => {
    it.effect(
      "a call's server, response id and model, finish reasons and usage; Anthropic's input counts cached tokens",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.SimulatorService
          sim.reset()
          const port = Number(new URL(sim.url).port)
          sim.script("gpt-4o", { finishReason: "length", usage: { promptTokens: 12, completionTokens: 5 } })
          sim.script("claude-3-5-haiku-20241022", {
            usage: { promptTokens: 10, cachedTokens: 100, cacheCreationTokens: 20, completionTokens: 4 }
          })
          const otel = makeOtel()
          const tokensOf = (result: CollectionResult, type: string) =>
            summary(
              point<Histogram>(metric(result, "gen_ai.client.token.usage"), {
                unit: "{token}",
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-3-5-haiku-20241022",
                "server.address": "127.0.0.1",
                "server.port": String(port),
                "gen_ai.response.model": "claude-3-5-haiku-20241022",
                "gen_ai.token.type": type
              })
            )
          const askOf = (reliability: Reliability.Input) =>
            Effect.flatMap(IronlabsClient, (client) => client.completions.create(ask)).pipe(
              Effect.provide(httpClient(sim, reliability))
            )
          const metrics = yield* Effect.gen(function* () {
            yield* askOf({ failover_chain: [{ model: GPT }] })
            yield* askOf({ failover_chain: [{ model: HAIKU }] })
            return yield* otel.collect
          }).pipe(Effect.provide(otel.layer))

          const calls = callSpans(otel.spans())
          assert.deepStrictEqual(
            calls.map((s) => s.attributes),
            [
              {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "ironlabsai.model": GPT,
                "ironlabsai.attempt": 1,
                "server.address": "127.0.0.1",
                "server.port": port,
                "gen_ai.response.model": "gpt-4o",
                "gen_ai.response.id": "chatcmpl-sim-1",
                "gen_ai.response.finish_reasons": exportedArray(["length"]),
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5
              },
              {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-3-5-haiku-20241022",
                "ironlabsai.model": HAIKU,
                "ironlabsai.attempt": 1,
                "server.address": "127.0.0.1",
                "server.port": port,
                "gen_ai.response.model": "claude-3-5-haiku-20241022",
                "gen_ai.response.id": "msg_sim_2",
                "gen_ai.response.finish_reasons": exportedArray(["stop"]),
                // 10 uncached + 100 read from the cache + 20 written to it.
                "gen_ai.usage.input_tokens": 130,
                "gen_ai.usage.output_tokens": 4
              }
            ]
          )
          assert.deepStrictEqual(tokensOf(metrics, "input"), { count: 1, sum: 130, min: 130, max: 130 })
          assert.deepStrictEqual(tokensOf(metrics, "output"), { count: 1, sum: 4, min: 4, max: 4 })
        })
    )

    it.effect(
      "a streamed call's span ends with the stream, with its usage and finish reason; the route span covers it",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.SimulatorService
          sim.reset()
          sim.script("gpt-4o", {
            chunks: ["The ", "sun ", "sinks."],
            chunkInterval: "40 millis",
            usage: { promptTokens: 9, completionTokens: 3 }
          })
          const otel = makeOtel()
          const received: Array<bigint> = []
          const [before, chunks, after] = yield* Effect.gen(function* () {
            const before = yield* otel.collect
            const client = yield* IronlabsClient
            const chunks = yield* client.completions.create({ ...ask, stream: true }).pipe(
              Stream.tap(() => Effect.map(Clock.currentTimeNanos, (now) => received.push(now))),
              Stream.runCollect
            )
            return [before, chunks, yield* otel.collect] as const
          }).pipe(Effect.provide(httpClient(sim, { failover_chain: [{ model: GPT }] })), Effect.provide(otel.layer))
          assert.strictEqual(
            Chunk.toReadonlyArray(chunks)
              .map((c) => c.choices[0]?.delta.content ?? "")
              .join(""),
            "The sun sinks."
          )

          const spans = otel.spans()
          const [route] = routeSpans(spans)
          const [call] = callSpans(spans)
          assert.strictEqual(spans.length, 2)
          assert.isTrue(isChildOf(call!, route!))
          assert.strictEqual(route!.attributes["ironlabsai.stream"], true)
          assert.strictEqual(route!.attributes["ironlabsai.model"], GPT)
          assert.deepStrictEqual(
            [
              call!.attributes["gen_ai.response.id"],
              call!.attributes["gen_ai.response.model"],
              call!.attributes["gen_ai.response.finish_reasons"],
              call!.attributes["gen_ai.usage.input_tokens"],
              call!.attributes["gen_ai.usage.output_tokens"]
            ],
            ["chatcmpl-sim-1", "gpt-4o", exportedArray(["stop"]), 9, 3]
          )
          assert.strictEqual(call!.status.code, SpanStatusCode.OK)
          // The client span ended after the last chunk reached the caller, not at the commit (the first content).
          const last = received.at(-1)!
          assert.isTrue(nanos(call!.endTime) >= last, "the client span ended before the stream did")
          // The route span starts before the call and ends after it.
          assert.isTrue(nanos(route!.startTime) <= nanos(call!.startTime))
          assert.isTrue(nanos(route!.endTime) >= nanos(call!.endTime))
          // One time to the first chunk, and one duration (at the end, with the answering model) for the call.
          const gpt = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "server.address": "127.0.0.1",
            "server.port": new URL(sim.url).port
          }
          const firstChunk = { unit: "s", ...gpt }
          const duration = { unit: "s", ...gpt, "gen_ai.response.model": "gpt-4o" }
          const grew = (name: string, attributes: Attributes) =>
            countAt(after, name, attributes) - countAt(before, name, attributes)
          assert.deepStrictEqual(
            [
              grew("gen_ai.client.operation.time_to_first_chunk", firstChunk),
              grew("gen_ai.client.operation.duration", duration)
            ],
            [1, 1]
          )
          assert.strictEqual(metric(after, "gen_ai.client.operation.time_to_first_chunk").descriptor.unit, "s")
        })
    )

    it.effect(
      "a stream that breaks after its commit: the call's span fails with the wire's reason, the route's with StreamInterrupted",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.SimulatorService
          sim.reset()
          sim.script("gpt-4o", { chunks: ["The ", "sun ", "sinks ", "slowly."], breakAfterChunks: 2 })
          const otel = makeOtel()
          const result = yield* Effect.gen(function* () {
            const client = yield* IronlabsClient
            return yield* Effect.either(Stream.runCollect(client.completions.create({ ...ask, stream: true })))
          }).pipe(
            Effect.provide(httpClient(sim, { failover_chain: [{ model: GPT }, { model: HAIKU }] })),
            Effect.provide(otel.layer)
          )
          assert.isTrue(Either.isLeft(result) && result.left._tag === "StreamInterrupted")

          const spans = otel.spans()
          const [route] = routeSpans(spans)
          const calls = callSpans(spans)
          // Committed to gpt-4o: no failover after the first content.
          assert.deepStrictEqual(
            calls.map((s) => [s.name, s.attributes["error.type"], s.status.code, isChildOf(s, route!)]),
            [["chat gpt-4o", "Transport", SpanStatusCode.ERROR, true]]
          )
          assert.deepStrictEqual(
            [
              route!.attributes["error.type"],
              route!.attributes["ironlabsai.model"],
              route!.attributes["ironlabsai.attempts"],
              route!.status.code
            ],
            ["StreamInterrupted", GPT, 1, SpanStatusCode.ERROR]
          )
          assert.isTrue(nanos(route!.endTime) >= nanos(calls[0]!.endTime))
        })
    )

    it.effect("no key or prompt in any span, metric or log line; with recordContent the prompt is on the span", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        const reliability = {
          failover_chain: [
            { model: GPT, max_retries: 0 },
            { model: HAIKU, max_retries: 1, backoff: 0.01 }
          ],
          // Without model memory: every request calls gpt-4o again (its reply echoes the key).
          health: false
        } as const
        const request = { messages: [{ role: "user", content: PROMPT }] } as const
        /** Everything a run exported or logged, as text. */
        const run = (recordContent: boolean) =>
          Effect.gen(function* () {
            sim.reset()
            const unauthorized = { status: 401, error: { type: "invalid_request_error", message: `bad key ${KEY}` } }
            sim.script("gpt-4o", unauthorized, unauthorized, unauthorized)
            sim.script(
              "claude-3-5-haiku-20241022",
              { status: 500, body: `<html>${KEY}</html>` },
              {},
              {},
              { status: 403, body: KEY }
            )
            const otel = makeOtel()
            const logs: Array<string> = []
            const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
              logs.push(
                `${logLevel.label} ${inspect(message, { depth: 10 })} ${inspect(HashMap.toEntries(annotations), { depth: 10 })} ${Cause.pretty(cause)}`
              )
            })
            const [metrics, failed] = yield* Effect.gen(function* () {
              const client = yield* IronlabsClient
              yield* client.completions.create(request)
              yield* Stream.runDrain(client.completions.create({ ...request, stream: true }))
              const failed = yield* Effect.exit(client.completions.create(request))
              return [yield* otel.collect, failed] as const
            }).pipe(
              Effect.provide(httpClient(sim, reliability, { recordContent, apiKey: KEY })),
              Effect.provide(otel.layer),
              Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
              Logger.withMinimumLogLevel(LogLevel.Debug)
            )
            assert.isTrue(failed._tag === "Failure")
            // The logger saw the router's decisions (debug level included), so the log lines checked are real ones.
            assert.isTrue(logs.some((line) => line.includes("failing over")))
            // The key and the prompt did reach the wire: the check below is a real one.
            assert.strictEqual(sim.requests[0]!.headers.authorization, `Bearer ${KEY}`)
            assert.include(JSON.stringify(sim.requests[0]!.body), PROMPT)
            const spans = otel.spans()
            assert.deepStrictEqual(
              callSpans(spans).map((s) => [s.name, s.attributes["error.type"]]),
              [
                ["chat gpt-4o", "Authentication"],
                ["chat claude-3-5-haiku-20241022", "ServerError"],
                ["chat claude-3-5-haiku-20241022", undefined],
                ["chat gpt-4o", "Authentication"],
                ["chat claude-3-5-haiku-20241022", undefined],
                ["chat gpt-4o", "Authentication"],
                ["chat claude-3-5-haiku-20241022", "PermissionDenied"]
              ]
            )
            const texts = [
              ...spans.flatMap((s) => [
                s.name,
                JSON.stringify(s.attributes),
                JSON.stringify(s.events.map((e) => [e.name, e.attributes])),
                JSON.stringify(s.status),
                JSON.stringify(s.links)
              ]),
              JSON.stringify(metrics.resourceMetrics.scopeMetrics),
              ...logs
            ]
            return { texts, spans }
          })

        const plain = yield* run(false)
        for (const text of plain.texts) {
          assert.notInclude(text, KEY)
          assert.notInclude(text, PROMPT)
        }
        assert.isFalse(
          callSpans(plain.spans).some(
            (s) => "gen_ai.input.messages" in s.attributes || "gen_ai.output.messages" in s.attributes
          )
        )

        // The same check finds the prompt once the client records content: on every call span, as sent.
        const recorded = yield* run(true)
        assert.isTrue(recorded.texts.some((text) => text.includes(PROMPT)))
        for (const text of recorded.texts) assert.notInclude(text, KEY)
        const calls = callSpans(recorded.spans)
        assert.deepStrictEqual(
          calls.map((s) => s.attributes["gen_ai.input.messages"]),
          calls.map(() => JSON.stringify(request.messages))
        )
        assert.deepStrictEqual(
          calls
            .filter((s) => s.attributes["error.type"] === undefined)
            .map((s) => s.attributes["gen_ai.output.messages"]),
          [
            JSON.stringify([{ role: "assistant", content: "Simulated answer from claude-3-5-haiku-20241022." }]),
            JSON.stringify([{ role: "assistant", content: "Simulated answer from claude-3-5-haiku-20241022." }])
          ]
        )
      })
    )
  })
})

// --- Without a tracer ------------------------------------------------------------------------------------------------

describe("Telemetry: no tracer, no span", () => {
  /** The scripted providers, each call noting the name of the span it runs in (or "none"). */
  const spying = (registry: Provider.Registry, seen: Array<string>): Provider.Registry =>
    new Map(
      [...registry].map(([prefix, provider]) => [
        prefix,
        {
          ...provider,
          complete: (call) =>
            Effect.zipRight(
              Effect.map(Effect.option(Effect.currentSpan), (span) => {
                seen.push(Option.match(span, { onNone: () => "none", onSome: (s) => s.name }))
              }),
              provider.complete(call)
            )
        }
      ])
    )

  const setup = () => {
    const seen: Array<string> = []
    const scripted = ScriptedProvider.make({ [GPT]: [ScriptedProvider.fail("ServerError", { status: 500 })] })
    const client = Either.getOrThrow(
      CoreClient.makeWith(
        { reliability: { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] } },
        spying(scripted.registry, seen)
      )
    )
    return { client, seen }
  }

  it.effect("with Effect's built-in tracer only, the router makes no span: a call runs in the caller's span", () =>
    Effect.gen(function* () {
      const { client, seen } = setup()
      yield* client.completions.create(ask).pipe(Effect.withSpan("caller"))
      assert.deepStrictEqual(seen, ["caller", "caller"])

      // A tracer installed (here one that records): each call runs in its own client span under the route span.
      const recorded: Array<Tracer.Span> = []
      const base = yield* Effect.tracer
      const recording = Tracer.make({
        span: (...args) => {
          const span = base.span(...args)
          recorded.push(span)
          return span
        },
        context: base.context
      })
      const traced = setup()
      yield* traced.client.completions.create(ask).pipe(Effect.withSpan("caller"), Effect.withTracer(recording))
      assert.deepStrictEqual(traced.seen, ["chat gpt-4o", "chat claude-3-5-haiku-20241022"])
      assert.deepStrictEqual(
        recorded.map((s) => [
          s.name,
          Option.match(s.parent, { onNone: () => "none", onSome: (p) => (p._tag === "Span" ? p.name : "external") })
        ]),
        [
          ["caller", "none"],
          ["ironlabsai.route", "caller"],
          ["chat gpt-4o", "ironlabsai.route"],
          ["chat claude-3-5-haiku-20241022", "ironlabsai.route"]
        ]
      )
    })
  )

  it.effect("with the OpenTelemetry tracer installed but tracing turned off, nothing is exported", () =>
    Effect.gen(function* () {
      const otel = makeOtel()
      const off = setup()
      const on = setup()
      yield* Effect.gen(function* () {
        yield* off.client.completions.create(ask).pipe(Effect.withTracerEnabled(false))
        assert.deepStrictEqual(otel.spans(), [])
        // The same request with tracing on is exported: the check above can fail.
        yield* on.client.completions.create(ask)
      }).pipe(Effect.provide(otel.layer))
      assert.deepStrictEqual(off.seen, ["none", "none"])
      assert.deepStrictEqual(
        otel.spans().map((s) => s.name),
        ["chat gpt-4o", "chat claude-3-5-haiku-20241022", "ironlabsai.route"]
      )
    })
  )
})
