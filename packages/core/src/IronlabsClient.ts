/**
 * The client service: `completions.create` routes a request over the
 * configured models. This module builds it from an explicit provider registry
 * (the `Providers` service), so routing runs with scripted providers and no
 * HTTP; the `ironlabsai` package adds a layer with the real providers.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { IronlabsClient, Provider } from "@ironlabsai/core"
 *
 * declare const providers: Layer.Layer<Provider.Providers>
 * const Client = IronlabsClient.layer({ reliability: { failover_chain: [{ model: "openai/gpt-4o" }] } }).pipe(
 *   Layer.provide(providers)
 * )
 * const program = Effect.gen(function* () {
 *   const client = yield* IronlabsClient.IronlabsClient
 *   return yield* client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
 * }).pipe(Effect.provide(Client))
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, Either, Layer } from "effect"
import type { Stream } from "effect"
import type * as ChatCompletion from "./ChatCompletion.js"
import * as Provider from "./Provider.js"
import * as Reliability from "./Reliability.js"
import * as Router from "./Router.js"
import type { RoutingError, StreamInterrupted } from "./RoutingError.js"

/**
 * A duration written with its unit: `"30 seconds"`, `Duration.seconds(30)`.
 * Bare numbers are refused, because Effect would read them as milliseconds
 * beside a reliability config that speaks seconds.
 *
 * @since 0.1.0
 * @category models
 */
export type DurationWithUnit = Exclude<Duration.DurationInput, number | bigint>

/**
 * Options of one `create` call.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  /** The overall deadline of this request, all attempts and backoff included. */
  readonly timeout?: DurationWithUnit | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly plan: Reliability.Plan
  readonly completions: Completions
}

/**
 * `create` answers with a routed completion, or, with `stream: true`, with a
 * `Stream` of OpenAI `chat.completion.chunk`s, as the OpenAI SDK does.
 *
 * @since 0.1.0
 * @category models
 */
export interface Completions {
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
    options?: CreateOptions
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, RoutingError | StreamInterrupted>
  create(
    request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | undefined },
    options?: CreateOptions
  ): Effect.Effect<Router.RoutedCompletion, RoutingError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class IronlabsClient extends Context.Tag("ironlabsai/IronlabsClient")<IronlabsClient, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The seed's config: weights and per-model maps, or `failover_chain`. */
  readonly reliability: Reliability.Input
  /** A default overall deadline for each request. */
  readonly timeout?: DurationWithUnit | undefined
  /** A retry wait longer than this fails over at once. Default 60 s. */
  readonly retryAfterCap?: DurationWithUnit | undefined
}

/**
 * Builds the service over a given registry, validating the config against the
 * registry's provider prefixes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  options: Options,
  providers: Provider.Registry
): Either.Either<Service, Reliability.ReliabilityConfigError> =>
  Either.map(Reliability.decode(options.reliability, { providers: providers.keys() }), (plan) => {
    const routeOptions = (createOptions: CreateOptions | undefined): Router.Options => ({
      deadline: createOptions?.timeout ?? options.timeout,
      retryAfterCap: options.retryAfterCap
    })
    function create(
      request: ChatCompletion.ChatCompletionRequest & { readonly stream: true },
      options?: CreateOptions
    ): Stream.Stream<ChatCompletion.ChatCompletionChunk, RoutingError | StreamInterrupted>
    function create(
      request: ChatCompletion.ChatCompletionRequest & { readonly stream?: false | undefined },
      options?: CreateOptions
    ): Effect.Effect<Router.RoutedCompletion, RoutingError>
    function create(request: ChatCompletion.ChatCompletionRequest, createOptions?: CreateOptions) {
      return request.stream === true
        ? Router.routeStream(plan, providers, request, routeOptions(createOptions))
        : Router.route(plan, providers, request, routeOptions(createOptions))
    }
    return { plan, completions: { create } }
  })

/**
 * Builds the service over the `Providers` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Service, Reliability.ReliabilityConfigError, Provider.Providers> =>
  Effect.flatMap(Provider.Providers, (providers) => makeWith(options, providers))

/**
 * The client as a layer over the `Providers` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<IronlabsClient, Reliability.ReliabilityConfigError, Provider.Providers> =>
  Layer.effect(IronlabsClient, make(options))
