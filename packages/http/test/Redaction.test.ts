import { assert, describe, it } from "@effect/vitest"
import { Redaction } from "@ironlabsai/http"
import { Redacted } from "effect"

describe("Redaction.redactor", () => {
  const key = "sk-proj-0123456789/abc+xyz"
  const redact = Redaction.redactor([Redacted.make(key)])
  const base64 = btoa(key).replace(/=+$/, "")

  for (const [form, text] of [
    ["verbatim", key],
    ["JSON-escaped", JSON.stringify(key).slice(1, -1)],
    ["JSON-escaped with \\/", key.replaceAll("/", "\\/")],
    ["URL-encoded", encodeURIComponent(key)],
    ["URL-encoded, lower-case hex", encodeURIComponent(key).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())],
    ["base64", base64],
    ["base64url", base64.replaceAll("+", "-").replaceAll("/", "_")]
  ] as const) {
    it(`cuts the key out ${form}, wherever it stands`, () => {
      assert.strictEqual(redact(`bad key:${text}.`), "bad key:[redacted].")
      assert.strictEqual(redact(`x${text}x`), "x[redacted]x")
    })
  }

  it("cuts every key given, and leaves text without one as it is", () => {
    const both = Redaction.redactor([Redacted.make(key), undefined, Redacted.make("sk-ant-9876543210zz")])
    assert.strictEqual(both(`${key} and sk-ant-9876543210zz`), "[redacted] and [redacted]")
    assert.strictEqual(both("Unknown model"), "Unknown model")
    assert.strictEqual(Redaction.redactor([])("text"), "text")
  })

  it("a short key is cut only where it stands alone: unrelated words are never mangled", () => {
    const short = Redaction.redactor([Redacted.make("kn")])
    assert.strictEqual(short("Unknown model; key kn rejected"), "Unknown model; key [redacted] rejected")
    assert.strictEqual(short('{"key":"kn"}'), '{"key":"[redacted]"}')
    const one = Redaction.redactor([Redacted.make("k")])
    assert.strictEqual(one("Unknown key k"), "Unknown key [redacted]")
  })

  it("cuts the caller's message texts out of an error body that echoes them, JSON-escaped too", () => {
    const prompt = 'Summarise "the memo" for the board'
    const texts = Redaction.messageTexts([
      { content: prompt },
      { content: [{ type: "text", text: "a second part, long enough" }, { type: "image_url" }] },
      { content: "Hi" },
      {}
    ])
    assert.deepStrictEqual(texts, [prompt, "a second part, long enough", "Hi"])
    const cut = Redaction.promptRedactor(texts)
    assert.strictEqual(cut(`invalid content: ${prompt}`), "invalid content: [prompt]")
    assert.strictEqual(
      cut(`{"error":{"message":"bad: ${JSON.stringify(prompt).slice(1, -1)}"}}`),
      '{"error":{"message":"bad: [prompt]"}}'
    )
    assert.strictEqual(cut("part: a second part, long enough."), "part: [prompt].")
    // A text too short to be worth hiding is left, so that the message stays readable.
    assert.strictEqual(cut("Hi there"), "Hi there")
    assert.strictEqual(Redaction.promptRedactor([])("text"), "text")
  })
})
