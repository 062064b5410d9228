/**
 * Model ids of the form `provider/model`: the prefix picks the provider, the
 * rest is the model name sent on the wire.
 *
 * @example
 * import { ModelId } from "@ironlabsai/core"
 *
 * const id = ModelId.parse("anthropic/claude-3-5-haiku-20241022")
 * // id?.provider === "anthropic", id?.name === "claude-3-5-haiku-20241022"
 *
 * @since 0.1.0
 */

/**
 * A routed model id, split once.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelId {
  /** The full id, as in the config: `openai/gpt-4o`. */
  readonly id: string
  /** The provider prefix: `openai`. */
  readonly provider: string
  /** The wire model name: `gpt-4o`. */
  readonly name: string
}

/**
 * A provider prefix: lower-case letters, digits, `-` and `_`.
 *
 * @since 0.1.0
 * @category constants
 */
export const pattern = /^([a-z0-9][a-z0-9_-]*)\/(\S+)$/

/**
 * Splits `provider/model`, or returns `undefined` when the id has no provider
 * prefix or an empty model name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (id: string): ModelId | undefined => {
  const match = pattern.exec(id)
  return match === null ? undefined : { id, provider: match[1]!, name: match[2]! }
}
