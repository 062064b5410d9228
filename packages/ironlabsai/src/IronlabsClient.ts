/**
 * The client service with the real providers: `IronlabsClient.layer(options)`
 * needs only an `HttpClient`. It is the same `Context.Tag` as core's, so a
 * program written against it runs unchanged over scripted providers.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { IronlabsClient } from "ironlabsai"
 *
 * const Client = IronlabsClient.layer({
 *   reliability: { weights: { "openai/gpt-4o": 0.7, "anthropic/claude-3-5-haiku-20241022": 0.3 } }
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 *
 * const program = Effect.gen(function* () {
 *   const client = yield* IronlabsClient
 *   const response = yield* client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
 *   console.log(response.choices[0]?.message.content, response.model)
 * }).pipe(Effect.provide(Client))
 *
 * @since 0.1.0
 */
import type { HttpClient } from "@effect/platform"
import { IronlabsClient as Core, type Provider, type Reliability } from "@ironlabsai/core"
import { Layer } from "effect"
import * as DefaultProviders from "./DefaultProviders.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Core.Options, DefaultProviders.Options {}

/**
 * The client service. `yield* IronlabsClient` gives its `completions.create`.
 *
 * @since 0.1.0
 * @category tags
 */
export class IronlabsClient extends Core.IronlabsClient {
  /**
   * The client over the OpenAI and Anthropic providers, configured from env
   * with `options` taking precedence.
   *
   * @since 0.1.0
   */
  static layer(
    options: Options
  ): Layer.Layer<
    Core.IronlabsClient,
    Reliability.ReliabilityConfigError | DefaultProviders.ConnectionConfigError,
    HttpClient.HttpClient
  > {
    // A provider the config's models use must have its key: a missing one fails the layer, naming it.
    const used = DefaultProviders.usedBy(options.reliability)
    return Core.layerWithProviders(options).pipe(Layer.provide(DefaultProviders.layer(options, used)))
  }

  /**
   * The client over the `Providers` in context (scripted ones in a test).
   *
   * @since 0.1.0
   */
  static layerWithProviders(
    options: Core.Options
  ): Layer.Layer<Core.IronlabsClient, Reliability.ReliabilityConfigError, Provider.Providers> {
    return Core.layerWithProviders(options)
  }
}
