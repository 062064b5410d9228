/**
 * Bounds on JSON a library must walk: a value nested deeper than
 * `maxDepth` is refused where it comes in (a provider's reply, a caller's
 * request), because every recursive walk after it (`JSON.stringify`, Schema's
 * error messages, `inspect`) would overflow the stack on it.
 *
 * @example
 * import { Json } from "@ironlabsai/core"
 *
 * Json.withinDepth(JSON.parse('{"a":[1,{"b":2}]}')) // true
 * Json.withinDepth(JSON.parse("[".repeat(500) + "]".repeat(500))) // false
 *
 * @since 0.3.0
 */
import { Either } from "effect"

/**
 * The deepest nesting accepted: far more than any chat completion, tool
 * schema or tool input needs, far less than what overflows a stack.
 *
 * @since 0.3.0
 * @category constants
 */
export const maxDepth = 100

/**
 * Whether `value` nests no deeper than `limit` (objects and arrays each add a
 * level). Walks without recursion, so any depth is safe to ask about.
 *
 * @since 0.3.0
 * @category utils
 */
export const withinDepth = (value: unknown, limit: number = maxDepth): boolean => {
  if (typeof value !== "object" || value === null) return true
  const stack: Array<readonly [object, number]> = [[value, 1]]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next
    if (depth > limit) return false
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1])
    }
  }
  return true
}

/**
 * Parses JSON text: the value, or why not (`"not JSON"`, or `"nested deeper
 * than 100 levels"`).
 *
 * @since 0.3.0
 * @category utils
 */
export const parseBounded = (text: string): Either.Either<unknown, string> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return Either.left("not JSON")
  }
  return withinDepth(value) ? Either.right(value) : Either.left(`nested deeper than ${maxDepth} levels`)
}
