/**
 * The entry point of the `ironlabsai` command: runs {@link Cli.run} on
 * `process.argv` with the Node context. The tool prints its own errors, so
 * `runMain`'s error reporting is off, and the exit code comes from
 * {@link Cli.teardown} (0 ok, 1 request failed, 2 usage or config error).
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import * as Cli from "./Cli.js"

Cli.run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, teardown: Cli.teardown })
)
