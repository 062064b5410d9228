/**
 * A loopback simulator of the OpenAI chat-completions and Anthropic messages
 * wires: a real HTTP server on 127.0.0.1 that records every request it receives
 * and answers with scripted replies, including faults (status and headers,
 * latency, hangs, connection resets, raw bodies, slow bodies, and streams that
 * stall, break, fail with an error event, only ping, never close, end without
 * their end event, or arrive in awkward pieces). It answers tool calls,
 * thinking and JSON mode as the real APIs do, refuses malformed requests with
 * their 400s, and lists models at `GET /v1/models`.
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
 * `GET /v1/models` is `"anthropic"` when it has an `anthropic-version` or
 * `x-api-key` header, `"openai"` otherwise.
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
  /**
   * OpenAI only: the request field at fault, e.g. `"messages"` (`null` when absent).
   *
   * @since 0.3.0
   */
  readonly param?: string | undefined
}

/**
 * Token counts reported by a successful reply, in place of the simulator's own
 * (the number of whitespace-separated words of the prompt, and of the answer:
 * its thinking, its text and its tool calls' JSON arguments).
 *
 * OpenAI's usage always has `prompt_tokens_details: { cached_tokens }` and
 * `completion_tokens_details: { reasoning_tokens: 0 }`; Anthropic's always has
 * `cache_creation_input_tokens` and `cache_read_input_tokens` (in
 * `message_start` when streamed), as the real APIs send them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage {
  /** OpenAI `prompt_tokens` (cached tokens included), Anthropic `input_tokens` (cached tokens apart). */
  readonly promptTokens?: number | undefined
  readonly completionTokens?: number | undefined
  /**
   * Prompt tokens read from the cache: OpenAI `prompt_tokens_details.cached_tokens`,
   * Anthropic `cache_read_input_tokens`. Defaults to 0.
   *
   * @since 0.3.0
   */
  readonly cachedTokens?: number | undefined
  /**
   * Anthropic only: `cache_creation_input_tokens`. Defaults to 0.
   *
   * @since 0.3.0
   */
  readonly cacheCreationTokens?: number | undefined
}

/**
 * A tool the answer calls.
 *
 * @since 0.3.0
 * @category models
 */
export interface ToolCall {
  /** Defaults to `call_sim_<request>_<i>` (OpenAI) or `toolu_sim_<request>_<i>` (Anthropic), `i` counting from 0. */
  readonly id?: string | undefined
  readonly name: string
  /** The JSON value of the tool's input; defaults to `{}`. OpenAI sends it as a JSON string. */
  readonly arguments?: unknown
}

/**
 * What the simulator does for one request. The empty reply `{}` is the default
 * success: status 200 and `Simulated answer from <model>.`
 *
 * A request whose body has `stream: true` gets a successful reply as
 * server-sent events (OpenAI `chat.completion.chunk`s ending in `[DONE]`, or
 * Anthropic `message_start` … `message_stop`), one content delta per word of
 * the content unless `chunks` says otherwise. A tool call streams as the real
 * APIs stream it: OpenAI a chunk with its id and name, then its JSON arguments
 * in pieces of 8 characters; Anthropic a `tool_use` block whose input comes in
 * `input_json_delta` pieces (one empty piece for `{}`).
 *
 * When the reply scripts no `content`, `json` nor `toolCalls`, the request's
 * JSON mode decides the answer, as a model in that mode would: on OpenAI,
 * `response_format` `json_object` gets `{}` and `json_schema` the smallest
 * value its schema accepts (required properties only, `""`, `0`, `false`, `[]`,
 * the first of an `enum`); on Anthropic, a request forcing a tool
 * (`tool_choice: { type: "tool", name }`) gets a `tool_use` of it with the
 * smallest input its `input_schema` accepts.
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
  /**
   * The answer calls these tools, in order (several are parallel calls), after
   * `content` if given. Without `content` there is no text: OpenAI `content:
   * null`, Anthropic no text block.
   *
   * @since 0.3.0
   */
  readonly toolCalls?: ReadonlyArray<ToolCall> | undefined
  /**
   * The answer is this JSON value, in place of `content`: OpenAI `content` is
   * its JSON text; Anthropic answers a request forcing a tool with a
   * `tool_use` of that tool whose input is the value, any other with a text
   * block of its JSON text.
   *
   * @since 0.3.0
   */
  readonly json?: unknown
  /**
   * Anthropic only (ignored on OpenAI): a `thinking` block first, signed
   * `sig_sim_<request>`; streamed as `thinking_delta`s, one per word, then
   * one `signature_delta`.
   *
   * @since 0.3.0
   */
  readonly thinking?: string | undefined
  /**
   * The wire value, e.g. `"length"` (OpenAI) or `"max_tokens"` (Anthropic);
   * defaults to `"tool_calls"` / `"tool_use"` when the answer calls a tool,
   * `"stop"` / `"end_turn"` otherwise.
   */
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
  /** Streams only: the text's content deltas, in place of one per word of `content`. */
  readonly chunks?: ReadonlyArray<string> | undefined
  /** Streams only: wait this long between consecutive events. */
  readonly chunkInterval?: Duration.DurationInput | undefined
  /**
   * Streams only: after this many content deltas, send nothing more and keep
   * the connection open. The deltas counted here and by `breakAfterChunks` and
   * `errorAfterChunks` are the text deltas, the pieces of tool-call arguments,
   * and on Anthropic every `content_block_delta` (thinking and signature too);
   * the events between them (a tool call's first chunk, block starts and
   * stops) are sent up to the last delta counted.
   */
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
  /** The route's wire; a `GET /v1/models` is `"anthropic"` when it has an `anthropic-version` or `x-api-key` header. */
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
  /** When set, an OpenAI request (chat or models) without `authorization: Bearer <key>` gets 401 `invalid_api_key`. */
  readonly openaiApiKey?: string | undefined
  /** When set, an Anthropic request (messages or models) without `x-api-key: <key>` gets 401 `authentication_error`. */
  readonly anthropicApiKey?: string | undefined
  /**
   * Defaults to `true`: a chat request the real API would refuse gets its 400
   * `invalid_request_error`, before it takes its scripted reply (so the script
   * is not consumed; the request is still recorded). Checked: a body that is
   * not a JSON object; `messages` missing or not a list; a role the API does
   * not know; tool calls and their results out of step (OpenAI: a `tool`
   * message answering no `tool_calls` of the assistant message before it, or
   * an assistant's `tool_calls` not all answered by the `tool` messages right
   * after it; Anthropic: `tool_use` ids without a `tool_result` in the next
   * message, or a `tool_result` with no `tool_use` in the previous one);
   * Anthropic: `max_tokens` missing.
   *
   * @since 0.3.0
   */
  readonly validate?: boolean | undefined
  /**
   * The model ids `GET /v1/models` lists, as given. By default the wire's
   * own (OpenAI `gpt-4o`, `gpt-4o-mini`; Anthropic `claude-3-5-haiku-20241022`,
   * `claude-sonnet-4-20250514`) followed by every model that has a script.
   *
   * @since 0.3.0
   */
  readonly models?: ReadonlyArray<string> | undefined
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
