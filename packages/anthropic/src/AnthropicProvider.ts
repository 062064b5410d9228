/**
 * The Anthropic messages wire: `POST {baseURL}/v1/messages` with `x-api-key`
 * and `anthropic-version`. The request is translated by `AnthropicMessages`
 * (which also names what cannot be, so that the router skips this provider
 * for it), the reply mapped back to an OpenAI `ChatCompletion`, and a stream's
 * events to chunks by `AnthropicStream`.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { AnthropicProvider } from "@ironlabsai/anthropic"
 *
 * const provider = AnthropicProvider.make({ apiKey: Redacted.make("sk-ant-...") }).pipe(
 *   Effect.provide(NodeHttpClient.layerUndici)
 * )
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Deadline, type Provider } from "@ironlabsai/core"
import { Connection, ProviderReply, QuietClient } from "@ironlabsai/http"
import { Clock, type Config, type ConfigError, Context, Effect, Either, Layer, Redacted, Stream } from "effect"
import * as AnthropicMessages from "./AnthropicMessages.js"
import * as AnthropicRateLimit from "./AnthropicRateLimit.js"
import * as AnthropicStream from "./AnthropicStream.js"

/**
 * The official API's base URL, as the official SDK has it.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseURL = "https://api.anthropic.com"

/**
 * The API version header sent with every request.
 *
 * @since 0.1.0
 * @category constants
 */
export const apiVersion = "2023-06-01"

/**
 * The key, base URL (default `https://api.anthropic.com`) and response size cap.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Connection.Options

/**
 * Options from the environment: `ANTHROPIC_API_KEY` (read as `Redacted`) and
 * `ANTHROPIC_BASE_URL`, the names the official SDK reads.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Connection.config("ANTHROPIC")

/**
 * The Anthropic error body: `{ "type": "error", "error": { "type", "message" } }`.
 */
const errorOf = (body: unknown) => {
  const error = (body as { error?: { message?: unknown; type?: unknown } } | null)?.error
  const text = (u: unknown) => (typeof u === "string" ? u : undefined)
  return { type: text(error?.type), message: text(error?.message) }
}

/**
 * A provider speaking the Anthropic wire.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  // Whatever the client, no redirect is followed: the key never goes to another origin.
  Effect.map(Effect.zip(Connection.httpClient, Deadline.strategy), ([httpClient, deadline]) => {
    const withClient = QuietClient.make(httpClient)
    const quiet = QuietClient.always(httpClient)
    const url = `${(options.baseURL ?? defaultBaseURL).replace(/\/+$/, "")}/v1/messages`
    const apiKey = ProviderReply.usableKey(options, "ANTHROPIC_API_KEY")
    // Built once: each call only adds its body.
    const head = HttpClientRequest.post(url).pipe(
      HttpClientRequest.setHeaders({
        "x-api-key": Either.isRight(apiKey) ? Redacted.value(apiKey.right) : "",
        "anthropic-version": apiVersion,
        // No compression, from every client: `fetch` would otherwise ask for it.
        "accept-encoding": "identity"
      }),
      HttpClientRequest.acceptJson
    )
    const post = (client: HttpClient.HttpClient, body: unknown) =>
      client.execute(HttpClientRequest.bodyUnsafeJson(head, body))
    return {
      deadline,
      server: Connection.serverOf(url),
      unsupported: ({ request }) => AnthropicMessages.unsupportedFields(request),
      complete: ({ model, request, onLimitSpent }) => {
        if (Either.isLeft(apiKey)) return Effect.fail(apiKey.left(model.id))
        const body = AnthropicMessages.toRequestBody(model.name, request)
        return withClient((client) =>
          ProviderReply.decode(post(client, body), {
            model: model.id,
            schema: AnthropicMessages.MessageResponse,
            errorOf,
            rateLimitResetOf: AnthropicRateLimit.resetOf,
            limitSpentOf: AnthropicRateLimit.spentOf,
            onLimitSpent,
            maxBytes: options.maxResponseBytes,
            apiKey: apiKey.right,
            messages: request.messages
          })
        ).pipe(
          Effect.zipWith(Clock.currentTimeMillis, (message, now) =>
            AnthropicMessages.toChatCompletion(message, {
              model: model.name,
              created: Math.floor(now / 1000),
              jsonTool: AnthropicMessages.jsonToolName(request)
            })
          )
        )
      },
      stream: ({ model, request, onLimitSpent }) => {
        if (Either.isLeft(apiKey)) return Stream.fail(apiKey.left(model.id))
        const body = { ...AnthropicMessages.toRequestBody(model.name, request), stream: true }
        const jsonTool = AnthropicMessages.jsonToolName(request)
        // `created` is when the stream started, on the Effect clock (Anthropic's events carry no time).
        return Stream.unwrap(
          Effect.map(Clock.currentTimeMillis, (now) =>
            ProviderReply.stream(post(quiet, body), {
              model: model.id,
              errorOf,
              rateLimitResetOf: AnthropicRateLimit.resetOf,
              limitSpentOf: AnthropicRateLimit.spentOf,
              onLimitSpent,
              parser: () => AnthropicStream.eventParser(model, { jsonTool, created: Math.floor(now / 1000) }),
              maxBytes: options.maxResponseBytes,
              apiKey: apiKey.right,
              messages: request.messages
            })
          )
        )
      }
    }
  })

/**
 * The Anthropic provider as a service, for programs that assemble their own
 * registry (`Provider.registry({ anthropic: yield* AnthropicProvider.AnthropicProvider })`).
 *
 * @since 0.2.0
 * @category tags
 */
export class AnthropicProvider extends Context.Tag("ironlabsai/AnthropicProvider")<
  AnthropicProvider,
  Provider.Provider
>() {}

/**
 * The provider as a layer, with explicit options.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<AnthropicProvider, never, HttpClient.HttpClient> =>
  Layer.effect(AnthropicProvider, make(options))

/**
 * The provider as a layer, with options from `Config` (by default `ANTHROPIC_API_KEY`
 * and `ANTHROPIC_BASE_URL`, as the official SDK reads them).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<AnthropicProvider, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(AnthropicProvider, Effect.flatMap(options, make))
