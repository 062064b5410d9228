/**
 * The one error a provider call fails with, its `reason`, and the
 * classification of each reason into "retry the same model" or not.
 *
 * @example
 * import { ProviderError } from "@ironlabsai/core"
 *
 * const error = ProviderError.ProviderError.fromStatus({ model: "openai/gpt-4o", status: 503 })
 * // error.reason === "Overloaded", ProviderError.isRetryable(error) === true
 *
 * @since 0.1.0
 */
import { Duration, Option, Predicate, Schema } from "effect"

/**
 * Why a provider call failed (DESIGN §5).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reason = Schema.Literal(
  "RateLimited",
  "QuotaExceeded",
  "Overloaded",
  "ServerError",
  "Timeout",
  "Transport",
  "Authentication",
  "PermissionDenied",
  "NotFound",
  "InvalidRequest",
  "MalformedResponse",
  "ResponseTooLarge"
)

/**
 * @since 0.1.0
 * @category models
 */
export type Reason = typeof Reason.Type

const retryableReasons: ReadonlySet<Reason> = new Set<Reason>([
  "RateLimited",
  "Overloaded",
  "ServerError",
  "Timeout",
  "Transport"
])

/** Longest provider text kept in a description: enough to diagnose, never a whole body. */
const maxDescriptionLength = 200

/**
 * A failed call to one model. `model` is the routed id; `description` is a
 * short, truncated excerpt of what the provider said, never a request or a key.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderError extends Schema.TaggedError<ProviderError>("ProviderError")("ProviderError", {
  reason: Reason,
  model: Schema.String,
  status: Schema.optional(Schema.Number),
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  /** For a 429: when the limit that was hit resets, from the wire's rate-limit headers. */
  rateLimitReset: Schema.optional(Schema.DurationFromSelf),
  description: Schema.optional(Schema.String),
  /** The provider's own verdict (`x-should-retry`), which overrides the reason's. */
  shouldRetry: Schema.optional(Schema.Boolean)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const status = this.status === undefined ? "" : ` (HTTP ${this.status})`
    const description = this.description === undefined ? "" : `: ${this.description}`
    return `${this.model} failed with ${this.reason}${status}${description}`
  }

  /**
   * Builds an error, truncating the description so that a provider body never
   * travels whole.
   *
   * @since 0.1.0
   */
  static fromReason(options: {
    readonly reason: Reason
    readonly model: string
    readonly status?: number | undefined
    readonly retryAfter?: Duration.Duration | undefined
    readonly rateLimitReset?: Duration.Duration | undefined
    readonly description?: string | undefined
    readonly shouldRetry?: boolean | undefined
  }): ProviderError {
    return new ProviderError({
      reason: options.reason,
      model: options.model,
      ...(options.status === undefined ? {} : { status: options.status }),
      ...(options.retryAfter === undefined ? {} : { retryAfter: options.retryAfter }),
      ...(options.rateLimitReset === undefined ? {} : { rateLimitReset: options.rateLimitReset }),
      ...(options.description === undefined ? {} : { description: truncate(options.description) }),
      ...(options.shouldRetry === undefined ? {} : { shouldRetry: options.shouldRetry })
    })
  }

  /**
   * Classifies an HTTP error status (DESIGN §5). `errorType` is the provider's
   * error type or code from the body (`insufficient_quota`, `billing_error`),
   * which separates a spent quota from a passing rate limit.
   *
   * @since 0.1.0
   */
  static fromStatus(options: {
    readonly model: string
    readonly status: number
    readonly errorType?: string | undefined
    readonly retryAfter?: Duration.Duration | undefined
    readonly rateLimitReset?: Duration.Duration | undefined
    readonly description?: string | undefined
    readonly shouldRetry?: boolean | undefined
  }): ProviderError {
    return ProviderError.fromReason({ ...options, reason: reasonFromStatus(options.status, options.errorType) })
  }
}

/**
 * Provider error types that mean "out of money", not "slow down".
 */
const quotaErrorTypes: ReadonlySet<string> = new Set([
  "insufficient_quota",
  "billing_error",
  "billing_hard_limit_reached"
])

/**
 * The reason for an HTTP error status.
 *
 * @since 0.1.0
 * @category classification
 */
export const reasonFromStatus = (status: number, errorType?: string | undefined): Reason => {
  if (errorType !== undefined && quotaErrorTypes.has(errorType)) return "QuotaExceeded"
  switch (status) {
    case 401:
      return "Authentication"
    case 403:
      return "PermissionDenied"
    case 404:
      return "NotFound"
    case 408:
      return "Timeout"
    case 409:
      // A lock or concurrency conflict on the provider's side: transient, as the official SDKs treat it.
      return "ServerError"
    case 429:
      return "RateLimited"
    case 503:
    case 529:
      return "Overloaded"
  }
  return status >= 500 ? "ServerError" : "InvalidRequest"
}

/**
 * Provider error types (OpenAI's `type`/`code`, Anthropic's `error.type`) and
 * the reason each means, for errors that arrive without a telling status: an
 * error object in a 200 body, or an error event inside a stream.
 */
const reasonsByErrorType: ReadonlyMap<string, Reason> = new Map<string, Reason>([
  ["rate_limit_error", "RateLimited"],
  ["rate_limit_exceeded", "RateLimited"],
  ["requests", "RateLimited"],
  ["tokens", "RateLimited"],
  ["insufficient_quota", "QuotaExceeded"],
  ["billing_error", "QuotaExceeded"],
  ["billing_hard_limit_reached", "QuotaExceeded"],
  ["overloaded_error", "Overloaded"],
  ["api_error", "ServerError"],
  ["server_error", "ServerError"],
  ["timeout_error", "Timeout"],
  ["authentication_error", "Authentication"],
  ["invalid_api_key", "Authentication"],
  ["permission_error", "PermissionDenied"],
  ["not_found_error", "NotFound"],
  ["model_not_found", "NotFound"],
  ["invalid_request_error", "InvalidRequest"],
  ["request_too_large", "InvalidRequest"]
])

/**
 * The reason a provider error type names, if it is a known one.
 *
 * @since 0.1.0
 * @category classification
 */
export const reasonFromErrorType = (errorType: string): Reason | undefined => reasonsByErrorType.get(errorType)

/**
 * Whether the same model may be tried again after this error: the provider's
 * `x-should-retry` when it sent one (as the official SDKs honour it), else the
 * reason's row of the table.
 *
 * @since 0.1.0
 * @category classification
 */
export const isRetryable = (error: ProviderError): boolean => error.shouldRetry ?? retryableReasons.has(error.reason)

/**
 * How long a rate-limited model should be left alone, as the provider said it:
 * its retry-after, else when its rate limit resets; `undefined` when it said
 * neither.
 *
 * @since 0.2.0
 * @category classification
 */
export const holdFor = (error: ProviderError): Duration.Duration | undefined => error.retryAfter ?? error.rateLimitReset

/**
 * Whether the router moves on to the next model after this error. Every reason
 * does: a broken model is exactly what failover is for.
 *
 * @since 0.1.0
 * @category classification
 */
export const isFailover = (_error: ProviderError): boolean => true

/**
 * @since 0.1.0
 * @category guards
 */
export const isProviderError = (u: unknown): u is ProviderError => Predicate.isTagged(u, "ProviderError")

/**
 * Reads a provider's requested wait: `retry-after-ms` (milliseconds, OpenAI),
 * then `Retry-After` in seconds or as an HTTP-date. An unparseable, negative or
 * past value is ignored. `header` looks a header up by lower-case name.
 *
 * @since 0.1.0
 * @category classification
 */
export const parseRetryAfter = (
  header: (name: string) => string | undefined,
  now: number
): Option.Option<Duration.Duration> => {
  const millis = parseNumber(header("retry-after-ms"))
  if (millis !== undefined) return Option.some(Duration.millis(millis))
  const value = header("retry-after")?.trim()
  if (value === undefined || value === "") return Option.none()
  const seconds = parseNumber(value)
  if (seconds !== undefined) return Option.some(Duration.millis(seconds * 1000))
  // Anything numeric that was not a plain non-negative number (-1, 1e3, .5) is garbage, not a date.
  if (/^[\d+.-]/.test(value)) return Option.none()
  const date = Date.parse(value)
  return Number.isFinite(date) && date >= now ? Option.some(Duration.millis(date - now)) : Option.none()
}

const parseNumber = (value: string | undefined): number | undefined => {
  if (value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined
  const n = Number(value)
  return Number.isFinite(n) ? n : undefined
}

const truncate = (text: string): string =>
  text.length <= maxDescriptionLength ? text : `${text.slice(0, maxDescriptionLength)}… (${text.length} chars)`
