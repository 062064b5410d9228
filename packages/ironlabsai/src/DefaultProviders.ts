/**
 * The default provider registry: `openai` and `anthropic`, configured from the
 * environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`,
 * `ANTHROPIC_BASE_URL`, as the official SDKs name them), with explicit options
 * taking precedence. Keys are `Redacted` from the moment they are read.
 *
 * @example
 * import { Layer } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { DefaultProviders } from "ironlabsai"
 *
 * const Providers = DefaultProviders.layer({ openai: { baseURL: "http://127.0.0.1:8080/v1" } }).pipe(
 *   Layer.provide(NodeHttpClient.layerUndici)
 * )
 *
 * @since 0.1.0
 */
import type { HttpClient } from "@effect/platform"
import { AnthropicProvider } from "@ironlabsai/anthropic"
import { Provider } from "@ironlabsai/core"
import { OpenAiProvider } from "@ironlabsai/openai"
import { type ConfigError, Effect, Layer, Redacted } from "effect"

/**
 * Explicit settings of one provider; each one left out is read from env.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderOptions {
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  readonly baseURL?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly openai?: ProviderOptions | undefined
  readonly anthropic?: ProviderOptions | undefined
}

/**
 * The provider prefixes this registry serves.
 *
 * @since 0.1.0
 * @category constants
 */
export const prefixes: ReadonlyArray<string> = ["openai", "anthropic"]

/**
 * The registry, reading what `options` leaves out from `Config`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Provider.Registry, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const openai = yield* OpenAiProvider.config
    const anthropic = yield* AnthropicProvider.config
    return Provider.registry({
      openai: yield* OpenAiProvider.make(merge(openai, options.openai)),
      anthropic: yield* AnthropicProvider.make(merge(anthropic, options.anthropic))
    })
  })

/**
 * The registry as the `Providers` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Provider.Providers, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(Provider.Providers, make(options))

const merge = <
  A extends { readonly apiKey?: Redacted.Redacted<string> | undefined; readonly baseURL?: string | undefined }
>(
  fromEnv: A,
  explicit: ProviderOptions | undefined
): A => ({
  ...fromEnv,
  apiKey: toRedacted(explicit?.apiKey) ?? fromEnv.apiKey,
  baseURL: explicit?.baseURL ?? fromEnv.baseURL
})

const toRedacted = (key: string | Redacted.Redacted<string> | undefined) =>
  key === undefined || Redacted.isRedacted(key) ? key : Redacted.make(key)
