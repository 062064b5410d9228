/**
 * The Anthropic messages wire, over `@effect/platform`'s `HttpClient`, mapped
 * to OpenAI's chat-completion shape.
 *
 * @since 0.1.0
 */
export * as AnthropicProvider from "./AnthropicProvider.js"

/**
 * OpenAI's chat-completions request in Anthropic's format, and the reply back.
 *
 * @since 0.3.0
 */
export * as AnthropicMessages from "./AnthropicMessages.js"

/**
 * Anthropic's stream events as OpenAI chunks.
 *
 * @since 0.3.0
 */
export * as AnthropicStream from "./AnthropicStream.js"

/**
 * Anthropic's rate-limit headers: when the limit a 429 hit resets.
 *
 * @since 0.2.0
 */
export * as AnthropicRateLimit from "./AnthropicRateLimit.js"
