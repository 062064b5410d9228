/**
 * The Anthropic messages wire, over `@effect/platform`'s `HttpClient`, mapped
 * to OpenAI's chat-completion shape.
 *
 * @since 0.1.0
 */
export * as AnthropicProvider from "./AnthropicProvider.js"
