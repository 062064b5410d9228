/**
 * The OpenAI chat-completions wire, over `@effect/platform`'s `HttpClient`.
 *
 * @since 0.1.0
 */
export * as OpenAiProvider from "./OpenAiProvider.js"
