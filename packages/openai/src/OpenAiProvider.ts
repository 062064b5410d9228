/**
 * The OpenAI chat-completions wire: `POST {baseURL}/chat/completions` with a
 * bearer key, over `@effect/platform`'s `HttpClient`. The reply is already the
 * target shape; it is decoded with Schema. OpenAI-compatible hosts (Groq,
 * Together, OpenRouter, Mistral, DeepSeek, vLLM, Ollama) are the same wire with
 * another base URL and key.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { OpenAiProvider } from "@ironlabsai/openai"
 *
 * const provider = OpenAiProvider.make({ apiKey: Redacted.make("sk-...") }).pipe(
 *   Effect.provide(NodeHttpClient.layerUndici)
 * )
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { ChatCompletion, Deadline, Json, type Provider, ProviderError } from "@ironlabsai/core"
import { Connection, ProviderReply, QuietClient } from "@ironlabsai/http"
import { type Config, type ConfigError, Context, Effect, Either, Layer, Redacted, Schema, Stream } from "effect"
import * as OpenAiRateLimit from "./OpenAiRateLimit.js"

/**
 * The official API's base URL, as the official SDK has it.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseURL = "https://api.openai.com/v1"

/**
 * The key, base URL (default `https://api.openai.com/v1`) and response size cap.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Connection.Options

/**
 * Options from the environment: `OPENAI_API_KEY` (read as `Redacted`) and
 * `OPENAI_BASE_URL`, the names the official SDK reads.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Connection.config("OPENAI")

/**
 * The OpenAI error body: `{ "error": { "message", "type", "code" } }`.
 */
const errorOf = (body: unknown) => {
  const error = (body as { error?: { message?: unknown; type?: unknown; code?: unknown } } | null)?.error
  const text = (u: unknown) => (typeof u === "string" ? u : undefined)
  return { type: text(error?.code) ?? text(error?.type), message: text(error?.message) }
}

/**
 * A provider speaking the OpenAI wire.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  // Whatever the client, no redirect is followed: the key never goes to another origin.
  Effect.map(Effect.zip(Connection.httpClient, Deadline.strategy), ([httpClient, deadline]) => {
    const withClient = QuietClient.make(httpClient)
    const quiet = QuietClient.always(httpClient)
    const url = `${(options.baseURL ?? defaultBaseURL).replace(/\/+$/, "")}/chat/completions`
    const apiKey = ProviderReply.usableKey(options, "OPENAI_API_KEY")
    // Built once: each call only adds its body.
    const head = HttpClientRequest.post(url).pipe(
      HttpClientRequest.bearerToken(Either.isRight(apiKey) ? Redacted.value(apiKey.right) : ""),
      HttpClientRequest.acceptJson,
      // No compression, from every client: `fetch` would otherwise ask for it.
      HttpClientRequest.setHeader("accept-encoding", "identity")
    )
    const post = (client: HttpClient.HttpClient, body: unknown) =>
      client.execute(HttpClientRequest.bodyUnsafeJson(head, body))
    return {
      deadline,
      server: Connection.serverOf(url),
      complete: ({ model, request, onLimitSpent }) => {
        if (Either.isLeft(apiKey)) return Effect.fail(apiKey.left(model.id))
        const { stream: _, ...body } = request
        return withClient((client) =>
          ProviderReply.decode(post(client, withModel(body, model.name)), {
            model: model.id,
            schema: ChatCompletion.ChatCompletion,
            errorOf,
            rateLimitResetOf: OpenAiRateLimit.resetOf,
            limitSpentOf: OpenAiRateLimit.spentOf,
            onLimitSpent,
            maxBytes: options.maxResponseBytes,
            apiKey: apiKey.right,
            messages: request.messages
          })
        )
      },
      stream: ({ model, request, onLimitSpent }) => {
        if (Either.isLeft(apiKey)) return Stream.fail(apiKey.left(model.id))
        // Usage is always asked for (the router counts it); the caller's other stream options go as they are.
        const body = {
          ...request,
          model: model.name,
          stream: true,
          stream_options: { ...request.stream_options, include_usage: true }
        }
        return ProviderReply.stream(post(quiet, body), {
          model: model.id,
          errorOf,
          rateLimitResetOf: OpenAiRateLimit.resetOf,
          limitSpentOf: OpenAiRateLimit.spentOf,
          onLimitSpent,
          parser: () => parseEvent(model.id),
          maxBytes: options.maxResponseBytes,
          apiKey: apiKey.right,
          messages: request.messages
        })
      }
    }
  })

/**
 * The body with the wire's model name. Copied, then set: V8 makes
 * `{ ...body, model }` (a spread, then a key the source lacks) about 0.4 µs
 * slower, on every call.
 */
const withModel = <B extends object>(body: B, model: string): B & { readonly model: string } => {
  const copy = Object.assign({}, body) as B & { model: string }
  copy.model = model
  return copy
}

// What the schema does not name is kept: a chunk comes back whole.
const decodeChunk = (u: unknown) =>
  Schema.decodeUnknownEither(ChatCompletion.ChatCompletionChunk)(u, { onExcessProperty: "preserve" })

/**
 * OpenAI's stream: `data: <chunk>` events, an `{"error": ...}` event when it
 * fails mid-stream, and `data: [DONE]` at the end.
 */
const parseEvent =
  (model: string): ProviderReply.EventParser =>
  (event) => {
    if (event.data === "[DONE]") return ProviderReply.Done
    const json = Json.parseBounded(event.data)
    if (Either.isLeft(json)) {
      // "not JSON", or nested too deep to walk.
      const description = `event is ${json.left}: ${JSON.stringify(event.data.slice(0, 80))}`
      return ProviderError.ProviderError.fromReason({ reason: "MalformedResponse", model, description })
    }
    const chunk = decodeChunk(json.right)
    if (Either.isRight(chunk)) return [chunk.right]
    const error = errorOf(json.right)
    if (error.type !== undefined || error.message !== undefined) {
      return ProviderReply.embeddedError(model, error, "event in the stream")
    }
    return ProviderError.ProviderError.fromReason({
      reason: "MalformedResponse",
      model,
      description: `unexpected event: ${JSON.stringify(event.data.slice(0, 80))}`
    })
  }

/**
 * The OpenAI provider as a service, for programs that assemble their own
 * registry (`Provider.registry({ openai: yield* OpenAiProvider.OpenAiProvider })`).
 *
 * @since 0.2.0
 * @category tags
 */
export class OpenAiProvider extends Context.Tag("ironlabsai/OpenAiProvider")<OpenAiProvider, Provider.Provider>() {}

/**
 * The provider as a layer, with explicit options.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<OpenAiProvider, never, HttpClient.HttpClient> =>
  Layer.effect(OpenAiProvider, make(options))

/**
 * The provider as a layer, with options from `Config` (by default `OPENAI_API_KEY`
 * and `OPENAI_BASE_URL`, as the official SDK reads them).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<OpenAiProvider, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(OpenAiProvider, Effect.flatMap(options, make))
