/**
 * The demo: the seed's two configurations under load against the embedded
 * loopback simulator on a bad day, with the same workload run without the
 * load balancer beside it.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Use the real providers (keys from env) instead of the simulator. */
  readonly live?: boolean | undefined
  /** Requests per configuration. Default 300. */
  readonly requests?: number | undefined
}

/**
 * Runs the demo, printing to stdout.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (_options: Options = {}): Effect.Effect<void, Error> => Effect.void
