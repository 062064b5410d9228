/**
 * The attempt deadline between an HTTP client and the wires built on it. The
 * router sets `Provider.currentDeadline` around each attempt; an HTTP client
 * that enforces it itself (it aborts the request when the deadline passes:
 * the cooperative way, as `UndiciHttpClient` does) provides `Cooperative`, and
 * a wire over such a client declares `deadline: "cooperative"` to the router,
 * which then spares the fiber and timer of `Effect.timeout` (the aggressive
 * way) for each attempt.
 *
 * @example
 * import { Effect } from "effect"
 * import { Deadline } from "@ironlabsai/http"
 *
 * const strategy = Effect.map(Effect.serviceOption(Deadline.Cooperative), (o) => (o._tag === "Some" ? "cooperative" : "aggressive"))
 *
 * @since 0.2.0
 */
import { Context, Effect, Option } from "effect"

/**
 * Provided by an HTTP client layer that enforces `Provider.currentDeadline`
 * itself (as `UndiciHttpClient.layer` does).
 *
 * @since 0.2.0
 * @category tags
 */
export class Cooperative extends Context.Tag("ironlabsai/Deadline/Cooperative")<Cooperative, true>() {}

/**
 * How the deadline of an attempt is enforced over the `HttpClient` in
 * context: `"cooperative"` when the client provides `Cooperative`, else
 * `"aggressive"`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const strategy: Effect.Effect<"cooperative" | "aggressive"> = Effect.map(
  Effect.serviceOption(Cooperative),
  (cooperative) => (Option.isSome(cooperative) ? "cooperative" : "aggressive")
)
