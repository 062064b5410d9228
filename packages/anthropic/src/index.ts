/**
 * The Anthropic messages wire, over `@effect/platform`'s `HttpClient`, mapped
 * to OpenAI's chat-completion shape.
 *
 * @since 0.1.0
 */
export * as AnthropicProvider from "./AnthropicProvider.js"

/**
 * Anthropic's rate-limit headers: when the limit a 429 hit resets.
 *
 * @since 0.2.0
 */
export * as AnthropicRateLimit from "./AnthropicRateLimit.js"
