/**
 * Server-sent events from a byte stream, with size caps.
 *
 * @since 0.1.0
 */
export * as Sse from "./Sse.js"

/**
 * From a provider's raw reply to a decoded body or a classified error: the size cap, JSON, Schema and the status table.
 *
 * @since 0.1.0
 */
export * as ProviderReply from "./ProviderReply.js"

/**
 * How an HTTP provider reaches its API: key, base URL, response cap, from options or env, what makes them unusable, and a client that follows no redirect.
 *
 * @since 0.2.0
 */
export * as Connection from "./Connection.js"

/**
 * A lean `HttpClient` over undici's dispatcher, which enforces the attempt deadline itself.
 *
 * @since 0.1.0
 */
export * as UndiciHttpClient from "./UndiciHttpClient.js"

/**
 * Cuts API keys, in every encoding a provider may echo them, out of text.
 *
 * @since 0.3.0
 */
export * as Redaction from "./Redaction.js"

/**
 * The HTTP client a wire calls with: the platform's own span turned off
 * whenever a tracer would see it.
 *
 * @since 0.4.0
 */
export * as QuietClient from "./QuietClient.js"
