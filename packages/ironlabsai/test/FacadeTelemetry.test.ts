/**
 * The facade with the OpenTelemetry SDK (DESIGN §10), as a Promise program
 * sets it up: a tracer provider registered globally (what `NodeSDK.start()`
 * does), `telemetry: tracing()` for the spans, and `metricProducer()` given
 * to the program's own metric reader for the metrics. Over real HTTP to the
 * loopback simulator.
 */
import { afterAll, afterEach, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { context, propagation, SpanKind, trace } from "@opentelemetry/api"
import { AggregationTemporality, type MetricData, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics"
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor
} from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import { type ClientOptions, IronlabsAI } from "ironlabsai"
import { metricProducer, tracing } from "ironlabsai/OpenTelemetry"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const prompt = "Describe the secret sunset at 7391 Elm Street."
const hi = { messages: [{ role: "user" as const, content: prompt }] }
const failover = { failover_chain: [{ model: GPT, max_retries: 1, backoff: 0.01 }, { model: HAIKU }] }

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ openaiApiKey: "sk-openai-test", anthropicApiKey: "sk-ant-test" })
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterEach(() => Promise.all(clients.splice(0).map((c) => c.close())))

const connect = (options: Omit<ClientOptions, "reliability" | "openai" | "anthropic"> = {}) => {
  const client = new IronlabsAI({
    reliability: failover,
    openai: { apiKey: "sk-openai-test", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-ant-test", baseURL: sim.anthropicBaseUrl },
    logLevel: "silent",
    ...options
  })
  clients.push(client)
  return client
}

/** A tracer provider registered globally, as `NodeSDK.start()` registers one; unregistered after the test. */
const globalTracing = () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
  return { exporter, provider }
}
afterEach(() => {
  trace.disable()
  context.disable()
  propagation.disable()
})

/** A span's parent span id, if it has one. */
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

/** Every attribute value of every span, as one string, to look for what must not be there. */
const allText = (spans: ReadonlyArray<ReadableSpan>) =>
  JSON.stringify(spans.map((span) => [span.name, span.attributes, span.events.map((e) => [e.name, e.attributes])]))

describe("IronlabsAI with OpenTelemetry: spans", () => {
  it("telemetry: tracing() sends one ironlabsai.route span per request and a chat span per call under it", async () => {
    const { exporter, provider } = globalTracing()
    sim.script("gpt-4o", { status: 503 }, { status: 503 })
    const client = connect({ telemetry: tracing() })
    const response = await client.completions.create(hi)
    assert.strictEqual(response.model, HAIKU)
    await provider.forceFlush()
    const spans = exporter.getFinishedSpans()
    const routes = spans.filter((span) => span.name === "ironlabsai.route")
    assert.strictEqual(routes.length, 1)
    const route = routes[0]!
    assert.strictEqual(route.kind, SpanKind.INTERNAL)
    assert.isUndefined(parentOf(route))
    const calls = spans.filter((span) => span.name !== "ironlabsai.route")
    assert.deepStrictEqual(
      calls.map((span) => [span.name, span.kind, parentOf(span), span.spanContext().traceId]),
      [
        ["chat gpt-4o", SpanKind.CLIENT, route.spanContext().spanId, route.spanContext().traceId],
        ["chat gpt-4o", SpanKind.CLIENT, route.spanContext().spanId, route.spanContext().traceId],
        ["chat claude-3-5-haiku-20241022", SpanKind.CLIENT, route.spanContext().spanId, route.spanContext().traceId]
      ]
    )
    assert.deepStrictEqual(
      calls.map((span) => [span.attributes["gen_ai.request.model"], span.attributes["error.type"]]),
      [
        ["gpt-4o", "Overloaded"],
        ["gpt-4o", "Overloaded"],
        ["claude-3-5-haiku-20241022", undefined]
      ]
    )
    // The tracer is the library's: its instrumentation scope says so.
    assert.strictEqual(route.instrumentationScope.name, "ironlabsai")
    // No prompt and no key on any span unless recordContent is on.
    const text = allText(spans)
    for (const secret of ["7391 Elm", "sk-openai-test", "sk-ant-test"]) assert.notInclude(text, secret)
  })

  it("without the telemetry option, no span at all, though a global provider is registered", async () => {
    const { exporter, provider } = globalTracing()
    sim.script("gpt-4o", { status: 503 })
    const client = connect()
    await client.completions.create(hi)
    await provider.forceFlush()
    assert.deepStrictEqual(exporter.getFinishedSpans(), [])
  })

  it("tracing({ tracerProvider }) sends the spans to that provider, not to the global one", async () => {
    const global = globalTracing()
    const exporter = new InMemorySpanExporter()
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    const client = connect({ telemetry: tracing({ tracerProvider }) })
    await client.completions.create(hi)
    await tracerProvider.forceFlush()
    assert.deepStrictEqual(
      exporter.getFinishedSpans().map((span) => span.name),
      ["chat gpt-4o", "ironlabsai.route"]
    )
    assert.deepStrictEqual(global.exporter.getFinishedSpans(), [])
  })

  it("with a context manager registered (NodeTracerProvider.register(), as NodeSDK does), the route span is a child of the caller's active span", async () => {
    const exporter = new InMemorySpanExporter()
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    provider.register()
    const client = connect({ telemetry: tracing() })
    const tracer = trace.getTracer("the-app")
    await tracer.startActiveSpan("handle request", async (span) => {
      await client.completions.create(hi)
      span.end()
    })
    await provider.forceFlush()
    const spans = exporter.getFinishedSpans()
    const byName = new Map(spans.map((span) => [span.name, span]))
    const app = byName.get("handle request")!
    const route = byName.get("ironlabsai.route")!
    assert.strictEqual(parentOf(route), app.spanContext().spanId)
    assert.strictEqual(parentOf(byName.get("chat gpt-4o")!), route.spanContext().spanId)
    assert.strictEqual(route.spanContext().traceId, app.spanContext().traceId)
  })

  it("recordContent: true puts the messages on the chat span", async () => {
    const { exporter, provider } = globalTracing()
    const client = connect({ telemetry: tracing(), recordContent: true })
    await client.completions.create(hi)
    await provider.forceFlush()
    const call = exporter.getFinishedSpans().find((span) => span.name === "chat gpt-4o")!
    assert.include(String(call.attributes["gen_ai.input.messages"]), "7391 Elm")
  })
})

/** A metric reader the test collects from when it likes (no exporter, no timer). */
class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
}

/** What a reader collects: each metric by name, and each of its points by its attributes. */
const collect = async (reader: MetricReader) => {
  const { resourceMetrics, errors } = await reader.collect()
  assert.deepStrictEqual(errors, [])
  const metrics = new Map<string, MetricData>()
  for (const scope of resourceMetrics.scopeMetrics) for (const m of scope.metrics) metrics.set(m.descriptor.name, m)
  return metrics
}

/** A metric's points, `[attributes..., value]`, where value is a sum, or a histogram's count. */
const points = (metric: MetricData | undefined, keys: ReadonlyArray<string>) =>
  new Map(
    (metric?.dataPoints ?? []).map((point) => [
      JSON.stringify(keys.map((key) => point.attributes[key] ?? null)),
      typeof point.value === "number" ? point.value : (point.value as { readonly count: number }).count
    ])
  )

/** What was added to each point between two collections (the metrics are cumulative, and the process's). */
const added = (before: Map<string, number>, after: Map<string, number>) =>
  Object.fromEntries(
    Array.from(after, ([key, value]) => [key, value - (before.get(key) ?? 0)]).filter(([, value]) => value !== 0)
  )

describe("IronlabsAI with OpenTelemetry: metrics", () => {
  it("metricProducer() given to the program's reader brings the GenAI and router metrics into its collection", async () => {
    const reader = new CollectingReader({ metricProducers: [metricProducer()] })
    const meterProvider = new MeterProvider({ readers: [reader] })
    // The program's own metrics are still collected beside ours.
    meterProvider.getMeter("the-app").createCounter("app.requests").add(1)
    const attempts = ["ironlabsai.model", "ironlabsai.outcome", "ironlabsai.reason"]
    const durations = ["gen_ai.request.model", "error.type"]
    const before = await collect(reader)
    sim.script("gpt-4o", { status: 503 }, { status: 503 })
    const client = connect()
    await client.completions.create(hi)
    const after = await collect(reader)
    assert.isTrue(after.has("app.requests"))
    const counter = after.get("ironlabsai.router.attempts")
    assert.isDefined(counter)
    assert.strictEqual(counter!.aggregationTemporality, AggregationTemporality.CUMULATIVE)
    assert.deepStrictEqual(
      added(points(before.get("ironlabsai.router.attempts"), attempts), points(counter, attempts)),
      {
        [JSON.stringify([GPT, "failure", "Overloaded"])]: 2,
        [JSON.stringify([HAIKU, "success", null])]: 1
      }
    )
    // The duration of each call, by model and error type.
    const duration = after.get("gen_ai.client.operation.duration")
    assert.isDefined(duration)
    assert.deepStrictEqual(
      added(points(before.get("gen_ai.client.operation.duration"), durations), points(duration, durations)),
      {
        [JSON.stringify(["gpt-4o", "Overloaded"])]: 2,
        [JSON.stringify(["claude-3-5-haiku-20241022", null])]: 1
      }
    )
    await meterProvider.shutdown()
  })
})
