/**
 * `Sse.events` over byte streams built in memory: what the SSE spec asks of a
 * parser (comments, CRLF and bare CR, multi-line data, unknown fields, a
 * leading BOM), bytes split anywhere (inside a 4-byte UTF-8 character too),
 * and the two size caps.
 */
import { assert, describe, it } from "@effect/vitest"
import { ProviderError } from "@ironlabsai/core"
import { Sse } from "@ironlabsai/http"
import { Chunk, Effect, Either, Stream } from "effect"

const MODEL = "openai/gpt-4o"
const bytes = (text: string) => new TextEncoder().encode(text)

/** The bytes of `text`, cut after every `size` bytes. */
const piecesOf = (text: string, size: number): ReadonlyArray<Uint8Array> => {
  const all = bytes(text)
  const pieces: Array<Uint8Array> = []
  for (let offset = 0; offset < all.byteLength; offset += size) pieces.push(all.subarray(offset, offset + size))
  return pieces
}

/** The bytes of `text`, cut once after byte `at`. */
const cutAt = (text: string, at: number): ReadonlyArray<Uint8Array> => {
  const all = bytes(text)
  return [all.subarray(0, at), all.subarray(at)]
}

const events = (
  pieces: ReadonlyArray<Uint8Array>,
  options: { readonly maxBytes?: number; readonly maxEventBytes?: number } = {}
) =>
  Sse.events(Stream.fromIterable(pieces), {
    model: MODEL,
    maxBytes: options.maxBytes ?? 1024 * 1024,
    maxEventBytes: options.maxEventBytes
  })

const collect = (
  pieces: ReadonlyArray<Uint8Array>,
  options?: { readonly maxBytes?: number; readonly maxEventBytes?: number }
) => Effect.map(Stream.runCollect(events(pieces, options)), Chunk.toReadonlyArray)

/** The events that came through, then the error the stream failed with, if any. */
const outcome = (
  pieces: ReadonlyArray<Uint8Array>,
  options?: { readonly maxBytes?: number; readonly maxEventBytes?: number }
) =>
  events(pieces, options).pipe(
    Stream.either,
    Stream.runCollect,
    Effect.map((items) => {
      const all = Chunk.toReadonlyArray(items)
      const lefts = all.filter(Either.isLeft).map((item) => item.left)
      return { events: all.filter(Either.isRight).map((item) => item.right), error: lefts[0] }
    })
  )

/** Only what matters of an event: its name and data (and id when there is one). */
const shape = (event: Sse.Event) => ({
  ...(event.event === undefined ? {} : { event: event.event }),
  ...(event.id === undefined ? {} : { id: event.id }),
  data: event.data
})

const assertTooLarge = (error: unknown, description: string) => {
  assert.isTrue(ProviderError.isProviderError(error), `expected a ProviderError, got ${String(error)}`)
  const providerError = error as ProviderError.ProviderError
  assert.strictEqual(providerError.reason, "ResponseTooLarge")
  assert.strictEqual(providerError.model, MODEL)
  assert.strictEqual(providerError.description, description)
}

/** An Anthropic-like stream touching every rule at once: names, comments, CRLF, multi-line data, 2-, 3- and 4-byte characters. */
const mixed =
  ": hello\r\n\r\n" +
  'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\n' +
  'event: content_block_delta\ndata: {"text":"caf\u00e9 \u6d77 \ud83c\udf0a"}\n\n' +
  'data: {\ndata: "text": "\ud83c\udf0a\ud83c\udf0a"}\n\n' +
  "event: message_stop\rdata: {}\r\r"

const mixedEvents = [
  { event: "message_start", data: '{"type":"message_start"}' },
  { event: "content_block_delta", data: '{"text":"caf\u00e9 \u6d77 \ud83c\udf0a"}' },
  { data: '{\n"text": "\ud83c\udf0a\ud83c\udf0a"}' },
  { event: "message_stop", data: "{}" }
]

describe("Sse.events", () => {
  it.effect("is data-last too: it pipes", () =>
    Effect.gen(function* () {
      const parsed = yield* Stream.make(bytes("data: x\n\n")).pipe(
        Sse.events({ model: MODEL, maxBytes: 1024 }),
        Stream.runCollect
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(parsed).map(shape), [{ data: "x" }])
    })
  )

  describe("the SSE format", () => {
    it.effect("parses named and unnamed events in order", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([bytes('event: ping\ndata: {"type": "ping"}\n\ndata: [DONE]\n\n')])
        assert.deepStrictEqual(parsed.map(shape), [{ event: "ping", data: '{"type": "ping"}' }, { data: "[DONE]" }])
      })
    )

    it.effect("skips comment lines, alone or inside an event", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([
          bytes(": ping\n\n:\n\ndata: a\n: between\ndata: b\n\n: OPENROUTER PROCESSING\n\n")
        ])
        assert.deepStrictEqual(parsed.map(shape), [{ data: "a\nb" }])
      })
    )

    it.effect("accepts CRLF and bare CR line endings", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([bytes("event: one\r\ndata: 1\r\n\r\nevent: two\rdata: 2\r\rdata: 3\n\n")])
        assert.deepStrictEqual(parsed.map(shape), [
          { event: "one", data: "1" },
          { event: "two", data: "2" },
          { data: "3" }
        ])
      })
    )

    it.effect("joins multi-line data with \\n", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([bytes('data: {\ndata:  "id": 1,\ndata:"ok":true}\n\n')])
        assert.deepStrictEqual(parsed.map(shape), [{ data: '{\n "id": 1,\n"ok":true}' }])
        assert.deepStrictEqual(JSON.parse(parsed[0]?.data ?? ""), { id: 1, ok: true })
      })
    )

    it.effect("ignores unknown fields and retry, keeps id, and strips one space after the colon only", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([bytes("foo: bar\nretry: 100\nid: 7\ndata:  two spaces\nnocolon\n\n")])
        assert.deepStrictEqual(parsed.map(shape), [{ id: "7", data: " two spaces" }])
      })
    )

    it.effect("dispatches no event without data, nor one the stream ends in the middle of", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([bytes("event: empty\n\ndata: whole\n\ndata: half")])
        assert.deepStrictEqual(parsed.map(shape), [{ data: "whole" }])
      })
    )

    it.effect("strips a leading byte order mark", () =>
      Effect.gen(function* () {
        const parsed = yield* collect([Uint8Array.of(0xef, 0xbb, 0xbf), bytes("data: x\n\n")])
        assert.deepStrictEqual(parsed.map(shape), [{ data: "x" }])
      })
    )

    it.effect("an empty body is an empty stream", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* collect([]), [])
        assert.deepStrictEqual(yield* collect([new Uint8Array(0)]), [])
      })
    )

    it.effect("a failing body fails the stream with its own error, after the events before it", () =>
      Effect.gen(function* () {
        const body = Stream.concat(Stream.make(bytes("data: a\n\n")), Stream.fail(new Error("socket hang up")))
        const items = yield* Sse.events(body, { model: MODEL, maxBytes: 1024 }).pipe(Stream.either, Stream.runCollect)
        const all = Chunk.toReadonlyArray(items)
        assert.strictEqual(all.length, 2)
        assert.deepStrictEqual(Either.getOrUndefined(all[0]!)?.data, "a")
        const last = all[1]
        assert.isTrue(last !== undefined && Either.isLeft(last) && last.left.message === "socket hang up")
      })
    )
  })

  describe("bytes split anywhere", () => {
    it.effect("the whole mixed stream in one piece", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual((yield* collect([bytes(mixed)])).map(shape), mixedEvents)
      })
    )

    it.effect("one byte at a time: CRLF pairs, UTF-8 characters of 2, 3 and 4 bytes all split", () =>
      Effect.gen(function* () {
        const pieces = piecesOf(mixed, 1)
        assert.strictEqual(pieces.length, bytes(mixed).byteLength)
        assert.deepStrictEqual((yield* collect(pieces)).map(shape), mixedEvents)
      })
    )

    it.effect("cut once at every byte offset", () =>
      Effect.gen(function* () {
        const size = bytes(mixed).byteLength
        for (let at = 0; at <= size; at++) {
          const parsed = yield* collect(cutAt(mixed, at))
          assert.deepStrictEqual(parsed.map(shape), mixedEvents, `cut at byte ${at}`)
        }
      })
    )

    it.effect("in pieces of 2, 3, 5 and 7 bytes", () =>
      Effect.gen(function* () {
        for (const size of [2, 3, 5, 7]) {
          assert.deepStrictEqual((yield* collect(piecesOf(mixed, size))).map(shape), mixedEvents, `pieces of ${size}`)
        }
      })
    )

    it.effect("inside a 4-byte character: every cut within its bytes", () =>
      Effect.gen(function* () {
        const text = "data: \ud83c\udf0a\n\n"
        // "data: " is 6 bytes; the wave is bytes 6 to 9
        for (const at of [7, 8, 9]) {
          assert.deepStrictEqual(
            (yield* collect(cutAt(text, at))).map(shape),
            [{ data: "\ud83c\udf0a" }],
            `cut at ${at}`
          )
        }
        assert.deepStrictEqual((yield* collect(piecesOf(text, 1))).map(shape), [{ data: "\ud83c\udf0a" }])
      })
    )
  })

  describe("size caps", () => {
    it.effect("an event over maxEventBytes, arriving in pieces, fails with ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { error, events: before } = yield* outcome(piecesOf(`data: ok\n\ndata: ${"x".repeat(40)}\n\n`, 8), {
          maxEventBytes: 16
        })
        assert.deepStrictEqual(before.map(shape), [{ data: "ok" }])
        assertTooLarge(error, "one event over 16 bytes")
      })
    )

    it.effect("a multi-line event over maxEventBytes fails, even in one piece", () =>
      Effect.gen(function* () {
        const lines = Array.from({ length: 10 }, () => "data: xxxx\n").join("")
        const { error } = yield* outcome([bytes(`${lines}\n`)], { maxEventBytes: 16 })
        assertTooLarge(error, "one event over 16 bytes")
      })
    )

    it.effect("an event within maxEventBytes passes, in pieces or whole", () =>
      Effect.gen(function* () {
        // the parser counts the buffered line, "data: " included: 6 + 8 characters
        const text = `data: ${"x".repeat(8)}\n\n`
        assert.deepStrictEqual((yield* collect(piecesOf(text, 4), { maxEventBytes: 16 })).map(shape), [
          { data: "x".repeat(8) }
        ])
        assert.deepStrictEqual((yield* collect([bytes(text)], { maxEventBytes: 16 })).map(shape), [
          { data: "x".repeat(8) }
        ])
      })
    )

    it.effect("the default per-event cap is 1 MiB: a 2 MiB event in 64 KiB pieces fails", () =>
      Effect.gen(function* () {
        assert.strictEqual(Sse.defaultMaxEventBytes, 1024 * 1024)
        const { error, events: parsed } = yield* outcome(piecesOf(`data: ${"x".repeat(2 * 1024 * 1024)}\n\n`, 65536), {
          maxBytes: 16 * 1024 * 1024
        })
        assert.strictEqual(parsed.length, 0)
        assertTooLarge(error, `one event over ${1024 * 1024} bytes`)
      })
    )

    // Fails today (src bug in Sse.ts): eventsource-parser checks `maxBufferSize` only against a
    // line it buffers across feeds; a one-line event whose end arrives in the same piece as the
    // rest of it is dispatched whole without that check.
    it.effect("BUG: an event over maxEventBytes fails even when one piece carries it past the cap whole", () =>
      Effect.gen(function* () {
        const whole = yield* outcome([bytes(`data: ${"x".repeat(40)}\n\n`)], { maxEventBytes: 16 })
        assertTooLarge(whole.error, "one event over 16 bytes")
        // 10 characters buffered (under the cap), then a last piece of 30 more and the blank line
        const tail = yield* outcome([bytes("data: xxxx"), bytes(`${"x".repeat(30)}\n\n`)], { maxEventBytes: 16 })
        assertTooLarge(tail.error, "one event over 16 bytes")
      })
    )

    it.effect("the stream over maxBytes fails with ResponseTooLarge, after the events within it", () =>
      Effect.gen(function* () {
        // each event is 10 bytes: "data: ab\n\n"
        const body = Array.from({ length: 8 }, () => "data: ab\n\n").join("")
        const { error, events: parsed } = yield* outcome(piecesOf(body, 10), { maxBytes: 50 })
        assert.strictEqual(parsed.length, 5)
        assertTooLarge(error, "stream over 50 bytes")
      })
    )

    it.effect("a stream of exactly maxBytes passes", () =>
      Effect.gen(function* () {
        const body = Array.from({ length: 5 }, () => "data: ab\n\n").join("")
        assert.strictEqual((yield* collect(piecesOf(body, 3), { maxBytes: 50 })).length, 5)
      })
    )

    it.effect("the stream cap is counted as bytes arrive: nothing past the piece that crosses it is pulled", () =>
      Effect.gen(function* () {
        let pulled = 0
        const piece = bytes(": padding padding padding\n")
        const body = Stream.repeatEffect(
          Effect.sync(() => {
            pulled++
            return piece
          })
        ).pipe(Stream.take(10_000))
        const error = yield* Effect.flip(Stream.runDrain(Sse.events(body, { model: MODEL, maxBytes: 1024 })))
        assertTooLarge(error, "stream over 1024 bytes")
        assert.isAtMost(pulled, Math.ceil(1024 / piece.byteLength) + 2)
      })
    )
  })
})
