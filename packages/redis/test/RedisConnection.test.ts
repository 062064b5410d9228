import { assert, describe, inject, it } from "@effect/vitest"
import { Duration, Effect, Either } from "effect"
import * as RedisConnection from "../src/RedisConnection.js"
import { freePort } from "@ironlabsai/testing/RedisServer"
import { collectLogs, connect, errorCount, eventually, realSleep, uniquePrefix } from "./utils/redis.js"

const url = inject("redisUrl")

const echo = RedisConnection.script("test.echo", "return { KEYS[1], ARGV[1] }")

describe("RedisConnection", () => {
  it("redacts the password of a URL, and only that", () => {
    assert.strictEqual(RedisConnection.redactUrl("redis://user:s3cret@host:6379/0"), "redis://user:***@host:6379/0")
    assert.strictEqual(RedisConnection.redactUrl("rediss://:s3cret@host:6380"), "rediss://:***@host:6380")
    assert.strictEqual(RedisConnection.redactUrl("redis://s3cret@host"), "redis://***@host")
    assert.strictEqual(RedisConnection.redactUrl("redis://host:6379"), "redis://host:6379")
  })

  it.scopedLive("a script's SHA1 is the one Redis gives it", () =>
    Effect.gen(function* () {
      const connection = yield* connect({ url })
      assert.strictEqual(yield* connection.command(["SCRIPT", "LOAD", echo.source]), echo.sha1)
    })
  )

  it.scopedLive("keys carry the model as the Cluster hash tag; the channel is the prefix's", () =>
    Effect.gen(function* () {
      const connection = yield* connect({ url, prefix: "acme" })
      assert.strictEqual(connection.keyOf("openai/gpt-4o", "health"), "acme:{openai/gpt-4o}:health")
      assert.strictEqual(connection.channel, "acme:changes")
      const other = yield* connect({ url })
      assert.strictEqual(other.prefix, "ironlabsai")
      assert.notStrictEqual(connection.instanceId, other.instanceId)
      assert.strictEqual(Duration.toMillis(other.reconcileInterval), 1_000)
    })
  )

  it.scopedLive("evalScript runs a script by EVALSHA, and by EVAL once Redis forgot it (NOSCRIPT)", () =>
    Effect.gen(function* () {
      const connection = yield* connect({ url, prefix: uniquePrefix() })
      assert.deepStrictEqual(yield* connection.evalScript(echo, ["k"], [1]), ["k", "1"])
      yield* connection.command(["SCRIPT", "FLUSH"])
      assert.deepStrictEqual(yield* connection.evalScript(echo, ["k"], ["x"]), ["k", "x"])
      const error = yield* Effect.flip(
        connection.evalScript(RedisConnection.script("test.broken", "return redis.call('NOPE')"), [], [])
      )
      assert.strictEqual(error._tag, "RedisUnavailable")
      assert.strictEqual(error.operation, "test.broken")
      assert.strictEqual(error.reason, "Reply")
    })
  )

  it.scopedLive("time() is Redis TIME in epoch millis", () =>
    Effect.gen(function* () {
      const connection = yield* connect({ url })
      const time = yield* connection.time()
      assert.isBelow(Math.abs(time - Date.now()), 1_000)
    })
  )

  it.scopedLive("publish reaches subscribe", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const a = yield* connect({ url, prefix })
      const b = yield* connect({ url, prefix })
      const received: Array<string> = []
      yield* b.subscribe((message) => received.push(message))
      // The subscriber connects on its own: publish until it hears.
      yield* eventually(
        "the message",
        Effect.zipRight(
          a.publish("hello"),
          Effect.sync(() => received.includes("hello"))
        )
      )
    })
  )

  it.scopedLive(
    "Redis down: make neither fails nor waits; commands fail at once with RedisUnavailable; one warning, no password",
    () => {
      const logs = collectLogs()
      return Effect.gen(function* () {
        const port = yield* Effect.promise(() => freePort())
        const started = Date.now()
        const connection = yield* RedisConnection.make({ url: `redis://user:s3cret@127.0.0.1:${port}` })
        assert.isBelow(Date.now() - started, 100)
        assert.isFalse(connection.isReady())
        assert.strictEqual(connection.redactedUrl, `redis://user:***@127.0.0.1:${port}`)
        const before = yield* errorCount("test.echo")
        for (let i = 0; i < 5; i++) {
          const failedAt = Date.now()
          const result = yield* Effect.either(connection.evalScript(echo, ["k"], [1]))
          assert.isBelow(Date.now() - failedAt, 50)
          assert.isTrue(Either.isLeft(result))
          if (Either.isLeft(result)) {
            assert.strictEqual(result.left.reason, "Offline")
            yield* connection.report(result.left)
          }
        }
        assert.strictEqual((yield* errorCount("test.echo")) - before, 5)
        // Reconnection attempts go on in the background.
        yield* realSleep(300)
        const warnings = logs.lines.filter((line) => line.level === "WARN")
        assert.strictEqual(warnings.length, 1, JSON.stringify(warnings))
        assert.include(warnings[0]!.annotations, "user:***@")
        for (const line of logs.lines) assert.notInclude(`${line.message} ${line.annotations}`, "s3cret")
      }).pipe(Effect.provide(logs.layer))
    }
  )
})
