/**
 * Server-sent events from a byte stream, parsed by `eventsource-parser` (a
 * small, well-kept, spec-following parser: comments, CRLF, multi-line `data:`,
 * unknown fields). Bytes are decoded as UTF-8 in streaming mode, so a
 * character split across network chunks survives; one event and the whole
 * stream are capped in size.
 *
 * @example
 * import { Stream } from "effect"
 * import { Sse } from "@ironlabsai/http"
 *
 * const bytes = Stream.make(new TextEncoder().encode("data: hello\n\n"))
 * const events = Sse.events(bytes, { model: "openai/gpt-4o", maxBytes: 1024 })
 *
 * @since 0.1.0
 */
import { type EventSourceMessage, createParser } from "eventsource-parser"
import { Effect, Stream } from "effect"
import { dual } from "effect/Function"
import { ProviderError } from "@ironlabsai/core"

/**
 * One event: `event` is undefined when the server named none.
 *
 * @since 0.1.0
 * @category models
 */
export type Event = EventSourceMessage

/**
 * The default cap on one event: 1 MiB (counted in UTF-16 units of its text).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxEventBytes = 1024 * 1024

/**
 * Parses a byte stream into events. Past `maxEventBytes` in one event, or
 * `maxBytes` in the whole stream, it fails with `ResponseTooLarge`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const events: {
  (
    options: EventsOptions
  ): <E>(body: Stream.Stream<Uint8Array, E>) => Stream.Stream<Event, E | ProviderError.ProviderError>
  <E>(body: Stream.Stream<Uint8Array, E>, options: EventsOptions): Stream.Stream<Event, E | ProviderError.ProviderError>
} = dual(
  2,
  <E>(
    body: Stream.Stream<Uint8Array, E>,
    options: EventsOptions
  ): Stream.Stream<Event, E | ProviderError.ProviderError> =>
    Stream.suspend(() => {
      const maxBytes = options.maxBytes
      const maxEventBytes = options.maxEventBytes ?? defaultMaxEventBytes
      const tooLarge = (description: string) =>
        ProviderError.ProviderError.fromReason({ reason: "ResponseTooLarge", model: options.model, description })
      const decoder = new TextDecoder()
      let parsed: Array<Event> = []
      let overflow = false
      const parser = createParser({
        // The parser caps only what it buffers between feeds; an event that arrives whole in one piece
        // is checked here (in UTF-16 units, as the parser counts).
        onEvent: (event) => {
          if (event.data.length > maxEventBytes) overflow = true
          else parsed.push(event)
        },
        onError: (error) => {
          if (error.type === "max-buffer-size-exceeded") overflow = true
        },
        maxBufferSize: maxEventBytes
      })
      // eventsource-parser 3 (the line that supports Node 20) misses events whose lines end in a lone CR:
      // every line end reaches it as LF, a CRLF split across two chunks included.
      let afterCR = false
      const lineEnds = (text: string): string => {
        if (text.length === 0) return text
        const rest = afterCR && text.charCodeAt(0) === 10 ? text.slice(1) : text
        afterCR = text.charCodeAt(text.length - 1) === 13
        return rest.indexOf("\r") === -1 ? rest : rest.replace(/\r\n?/g, "\n")
      }
      let total = 0
      return body.pipe(
        Stream.mapConcatEffect((bytes) => {
          total += bytes.byteLength
          if (total > maxBytes) return Effect.fail(tooLarge(`stream over ${maxBytes} bytes`))
          if (!overflow) parser.feed(lineEnds(decoder.decode(bytes, { stream: true })))
          if (overflow) return Effect.fail(tooLarge(`one event over ${maxEventBytes} bytes`))
          const out = parsed
          parsed = []
          return Effect.succeed(out)
        })
      )
    })
)

/**
 * The caps `events` applies, and the model its errors name.
 *
 * @since 0.2.0
 * @category models
 */
export interface EventsOptions {
  readonly model: string
  /** The cap on the whole stream, in bytes. */
  readonly maxBytes: number
  /** The cap on one event; default 1 MiB. */
  readonly maxEventBytes?: number | undefined
}
