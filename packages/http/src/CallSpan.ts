/**
 * The client span of one provider call, made only when a tracer can see it.
 *
 * @example
 * import { Effect } from "effect"
 * import { CallSpan } from "@ironlabsai/http"
 * import { ModelId } from "@ironlabsai/core"
 *
 * const model = ModelId.parse("openai/gpt-4o")!
 * const call = CallSpan.withCallSpan({ system: "openai", model, url: "https://api.openai.com/v1/chat/completions" }, (traced) =>
 *   Effect.succeed(traced)
 * )
 *
 * @since 0.2.0
 */
import type { ModelId } from "@ironlabsai/core"
import { Context, Effect, FiberRef, Tracer } from "effect"
import * as DefaultServices from "effect/DefaultServices"

/**
 * Runs one provider call in a client span named `ironlabsai.provider.call`,
 * with the provider, the wire model and the URL (never a header).
 *
 * The span is made only when someone can see it: a tracer is installed
 * (`Layer.setTracer`, `@effect/opentelemetry`) and tracing is not turned off
 * (`Effect.withTracerEnabled(false)`). Effect's built-in tracer exports
 * nothing, and a span costs more than the rest of the call's bookkeeping.
 * `call` is told which: when traced, it must turn its HTTP client's own span
 * off (`HttpClient.withTracerDisabledWhen`), because the platform's span keeps
 * the request, key header included, in its exit.
 *
 * @since 0.2.0
 * @category tracing
 */
export const withCallSpan = <A, E, R>(
  span: { readonly system: string; readonly model: ModelId.ModelId; readonly url: string },
  call: (traced: boolean) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const tracer = Context.get(fiber.currentDefaultServices, Tracer.Tracer)
    if (tracer === builtInTracer || !fiber.getFiberRef(FiberRef.currentTracerEnabled)) return call(false)
    return Effect.withSpan(call(true), "ironlabsai.provider.call", {
      kind: "client",
      // A stack trace per call costs more than the rest of the span; the attributes say where it came from.
      captureStackTrace: false,
      attributes: {
        "gen_ai.system": span.system,
        "gen_ai.request.model": span.model.name,
        "ironlabsai.model": span.model.id,
        "url.full": span.url
      }
    })
  })

/** The tracer every fiber has until one is installed: it keeps its spans to itself. */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)
