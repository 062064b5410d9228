/**
 * One validation for both APIs (issue 12, item 5): the Effect `create` checks
 * the request as the Promise facade does, and fails with `InvalidChatRequest`
 * in its error channel before any model is called.
 */
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, IronlabsClient, Json } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Effect, Either, Logger, Stream } from "effect"

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

  it.effect(
    "a tool call whose arguments are not a JSON object: InvalidChatRequest naming the message and the call",
    () =>
      Effect.gen(function* () {
        const { scripted, client } = setup()
        const call = (id: string, args: string) => ({ id, type: "function", function: { name: "f", arguments: args } })
        const error = yield* Effect.flip(
          client.completions.create(
            untyped({
              messages: [
                { role: "user", content: "Hi" },
                { role: "assistant", content: null, tool_calls: [call("call_ok", ""), call("call_bad", "{oops")] },
                { role: "tool", tool_call_id: "call_bad", content: "?" },
                { role: "assistant", content: null, tool_calls: [call("call_list", "[1]")] }
              ]
            })
          )
        )
        assert.strictEqual(error._tag, "InvalidChatRequest")
        if (error._tag !== "InvalidChatRequest") return
        assert.deepStrictEqual(error.issues, [
          {
            path: "messages[1]",
            message: "the arguments of tool call call_bad are not a JSON object (nested at most 100 levels)"
          },
          {
            path: "messages[3]",
            message: "the arguments of tool call call_list are not a JSON object (nested at most 100 levels)"
          }
        ])
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

describe("ChatCompletion.decodeRequest: kept unknown fields never touch a prototype", () => {
  it("a __proto__ key, at the top or inside a message, is refused with its path", () => {
    for (const [json, path] of [
      ['{"messages":[{"role":"user","content":"x"}],"__proto__":{"polluted":1}}', "__proto__"],
      ['{"messages":[{"role":"user","content":"x","__proto__":{"polluted":1}}]}', "messages[0].__proto__"],
      // Deep in a kept field, within the nesting allowed: found too.
      [
        `{"messages":[{"role":"user","content":"x"}],"x":${'{"a":'.repeat(40)}{"__proto__":{}}${"}".repeat(40)}}`,
        `x${".a".repeat(40)}.__proto__`
      ]
    ] as const) {
      const result = ChatCompletion.decodeRequest(JSON.parse(json))
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result))
        assert.deepStrictEqual(result.left.issues, [{ path, message: "__proto__ is not allowed as a field name" }])
      assert.isUndefined(({} as Record<string, unknown>).polluted)
    }
  })

  it("other unknown fields are kept as they were sent", () => {
    const result = ChatCompletion.decodeRequest({
      messages: [{ role: "user", content: "x" }],
      some_new_field: { a: 1 }
    })
    assert.deepStrictEqual(Either.getOrThrow(result) as unknown, {
      messages: [{ role: "user", content: "x" }],
      some_new_field: { a: 1 }
    })
  })
})

describe("ChatCompletion.decodeRequest: nesting is bounded", () => {
  const deep = (depth: number): unknown => JSON.parse("[".repeat(depth) + "]".repeat(depth))

  it("a request nested deeper than 100 levels, in a field the schema does not name, is refused", () => {
    const result = ChatCompletion.decodeRequest({ messages: [{ role: "user", content: "Hi" }], extra: deep(100_000) })
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) {
      assert.deepStrictEqual(result.left.issues, [{ path: "", message: "the request nests deeper than 100 levels" }])
    }
  })

  it("tool-call arguments nested deeper than 100 levels are refused; 90 levels are fine", () => {
    const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
    const request = (args: string) => ({
      messages: [
        { role: "user", content: "Hi" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: args } }]
        },
        { role: "tool", tool_call_id: "c", content: "ok" }
      ]
    })
    assert.isTrue(Either.isLeft(ChatCompletion.decodeRequest(request(nested(100_000)))))
    assert.isTrue(Either.isRight(ChatCompletion.decodeRequest(request(nested(90)))))
  })

  it("Json.withinDepth counts objects and arrays, and walks any depth without recursion", () => {
    assert.isTrue(Json.withinDepth(deep(100)))
    assert.isFalse(Json.withinDepth(deep(101)))
    assert.isFalse(Json.withinDepth(deep(1_000_000)))
    assert.isTrue(Json.withinDepth("text"))
    assert.deepStrictEqual(Json.parseBounded("{"), Either.left("not JSON"))
    assert.deepStrictEqual(Json.parseBounded('{"a":[1]}'), Either.right({ a: [1] }))
  })
})

describe("IronlabsClient.make: a valid config that is almost certainly a mistake", () => {
  it.effect("is logged as a warning when the client is built, naming the path", () =>
    Effect.gen(function* () {
      const logged: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        logged.push(`${logLevel.label} ${String(Array.isArray(message) ? message.join(" ") : message)}`)
      })
      yield* IronlabsClient.make({ reliability: { failover_chain: [{ model: "openai/gpt-4o", timeout: 5000 }] } }).pipe(
        Effect.provide(ScriptedProvider.make({}).layer),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      assert.deepStrictEqual(logged, [
        "WARN reliability config: failover_chain[0].timeout is 5000 s (83 minutes): timeouts are in seconds; did you mean 5?"
      ])
    })
  )
})
