/**
 * What the router decided while it routed a request, as typed events for a
 * program to listen to (the Promise facade's `client.on(...)`): each attempt
 * as it ends, each retry with its wait, each failover and each skip. Model
 * health's own changes are `ModelHealth.Transition`s. An event names models
 * and reasons, never a key or a prompt.
 *
 * @example
 * import type { RouteEvent } from "@ironlabsai/core"
 *
 * const describe = (event: RouteEvent.RouteEvent): string =>
 *   event.type === "retry" ? `${event.model}: retrying in ${event.delay_ms} ms (${event.reason})` : event.type
 *
 * @since 0.4.0
 */
import type * as Attempt from "./Attempt.js"

/**
 * A call to a model ended: `success`, `failure` (with the error's `reason`
 * and HTTP `status`) or `cancelled` (a hedge that lost its race).
 * `attempt` counts the calls to this model in this request, from 1.
 *
 * @since 0.4.0
 * @category models
 */
export interface AttemptEvent {
  readonly type: "attempt"
  readonly model: string
  readonly outcome: "success" | "failure" | "cancelled"
  readonly attempt: number
  readonly duration_ms: number
  readonly reason?: string
  readonly status?: number
  /** Whether the call was the half-open probe of its model. */
  readonly probe: boolean
}

/**
 * The model is called again after `delay_ms`, because its last call failed
 * with `reason`; `attempt` is the number the next call will have.
 *
 * @since 0.4.0
 * @category models
 */
export interface RetryEvent {
  readonly type: "retry"
  readonly model: string
  readonly reason: string
  readonly delay_ms: number
  readonly attempt: number
}

/**
 * The request leaves `model` (its last call failed with `reason`, or it may
 * not be retried) for the models still untried; `to_models` is how many are left.
 *
 * @since 0.4.0
 * @category models
 */
export interface FailoverEvent {
  readonly type: "failover"
  readonly model: string
  readonly reason: string
  readonly status?: number
  readonly to_models: number
}

/**
 * A model passed over without a call, and why: the trace's skip.
 *
 * @since 0.4.0
 * @category models
 */
export interface SkipEvent extends Attempt.Skip {
  readonly type: "skip"
  readonly model: string
}

/**
 * @since 0.4.0
 * @category models
 */
export type RouteEvent = AttemptEvent | RetryEvent | FailoverEvent | SkipEvent

/**
 * Every type of route event, in the order a request meets them.
 *
 * @since 0.4.0
 * @category constants
 */
export const types: ReadonlyArray<RouteEvent["type"]> = ["attempt", "retry", "failover", "skip"]

/**
 * Called with each event as it happens, synchronously; what it throws is
 * ignored (a listener never breaks a request).
 *
 * @since 0.4.0
 * @category models
 */
export type Listener = (event: RouteEvent) => void
