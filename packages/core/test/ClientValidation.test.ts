/**
 * One validation for both APIs (issue 12, item 5): the Effect `create` checks
 * the request as the Promise facade does, and fails with `InvalidChatRequest`
 * in its error channel before any model is called.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ChatCompletion, IronlabsClient } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Effect, Either, Stream } from "effect"

const setup = () => {
  const scripted = ScriptedProvider.make({})
  const client = Either.getOrThrow(
    IronlabsClient.makeWith({ reliability: { failover_chain: [{ model: "openai/gpt-4o" }] } }, scripted.registry)
  )
  return { scripted, client }
}

/** A request as untyped code (or a cast) might send it. */
const untyped = (request: unknown) => request as ChatCompletion.ChatCompletionRequest & { readonly stream?: false }

describe("IronlabsClient: the request is checked before any model is called", () => {
  it.effect("an out-of-range temperature and an unknown role: InvalidChatRequest naming both paths, no call", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup()
      const error = yield* Effect.flip(
        client.completions.create(untyped({ messages: [{ role: "robot", content: "Hi" }], temperature: 5 }))
      )
      assert.strictEqual(error._tag, "InvalidChatRequest")
      if (error._tag !== "InvalidChatRequest") return
      assert.deepStrictEqual(
        error.issues.map((issue) => issue.path),
        ["messages[0].role", "temperature"]
      )
      assert.deepStrictEqual(scripted.calls, [])
    })
  )

  it.effect("no messages: InvalidChatRequest", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup()
      const error = yield* Effect.flip(client.completions.create(untyped({ messages: [] })))
      assert.strictEqual(error._tag, "InvalidChatRequest")
      assert.deepStrictEqual(scripted.calls, [])
    })
  )

  it.effect("a stream fails the same way, before its first pull reaches a model", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup()
      const request = { messages: [{ role: "user", content: "Hi" }], temperature: -1, stream: true } as const
      const error = yield* Effect.flip(Stream.runDrain(client.completions.create(request)))
      assert.strictEqual(error._tag, "InvalidChatRequest")
      assert.deepStrictEqual(scripted.calls, [])
    })
  )
})
