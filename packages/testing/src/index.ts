/**
 * Scripted providers: queues of outcomes per model, for router tests with
 * `TestClock` and no network.
 *
 * @since 0.1.0
 */
export * as ScriptedProvider from "./ScriptedProvider.js"

/**
 * A loopback HTTP simulator of the OpenAI and Anthropic wires, with faults.
 *
 * @since 0.1.0
 */
export * as Simulator from "./Simulator.js"

/**
 * Real `redis-server` processes for tests and benchmarks, on free loopback
 * ports, stopped and restarted at will.
 *
 * @since 0.4.0
 */
export * as RedisServer from "./RedisServer.js"
