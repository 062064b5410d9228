/**
 * A loopback simulator of the OpenAI chat-completions and Anthropic messages
 * wires: a real HTTP server on 127.0.0.1 that records every request it receives
 * and answers with scripted replies, including faults (status and headers,
 * latency, hangs, connection resets, raw bodies, slow bodies, and streams that
 * stall, break, fail with an error event, only ping, never close, end without
 * their end event, or arrive in awkward pieces).
 *
 * @example
 * import { Effect } from "effect"
 * import { Simulator } from "@ironlabsai/testing"
 *
 * const program = Effect.gen(function* () {
 *   const sim = yield* Simulator.make()
 *   sim.script("gpt-4o", { status: 429, headers: { "retry-after": "1" } }, { content: "Hello!" })
 *   const response = yield* Effect.promise(() =>
 *     fetch(`${sim.openaiBaseUrl}/chat/completions`, {
 *       method: "POST",
 *       headers: { "content-type": "application/json" },
 *       body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] })
 *     })
 *   )
 *   // response.status === 429, sim.requests.length === 1
 * })
 *
 * Effect.runPromise(Effect.scoped(program))
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Duration, Scope } from "effect"
import * as internal from "./internal/simulatorServer.js"

/**
 * The wire a request was routed to: `POST /v1/chat/completions` is `"openai"`,
 * `POST /v1/messages` is `"anthropic"`, anything else is `"unknown"` (answered 404).
 *
 * @since 0.1.0
 * @category models
 */
export type Wire = "openai" | "anthropic" | "unknown"

/**
 * What became of a recorded request, updated live:
 *
 * - `"pending"`: no complete response yet (waiting, hanging, dripping, stalled);
 * - `"answered"`: the whole response was written;
 * - `"client-closed"`: the client closed the connection before the response was complete;
 * - `"reset"`: the simulator destroyed the connection, as its reply asked;
 * - `"server-closed"`: the simulator was closed while the request was still open.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = "pending" | "answered" | "client-closed" | "reset" | "server-closed"

/**
 * An error rendered in the wire format of the route: OpenAI
 * `{ error: { message, type, param: null, code } }`, Anthropic
 * `{ type: "error", error: { type, message } }`. `code` is OpenAI's only.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplyError {
  readonly type: string
  readonly code?: string | undefined
  /** Defaults to `Simulated <type>.` */
  readonly message?: string | undefined
}

/**
 * Token counts reported by a successful reply, in place of the simulator's own
 * (the number of whitespace-separated words of the prompt and of the content).
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage {
  readonly promptTokens?: number | undefined
  readonly completionTokens?: number | undefined
}

/**
 * What the simulator does for one request. The empty reply `{}` is the default
 * success: status 200 and `Simulated answer from <model>.`
 *
 * A request whose body has `stream: true` gets a successful reply as
 * server-sent events (OpenAI `chat.completion.chunk`s ending in `[DONE]`, or
 * Anthropic `message_start` … `message_stop`), one content delta per word of
 * the content unless `chunks` says otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply {
  /** Defaults to 200, or 500 when `error` is given. A status of 400 or more without `error` gets the wire's usual error type for it. */
  readonly status?: number | undefined
  /** Added to (and overriding) the generated headers, e.g. `{ "retry-after": "2" }`. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** The text of the successful completion. */
  readonly content?: string | undefined
  /** The wire value, e.g. `"length"` (OpenAI) or `"max_tokens"` (Anthropic); defaults to `"stop"` / `"end_turn"`. */
  readonly finishReason?: string | undefined
  readonly usage?: Usage | undefined
  /** Answer with this error, in the wire format of the route. */
  readonly error?: ReplyError | undefined
  /** A raw body sent verbatim instead of the generated one (HTML, truncated JSON, anything); `content-type` stays `application/json` unless `headers` sets it. */
  readonly body?: string | undefined
  /** Wait this long before sending the status line. */
  readonly latency?: Duration.DurationInput | undefined
  /** Accept the request and never answer, until the client or the simulator closes the connection. */
  readonly hang?: boolean | undefined
  /** Destroy the connection before any byte of the response, or after the headers and half of the body. */
  readonly reset?: "before-headers" | "mid-body" | undefined
  /** Send a non-streamed body gzip-compressed, with `content-encoding: gzip`. */
  readonly gzip?: boolean | undefined
  /** Send the body slowly, in pieces of a twentieth of this rate (at least a byte) at even intervals. */
  readonly dripBytesPerSecond?: number | undefined
  /** Streams only: the content deltas, in place of one per word of `content`. */
  readonly chunks?: ReadonlyArray<string> | undefined
  /** Streams only: wait this long between consecutive events. */
  readonly chunkInterval?: Duration.DurationInput | undefined
  /** Streams only: after this many content deltas, send nothing more and keep the connection open. */
  readonly stallAfterChunks?: number | undefined
  /** Streams only: after this many content deltas, destroy the connection. */
  readonly breakAfterChunks?: number | undefined
  /**
   * Streams only: after this many content deltas, send an error event in the
   * wire's format (`streamError`, by default the wire's 500 type) and end the
   * response. OpenAI: `data: {"error":{"message","type","param","code"}}`, and
   * with 0 it is the very first event (no role chunk); Anthropic:
   * `event: error` with `{"type":"error","error":{"type","message"}}`, after
   * `message_start`, `content_block_start` and `ping`. Takes precedence over
   * `stallAfterChunks` and `breakAfterChunks`.
   */
  readonly errorAfterChunks?: number | undefined
  /** Streams only: the error of the error event; given alone, it is sent after 0 content deltas. */
  readonly streamError?: ReplyError | undefined
  /**
   * Answer 200 with the headers of an event stream (whatever the request's
   * `stream`), then send nothing but keep-alive pings at this interval, until
   * the client or the simulator closes the connection. OpenAI: the SSE comment
   * `: ping`; Anthropic: `event: ping` with `{"type": "ping"}`.
   */
  readonly pingOnly?: Duration.DurationInput | undefined
  /**
   * Send the status line and headers at once (after `latency`), then wait
   * this long before the first byte of the body: the first event of a stream.
   */
  readonly firstChunkDelay?: Duration.DurationInput | undefined
  /**
   * Streams only: send the whole stream, its end event (`[DONE]`,
   * `message_stop`) or error event included, and keep the connection open
   * until the client closes it (outcome `"client-closed"`).
   */
  readonly doneWithoutClose?: boolean | undefined
  /**
   * Streams only: send the whole stream but its end event (`[DONE]`,
   * `message_stop`), and close the response cleanly, as a proxy that drops
   * the last event does.
   *
   * @since 0.2.0
   */
  readonly withoutEndEvent?: boolean | undefined
  /** Streams only: end the lines of the event stream with `\r\n`. */
  readonly crlf?: boolean | undefined
  /**
   * Write the body in pieces of this many bytes, each write waiting for the
   * last, so that events, lines and multi-byte UTF-8 characters are split
   * across writes. Pieces do not cross a `chunkInterval` pause.
   */
  readonly splitEvery?: number | undefined
  /**
   * Streams only: split each JSON `data:` payload across two `data:` lines,
   * after its opening brace (valid SSE: the lines join with `"\n"` into the
   * same JSON).
   */
  readonly multilineData?: boolean | undefined
  /**
   * Streams only: after the first event, add events a client must skip: an
   * SSE comment, and on the Anthropic wire `event: mystery` with `data: {}`.
   */
  readonly noise?: boolean | undefined
}

/**
 * A request as the simulator received it. Recorded once its body has been
 * read; `outcome` is updated live.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  /** 1-based arrival order (restarts after `reset()`). */
  readonly id: number
  /** 1-based number of the TCP connection the request arrived on: requests over one keep-alive connection share it. */
  readonly connection: number
  readonly wire: Wire
  readonly method: string
  /** The request target as received, query string included. */
  readonly path: string
  /** Lower-case names, as received; repeated headers are joined with `", "`. */
  readonly headers: Readonly<Record<string, string>>
  /** The parsed JSON body, the raw string if it was not JSON, or `undefined` if it exceeded `maxBodyBytes`. */
  readonly body: unknown
  /** The body's `model`, when it is a string. */
  readonly model: string | undefined
  /** `Date.now()` when the body had been read. */
  readonly receivedAt: number
  readonly outcome: Outcome
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** When set, an OpenAI request without `authorization: Bearer <key>` gets 401 `invalid_api_key`. */
  readonly openaiApiKey?: string | undefined
  /** When set, an Anthropic request without `x-api-key: <key>` gets 401 `authentication_error`. */
  readonly anthropicApiKey?: string | undefined
  /** Decides the reply when the model's script is empty (the default success otherwise). */
  readonly handler?: ((request: RecordedRequest) => Reply) | undefined
  /** Larger request bodies are answered 413. Defaults to 10 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** Defaults to 0: an ephemeral port. */
  readonly port?: number | undefined
}

/**
 * A running simulator.
 *
 * @since 0.1.0
 * @category models
 */
export interface Simulator {
  /** E.g. `http://127.0.0.1:43123`. */
  readonly url: string
  /** The OpenAI client's base URL: `${url}/v1`. */
  readonly openaiBaseUrl: string
  /** The Anthropic client's base URL: `${url}`. */
  readonly anthropicBaseUrl: string
  /** Every request received, in arrival order (a live view). */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Queues replies for the requests whose body's `model` is `model` (the wire's model name); each request takes the head. */
  readonly script: (model: string, ...replies: ReadonlyArray<Reply>) => void
  /** How many scripted replies are left for `model`. */
  readonly scripted: (model: string) => number
  /** Clears the scripts and the recorded requests. */
  readonly reset: () => void
  /** The number of requests neither answered nor closed. */
  readonly openRequests: () => number
  /** Resolves once `count` requests have been recorded; rejects after `timeoutMs` (default 2000). */
  readonly waitForRequests: (count: number, timeoutMs?: number) => Promise<void>
  /**
   * Resolves once request `id` was closed by the client before its response was
   * complete; rejects if it ended otherwise, or after `timeoutMs` (default 2000).
   */
  readonly waitForClientClose: (id: number, timeoutMs?: number) => Promise<void>
  /** Destroys every open connection (hung ones included) and closes the server. */
  readonly close: () => Promise<void>
}

/**
 * Starts a simulator on 127.0.0.1 and an ephemeral port. Close it with `close()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options?: Options): Promise<Simulator> => internal.start(options)

/**
 * A simulator that lives as long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<Simulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (simulator) => Effect.promise(() => simulator.close())
  )

/**
 * @since 0.1.0
 * @category tags
 */
export class SimulatorService extends Context.Tag("ironlabsai/testing/Simulator")<SimulatorService, Simulator>() {}

/**
 * A layer with one simulator, closed when the layer is released; tests share it with `it.layer`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<SimulatorService> => Layer.scoped(SimulatorService, make(options))
