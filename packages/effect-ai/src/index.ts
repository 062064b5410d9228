/**
 * The router as an `@effect/ai` `LanguageModel`: layers, the mapping between
 * `Prompt`/`Response` parts and chat completions, and errors as `AiError`.
 *
 * @since 0.4.0
 */
export * as IronlabsLanguageModel from "./IronlabsLanguageModel.js"
