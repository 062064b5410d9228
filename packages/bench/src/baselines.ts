/**
 * What a user would write instead of IronlabsAI, under the same workload: a
 * hand-written Promise loop over raw undici, and cockatiel's policies.
 */
import { setMaxListeners } from "node:events"
import { ExponentialBackoff, TimeoutStrategy, handleAll, retry, timeout, wrap } from "cockatiel"
import { type Dispatcher, request } from "undici"

export interface Target {
  readonly url: string
  readonly model: string
  readonly maxRetries: number
  readonly timeoutMs: number
  readonly backoffMs: number
}

const headers = { authorization: "Bearer sk-bench", "content-type": "application/json" }
const body = (model: string) => JSON.stringify({ model, messages: [{ role: "user", content: "Hi" }] })

/** One raw POST: the physical limit of the client side. */
export const raw = async (agent: Dispatcher, url: string, model: string, signal?: AbortSignal) => {
  const response = await request(url, { method: "POST", headers, body: body(model), dispatcher: agent, signal })
  if (response.statusCode !== 200) {
    await response.body.dump()
    throw new Error(`HTTP ${response.statusCode}`)
  }
  return response.body.json()
}

const retryable = (status: number) => status === 408 || status === 409 || status === 429 || status >= 500
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The ~40 lines a careful user writes by hand: retries, jittered backoff, a timeout per attempt, failover. */
export const promiseLoop = (agent: Dispatcher, targets: ReadonlyArray<Target>) => async () => {
  for (const target of targets) {
    for (let attempt = 0; attempt <= target.maxRetries; attempt++) {
      if (attempt > 0) await sleep(target.backoffMs * 2 ** (attempt - 1) * (0.8 + 0.4 * Math.random()))
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), target.timeoutMs)
      try {
        const response = await request(target.url, {
          method: "POST",
          headers,
          body: body(target.model),
          dispatcher: agent,
          signal: controller.signal
        })
        if (response.statusCode === 200) return await response.body.json()
        await response.body.dump()
        if (!retryable(response.statusCode)) break
      } catch {
        // a timeout or a transport error: retry
      } finally {
        clearTimeout(timer)
      }
    }
  }
  throw new Error("all models failed")
}

/** cockatiel: per model a timeout inside a retry with exponential backoff; failover across models. */
export const cockatielChain = (agent: Dispatcher, targets: ReadonlyArray<Target>) => {
  const policies = targets.map((target) => ({
    target,
    policy: wrap(
      retry(handleAll, {
        maxAttempts: target.maxRetries,
        backoff: new ExponentialBackoff({ initialDelay: target.backoffMs, maxDelay: 60_000 })
      }),
      timeout(target.timeoutMs, TimeoutStrategy.Aggressive)
    )
  }))
  // What cockatiel uses when given no signal, but with room for every request in flight: each
  // timeout policy listens on it.
  const never = new AbortController().signal
  setMaxListeners(0, never)
  return async () => {
    for (const { policy, target } of policies) {
      try {
        return await policy.execute(({ signal }) => raw(agent, target.url, target.model, signal), never)
      } catch {
        // fail over to the next model
      }
    }
    throw new Error("all models failed")
  }
}
