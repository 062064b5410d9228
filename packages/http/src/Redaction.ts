/**
 * Cuts API keys out of text a provider sent back (an error body, a stream's
 * error event, a redirect's location) before any of it reaches an error: each
 * key as it is, JSON-escaped (with `/` as `\/` too), URL-encoded (either hex
 * case) and in base64, since a provider may echo it in any of them.
 *
 * @example
 * import { Redacted } from "effect"
 * import { Redaction } from "@ironlabsai/http"
 *
 * const redact = Redaction.redactor([Redacted.make("sk-proj-0123456789/abc")])
 * redact('{"error":"bad key sk-proj-0123456789\\/abc"}') // '{"error":"bad key [redacted]"}'
 *
 * @since 0.3.0
 */
import { Redacted } from "effect"

/**
 * Keys shorter than this are cut only where they stand alone, not inside a
 * longer word: a three-letter test key must not turn `Unknown` into
 * `Un[redacted]nown`. Real keys are far longer.
 *
 * @since 0.3.0
 * @category constants
 */
export const shortKeyLength = 12

/** What replaces a key. */
const mark = "[redacted]"

/**
 * A function that cuts every form of `keys` out of a text; with no key (or
 * only empty ones), the identity.
 *
 * @since 0.3.0
 * @category constructors
 */
export const redactor = (keys: ReadonlyArray<Redacted.Redacted<string> | undefined>): ((text: string) => string) => {
  const cutters = keys.flatMap((key) => (key === undefined ? [] : cuttersOf(key)))
  if (cutters.length === 0) return (text) => text
  return (text) => cutters.reduce((acc, cut) => cut(acc), text)
}

/** The cutters of each key, made the first time (a provider keeps its key for its life). */
const known = new WeakMap<Redacted.Redacted<string>, ReadonlyArray<(text: string) => string>>()

const cuttersOf = (key: Redacted.Redacted<string>): ReadonlyArray<(text: string) => string> => {
  const cached = known.get(key)
  if (cached !== undefined) return cached
  const cutters = formsOf(Redacted.value(key)).map((form) =>
    form.length >= shortKeyLength
      ? (text: string) => (text.includes(form) ? text.replaceAll(form, mark) : text)
      : alone(form)
  )
  known.set(key, cutters)
  return cutters
}

/** A cutter for `form` only where no letter, digit, `_` or `-` touches it. */
const alone = (form: string): ((text: string) => string) => {
  const pattern = new RegExp(`(?<![A-Za-z0-9_-])${form.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}(?![A-Za-z0-9_-])`, "g")
  return (text) => (text.includes(form) ? text.replace(pattern, mark) : text)
}

/** Every way a provider may write `value` back. */
const formsOf = (value: string): ReadonlyArray<string> => {
  if (value === "") return []
  const escaped = JSON.stringify(value).slice(1, -1)
  const encoded = encodeURIComponent(value)
  // btoa takes Latin-1 only; a key outside it was refused at construction anyway.
  const latin1 = [...value].every((character) => (character.codePointAt(0) ?? 0) <= 0xff)
  const base64 = latin1 ? btoa(value).replace(/=+$/, "") : undefined
  return [
    ...new Set([
      value,
      escaped,
      escaped.replaceAll("/", "\\/"),
      encoded,
      encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()),
      ...(base64 === undefined ? [] : [base64, base64.replaceAll("+", "-").replaceAll("/", "_")])
    ])
  ]
}

/** What replaces a prompt's text. */
const promptMark = "[prompt]"

/**
 * A function that cuts the caller's message texts out of a provider's error
 * body, which may echo them back (a 400 quoting the content it refused): a
 * prompt is the user's data and goes in no error, log or span. Texts under
 * `shortKeyLength` characters are left, as short keys are: too short to be
 * the user's data worth hiding, and cutting them would mangle the message.
 * Escaped as JSON too, as a JSON body writes them.
 *
 * @since 0.4.0
 * @category constructors
 */
export const promptRedactor = (texts: ReadonlyArray<string>): ((text: string) => string) => {
  const forms = [
    ...new Set(
      texts
        .filter((text) => text.length >= shortKeyLength)
        .flatMap((text) => [text, JSON.stringify(text).slice(1, -1)])
        // The longest first: a text that contains another is cut whole.
        .sort((a, b) => b.length - a.length)
    )
  ]
  if (forms.length === 0) return (text) => text
  return (text) => forms.reduce((acc, form) => (acc.includes(form) ? acc.replaceAll(form, promptMark) : acc), text)
}

/**
 * The texts of a request's messages: string contents and text parts.
 *
 * @since 0.4.0
 * @category utils
 */
export const messageTexts = (messages: ReadonlyArray<{ readonly content?: unknown }>): ReadonlyArray<string> =>
  messages.flatMap((message) => {
    const content = message.content
    if (typeof content === "string") return [content]
    if (!Array.isArray(content)) return []
    return content.flatMap((part: unknown) =>
      typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string"
        ? [(part as { text: string }).text]
        : []
    )
  })
