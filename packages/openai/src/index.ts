/**
 * The OpenAI chat-completions wire, over `@effect/platform`'s `HttpClient`.
 *
 * @since 0.1.0
 */
export * as OpenAiProvider from "./OpenAiProvider.js"

/**
 * OpenAI's rate-limit headers: when the limit a 429 hit resets.
 *
 * @since 0.2.0
 */
export * as OpenAiRateLimit from "./OpenAiRateLimit.js"
