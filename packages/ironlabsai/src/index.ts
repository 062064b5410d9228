/**
 * The Promise facade: `new IronlabsAI({ reliability })`.
 *
 * @since 0.1.0
 */
export { IronlabsAI } from "./IronlabsAI.js"
export type { ClientOptions, RequestOptions } from "./IronlabsAI.js"

/**
 * What the facade observes through: its events (`client.on`), its logger
 * and log level, and the `telemetry` option (`ironlabsai/OpenTelemetry`).
 *
 * @since 0.4.0
 */
export type { Events, Listener, LogFunction, Logger, LogLevel, Tracing } from "./IronlabsAI.js"

/**
 * What the facade rejects with after `close()`, and when the library itself
 * fails unexpectedly (never a lower library's error).
 *
 * @since 0.3.0
 */
export { ClientClosed, InternalError } from "./IronlabsAI.js"

/**
 * The client service with the real providers from env.
 *
 * @since 0.1.0
 */
export { IronlabsClient } from "./IronlabsClient.js"
export type { Options as IronlabsClientOptions } from "./IronlabsClient.js"

/**
 * A lean `HttpClient` over undici's dispatcher, the facade's default.
 *
 * @since 0.1.0
 */
export { UndiciHttpClient } from "@ironlabsai/http"

/**
 * The default provider registry: OpenAI and Anthropic, from env and options.
 *
 * @since 0.1.0
 */
export * as DefaultProviders from "./DefaultProviders.js"

/**
 * Provider settings that cannot be used (keys, base URLs, env), apart from the reliability config.
 *
 * @since 0.2.0
 */
export { ConnectionConfigError } from "./DefaultProviders.js"

/**
 * The Effect API of `@ironlabsai/core`, re-exported.
 *
 * @since 0.1.0
 */
export {
  Attempt,
  ChatCompletion,
  ModelHealth,
  ModelId,
  Provider,
  ProviderError,
  Reliability,
  RouteEvent,
  Router,
  RoutingError
} from "@ironlabsai/core"
