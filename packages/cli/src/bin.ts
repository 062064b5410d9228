/**
 * The entry point of the `ironlabsai` command: runs {@link Cli.run} on
 * `process.argv` with the Node context. The tool prints its own errors and
 * log lines (to stderr), so `runMain`'s error reporting and pretty logger are
 * off, and the exit code comes from {@link Cli.teardown} (0 ok, 1 request
 * failed, 2 usage or config error).
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import * as Cli from "./Cli.js"

// A reader that goes away (`ironlabsai chat ... | head -1`) fails the write, which stops the command quietly;
// Node would also throw the stream's 'error' event unless someone listens to it.
process.stdout.on("error", () => {})

Cli.run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
