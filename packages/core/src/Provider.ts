/**
 * What the router needs of a provider: one call that turns a request for a
 * model into a `ChatCompletion` or a `ProviderError`. A provider knows one wire
 * format and nothing about routing: it never retries.
 *
 * @example
 * import { Effect, Stream } from "effect"
 * import { Provider, ProviderError } from "@ironlabsai/core"
 *
 * const overloaded = (model: string) => ProviderError.ProviderError.fromReason({ reason: "Overloaded", model })
 * const down: Provider.Provider = {
 *   complete: ({ model }) => Effect.fail(overloaded(model.id)),
 *   stream: ({ model }) => Stream.fail(overloaded(model.id))
 * }
 * const registry = Provider.registry({ example: down })
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, FiberRef, Layer, Option, Redacted, Tracer } from "effect"
import * as DefaultServices from "effect/DefaultServices"
import { globalValue } from "effect/GlobalValue"
import type { Stream } from "effect"
import type * as ChatCompletion from "./ChatCompletion.js"
import type * as ModelId from "./ModelId.js"
import type * as ProviderError from "./ProviderError.js"

/**
 * One call to one model.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallRequest {
  /** The routed model: `model.name` goes on the wire, `model.id` into errors. */
  readonly model: ModelId.ModelId
  /** The caller's request with the model's extra messages already appended. */
  readonly request: ChatCompletion.ChatCompletionRequest
}

/**
 * A provider: one wire format. Interrupting `complete` must abort the call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Provider {
  readonly complete: (call: CallRequest) => Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError>
  /**
   * The same call, streamed as OpenAI chunks. The stream fails (never ends
   * cleanly) when the wire's end event does not arrive.
   */
  readonly stream: (call: CallRequest) => Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>
  /**
   * `"native"` when the provider's HTTP stack enforces `currentDeadline` itself
   * (it aborts the request when the deadline passes): the router then skips the
   * fiber and timer of `Effect.timeout` for each attempt.
   */
  readonly deadlines?: "native" | undefined
}

/**
 * The deadline of the attempt in flight, in epoch millis, for a stack with
 * native deadlines. The router sets it around `complete`.
 *
 * @since 0.1.0
 * @category deadlines
 */
export const currentDeadline: FiberRef.FiberRef<number | undefined> = globalValue(
  "ironlabsai/Provider/currentDeadline",
  () => FiberRef.unsafeMake<number | undefined>(undefined)
)

/**
 * Provided by an HTTP client layer that enforces `currentDeadline` (as
 * `UndiciHttpClient.layer` does), so providers built on it can say so.
 *
 * @since 0.1.0
 * @category deadlines
 */
export class NativeDeadlines extends Context.Tag("ironlabsai/NativeDeadlines")<NativeDeadlines, true>() {}

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
 * @since 0.1.0
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

/**
 * Providers by the prefix of a model id (`openai`, `anthropic`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export type Registry = ReadonlyMap<string, Provider>

/**
 * Builds a registry from a record of providers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const registry = (providers: Readonly<Record<string, Provider>>): Registry => new Map(Object.entries(providers))

/**
 * The providers a client routes over, as a service, so that a test can provide
 * scripted ones and a program real ones.
 *
 * @since 0.1.0
 * @category tags
 */
export class Providers extends Context.Tag("ironlabsai/Providers")<Providers, Registry>() {}

/**
 * A layer holding the given providers.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (providers: Readonly<Record<string, Provider>>): Layer.Layer<Providers> =>
  Layer.succeed(Providers, registry(providers))

/**
 * How an HTTP provider reaches its API. Every wire package takes these.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions {
  /** The key; without one every call fails with `Authentication` and sends nothing. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The API's base URL; each wire has its official default. */
  readonly baseURL?: string | undefined
  /** The response size cap in bytes. Default 16 MiB. */
  readonly maxResponseBytes?: number | undefined
}

/**
 * Connection options from `Config` (env by default): `<PREFIX>_API_KEY`, read
 * as `Redacted`, and `<PREFIX>_BASE_URL`, as the official SDKs name them.
 *
 * @since 0.1.0
 * @category config
 */
export const connectionConfig = (prefix: string): Config.Config<ConnectionOptions> =>
  Config.all({
    apiKey: Config.option(Config.redacted(`${prefix}_API_KEY`)).pipe(Config.map(Option.getOrUndefined)),
    baseURL: Config.option(Config.string(`${prefix}_BASE_URL`)).pipe(Config.map(Option.getOrUndefined))
  })

/**
 * One thing wrong with connection options.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionProblem {
  readonly field: "apiKey" | "baseURL"
  readonly message: string
}

/**
 * What makes connection options unusable: a key with a control character (it
 * would split headers; the key is never echoed), or a base URL that is not
 * http(s) or carries `user:password@` (a credential in a URL ends up in logs).
 * A missing key is not a problem here: the provider fails each call instead.
 *
 * @since 0.1.0
 * @category validation
 */
export const connectionProblems = (options: ConnectionOptions): ReadonlyArray<ConnectionProblem> => {
  const problems: Array<ConnectionProblem> = []
  if (options.apiKey !== undefined) {
    const key = Redacted.value(options.apiKey)
    if (key.trim() === "") problems.push({ field: "apiKey", message: "is empty" })
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    else if (/[\u0000-\u001f\u007f]/.test(key)) {
      problems.push({ field: "apiKey", message: "contains a control character (CR, LF, NUL...); the key is not shown" })
    }
  }
  if (options.baseURL !== undefined) {
    const url = URL.canParse(options.baseURL) ? new URL(options.baseURL) : undefined
    if (url === undefined) problems.push({ field: "baseURL", message: "is not a URL" })
    else if (url.protocol !== "http:" && url.protocol !== "https:") {
      problems.push({ field: "baseURL", message: `must be http or https, not ${url.protocol.slice(0, 20)}` })
    } else if (url.username !== "" || url.password !== "") {
      problems.push({ field: "baseURL", message: "must not carry user:password@ (the URL is not shown)" })
    }
  }
  return problems
}
