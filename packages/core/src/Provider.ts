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
import { Context, Layer } from "effect"
import type { Duration, Effect, Stream } from "effect"
import type * as ChatCompletion from "./ChatCompletion.js"
import type * as Deadline from "./Deadline.js"
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
  /**
   * Called (and run) by a wire that reads the provider's rate-limit headers
   * on a reply that succeeded, when they say a limit of this model has
   * nothing left: the router holds the model until it resets, before it
   * answers 429. Not called when something is left or the headers say
   * nothing (or `-1`, unknown).
   */
  readonly onLimitSpent?: ((spent: LimitSpent) => Effect.Effect<void>) | undefined
}

/**
 * A rate limit with nothing left, as a successful reply's headers say:
 * which limit, and how long until it resets.
 *
 * @since 0.3.0
 * @category models
 */
export interface LimitSpent {
  readonly limit: "requests" | "tokens"
  readonly resetsIn: Duration.Duration
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
   * How the attempt's deadline is enforced (see `Deadline`): `"cooperative"`
   * when the provider's HTTP stack reads `Deadline.current` and aborts the
   * request itself, so the router spares the fiber and timer of
   * `Effect.timeout`; `"aggressive"` (the default) when the router must
   * interrupt the call.
   */
  readonly deadline?: Deadline.Strategy | undefined
  /**
   * The fields of `request` this provider cannot serve for `model`, or none.
   * Each is a path (`seed`, `messages[2].content[1]`, `tools[0].function.strict`;
   * `ChatCompletion.fieldPath` quotes a key that is not an identifier) to the
   * smallest part whose removal makes the request servable. The router never
   * sends such a request to it: the model is skipped, and the trace names the
   * fields; with `drop_unsupported_params`, it gets the request without them
   * (`ChatCompletion.withoutFields`) and the trace says what was dropped. A
   * provider that translates a request must list here whatever it would
   * otherwise leave out: nothing a caller sends is dropped silently.
   */
  readonly unsupported?: ((call: CallRequest) => ReadonlyArray<string>) | undefined
  /** Where the provider's calls go, for telemetry (`server.address`, `server.port`). */
  readonly server?: Server | undefined
}

/**
 * The host and port a provider calls.
 *
 * @since 0.4.0
 * @category models
 */
export interface Server {
  readonly address: string
  readonly port: number
}

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
