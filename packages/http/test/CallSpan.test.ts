import { assert, describe, it } from "@effect/vitest"
import { ModelId } from "@ironlabsai/core"
import { CallSpan } from "@ironlabsai/http"
import { Effect, Option, Tracer } from "effect"

const model = ModelId.parse("openai/gpt-4o")!
/** The span a provider call runs in, if any. */
const spanInCall = CallSpan.withCallSpan(
  { system: "openai", model, url: "http://127.0.0.1/v1/chat/completions" },
  (traced) =>
    Effect.map(Effect.option(Effect.currentSpan), (span) => {
      // The call is told whether it is traced, so it can turn its HTTP client's span off.
      assert.strictEqual(traced, Option.isSome(span))
      return Option.map(span, (s) => s.name)
    })
)

/** A tracer that records the names of the spans it makes, over the built-in one. */
const recording = Effect.map(Effect.tracer, (base) => {
  const names: Array<string> = []
  const tracer = Tracer.make({
    span: (...args) => {
      names.push(args[0])
      return base.span(...args)
    },
    context: base.context
  })
  return { names, tracer }
})

describe("CallSpan.withCallSpan", () => {
  it.effect("makes its span, with model and URL and no header, when a tracer is installed", () =>
    Effect.gen(function* () {
      const { names, tracer } = yield* recording
      const span = yield* Effect.withTracer(
        Effect.flatMap(spanInCall, () => Effect.currentSpan),
        tracer
      ).pipe(Effect.option)
      assert.deepStrictEqual(names, ["ironlabsai.provider.call"])
      assert.isTrue(Option.isNone(span), "the span ends with the call")
      assert.deepStrictEqual(yield* Effect.withTracer(spanInCall, tracer), Option.some("ironlabsai.provider.call"))
    })
  )

  it.effect("makes none under Effect's built-in tracer, which exports nothing", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* spanInCall, Option.none())
    })
  )

  it.effect("makes none when tracing is turned off, even with a tracer installed", () =>
    Effect.gen(function* () {
      const { names, tracer } = yield* recording
      const inCall = yield* spanInCall.pipe(Effect.withTracerEnabled(false), Effect.withTracer(tracer))
      assert.deepStrictEqual([inCall, names], [Option.none(), []])
    })
  )
})
