/**
 * OpenTelemetry for the Promise facade, in its own module so that the facade
 * needs none of the OpenTelemetry packages: `import` it only when they are
 * installed (`@effect/opentelemetry` and the `@opentelemetry/*` packages it
 * takes, the 2.x SDK line).
 *
 * - Spans: `new IronlabsAI({ ..., telemetry: tracing() })` sends one
 *   `ironlabsai.route` span per request and one `chat {model}` client span
 *   per call (the GenAI semantic conventions) to the tracer provider
 *   registered globally (`NodeSDK.start()`, `provider.register()`), as
 *   children of the span active where `create` is called.
 * - Metrics: the router's metrics are Effect metrics, kept in Effect's
 *   registry; `metricProducer()` lets the metric reader of your SDK pull them
 *   at each collection.
 *
 * @example
 * import { PeriodicExportingMetricReader, ConsoleMetricExporter } from "@opentelemetry/sdk-metrics"
 * import { NodeSDK } from "@opentelemetry/sdk-node"
 * import { ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base"
 * import { IronlabsAI } from "ironlabsai"
 * import { metricProducer, tracing } from "ironlabsai/OpenTelemetry"
 *
 * const sdk = new NodeSDK({
 *   traceExporter: new ConsoleSpanExporter(),
 *   metricReader: new PeriodicExportingMetricReader({
 *     exporter: new ConsoleMetricExporter(),
 *     metricProducers: [metricProducer()]
 *   })
 * })
 * sdk.start()
 *
 * const client = new IronlabsAI({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }, { model: "anthropic/claude-3-5-haiku-20241022" }] },
 *   telemetry: tracing()
 * })
 *
 * @since 0.4.0
 */
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import * as Tracer from "@effect/opentelemetry/Tracer"
import type { TracerProvider } from "@opentelemetry/api"
import type { MetricProducer } from "@opentelemetry/sdk-metrics"
import { Effect, Layer } from "effect"
import type { Tracing } from "./IronlabsAI.js"

/**
 * @since 0.4.0
 * @category models
 */
export interface TracingOptions {
  /**
   * The tracer provider the spans go to. `undefined`: the one registered
   * globally (`trace.setGlobalTracerProvider`, which `NodeSDK.start()` and
   * `provider.register()` call), looked up when the client is first used.
   */
  readonly tracerProvider?: TracerProvider | undefined
}

/**
 * The name the library's tracer (its instrumentation scope) goes by. Your
 * SDK's resource, and so your `service.name`, stays as it is.
 */
const scope = Resource.layer({ serviceName: "ironlabsai" })

/**
 * The `telemetry` option of `new IronlabsAI(...)` that sends its spans to an
 * OpenTelemetry tracer provider: the global one, or `tracerProvider`. Without
 * this option the client makes no span at all.
 *
 * @example
 * import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
 * import { IronlabsAI } from "ironlabsai"
 * import { tracing } from "ironlabsai/OpenTelemetry"
 *
 * // A provider of its own, not registered globally.
 * const tracerProvider = new NodeTracerProvider()
 * const client = new IronlabsAI({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }] },
 *   telemetry: tracing({ tracerProvider })
 * })
 *
 * @since 0.4.0
 * @category constructors
 */
export const tracing = (options?: TracingOptions): Tracing => {
  const provider = options?.tracerProvider
  const layer =
    provider === undefined
      ? Tracer.layerGlobal
      : Tracer.layer.pipe(Layer.provide(Layer.succeed(Tracer.OtelTracerProvider, provider)))
  return { _tag: "Tracing", layer: Layer.provide(layer, scope) }
}

/**
 * A `MetricProducer` for your SDK's metric reader, through which it reads
 * the library's metrics: the GenAI client metrics
 * (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
 * `gen_ai.client.operation.time_to_first_chunk`) and the router's own
 * (`ironlabsai.router.attempts`, `ironlabsai.model.state`, ...).
 *
 * Why a producer and not a client option: the library records its metrics
 * as Effect metrics, which live in Effect's registry, not in an
 * OpenTelemetry `MeterProvider`. Your SDK's reader pulls what it exports at
 * each collection, from its meter provider and from the producers it was
 * given, so this producer brings them in beside your own metrics, on your
 * exporter and your schedule. The other way, registering a reader for them
 * (`@effect/opentelemetry`'s `Metrics.layer`), would take over your reader:
 * a reader is bound to one producer, so it would read Effect's registry
 * instead of your meter provider (or fail if your SDK bound it first), and
 * shut down with the client. One producer serves any number of clients; it
 * reads every Effect metric of the process (your own Effect program's too).
 *
 * @example
 * import { ConsoleMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
 * import { metricProducer } from "ironlabsai/OpenTelemetry"
 *
 * const reader = new PeriodicExportingMetricReader({
 *   exporter: new ConsoleMetricExporter(),
 *   metricProducers: [metricProducer()]
 * })
 *
 * @since 0.4.0
 * @category constructors
 */
export const metricProducer = (): MetricProducer => Effect.runSync(Effect.provide(Metrics.makeProducer, scope))
