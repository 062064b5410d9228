/**
 * The `ironlabsai` command: `chat`, `simulate` and `demo`.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * The demo: the seed's two configurations on a bad day, against the embedded simulator.
 *
 * @since 0.1.0
 */
export * as Demo from "./Demo.js"
