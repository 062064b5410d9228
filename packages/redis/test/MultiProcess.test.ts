/**
 * Three router processes share one Redis (issue #16): each child
 * (fixtures/router.ts) runs Effect `IronlabsClient`s over the Redis store and
 * the OpenAI provider, against one loopback simulator in this process, and is
 * driven step by step by JSON-line commands. The simulator tells the
 * processes apart by their API keys (`sk-a`, `sk-b`, `sk-c`), so a model can
 * fail for one process only: what the others then do with it came through
 * Redis, not from their own calls.
 *
 * The shared Redis is a one-node Redis Cluster (cluster mode on, every slot
 * on the node): a script whose keys were on two slots would fail with
 * `CROSSSLOT` there, and `CLUSTER KEYSLOT` answers. The outage test has a
 * standalone redis-server of its own, killed (SIGKILL) and restarted on the
 * same port. Times are `process.hrtime` in milliseconds, a clock all the
 * processes share.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { createClient } from "redis"
import { findRedisServer, freePort, type RedisServer, startRedisServer } from "@ironlabsai/testing/RedisServer"
import { keySlot, uniquePrefix } from "./utils/redis.js"

const fixture = fileURLToPath(new URL("fixtures/router.ts", import.meta.url))
const now = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** The fallback every chain ends with: it always answers. */
const FALLBACK = "openai/fallback"

type Reply = Record<string, unknown> & { readonly error?: string }

/** A router child process, driven by JSON lines. */
interface Router {
  readonly name: string
  readonly key: string
  readonly pid: number
  readonly stderr: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly isRunning: () => boolean
  readonly send: <A = Reply>(op: string, args?: Record<string, unknown>, timeoutMillis?: number) => Promise<A>
  readonly kill: () => void
}

const spawnRouter = async (name: string): Promise<Router> => {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ["--conditions=@ironlabsai/source", "--import", "tsx", fixture],
    { stdio: ["pipe", "pipe", "pipe"] }
  )
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  let running = true
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      running = false
      resolve({ code, signal })
    })
  )
  const pending = new Map<number, (reply: Reply) => void>()
  let ready: (() => void) | undefined
  const started = new Promise<void>((resolve) => {
    ready = resolve
  })
  createInterface({ input: child.stdout }).on("line", (line) => {
    const message = JSON.parse(line) as Reply & { readonly id?: number; readonly ready?: boolean }
    if (message.ready === true) ready?.()
    else if (message.id !== undefined) pending.get(message.id)?.(message)
  })
  let next = 0
  const router: Router = {
    name,
    key: `sk-${name.toLowerCase()}`,
    pid: child.pid!,
    stderr: () => stderr,
    exited,
    isRunning: () => running,
    send: <A>(op: string, args: Record<string, unknown> = {}, timeoutMillis = 15_000) =>
      new Promise<A>((resolve, reject) => {
        const id = ++next
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`router ${name}: no answer to ${op} within ${timeoutMillis} ms\n${stderr}`))
        }, timeoutMillis)
        pending.set(id, (reply) => {
          clearTimeout(timer)
          pending.delete(id)
          if (reply.error !== undefined) reject(new Error(`router ${name}: ${op} failed: ${reply.error}`))
          else resolve(reply as A)
        })
        child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`)
      }),
    kill: () => {
      if (running) child.kill("SIGKILL")
    }
  }
  await Promise.race([
    started,
    exited.then(() => Promise.reject(new Error(`router ${name} exited at start:\n${stderr}`))),
    sleep(40_000).then(() => Promise.reject(new Error(`router ${name} did not start within 40 s:\n${stderr}`)))
  ])
  return router
}

/** A one-node Redis Cluster: cluster mode on and all 16384 slots on this node, so keys of two slots in one script fail. */
interface ClusterNode {
  readonly url: string
  readonly pid: number
  readonly admin: ReturnType<typeof createClient>
  readonly close: () => Promise<void>
}

const startClusterNode = async (): Promise<ClusterNode> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "ironlabsai-cluster-"))
  const server = spawn(
    findRedisServer(),
    [
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      ...["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf")]
    ],
    { stdio: "ignore" }
  )
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()))
  const url = `redis://127.0.0.1:${port}`
  const admin = createClient({ url, socket: { reconnectStrategy: false } })
  admin.on("error", () => {})
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await admin.connect()
      break
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(25)
    }
  }
  await admin.sendCommand(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
  while (!String(await admin.sendCommand(["CLUSTER", "INFO"])).includes("cluster_state:ok")) {
    if (Date.now() > deadline) throw new Error("the one-node cluster did not reach cluster_state:ok")
    await sleep(25)
  }
  return {
    url,
    pid: server.pid!,
    admin,
    close: async () => {
      if (admin.isOpen) admin.destroy()
      server.kill("SIGKILL")
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A model's chain: `first`, then the fallback, neither retried. */
const chain = (first: string, extra: Record<string, unknown> = {}) => ({
  failover_chain: [
    { model: `openai/${first}`, max_retries: 0, timeout: 5 },
    { model: FALLBACK, max_retries: 0, timeout: 5 }
  ],
  ...extra
})

interface RequestReply {
  readonly ok: boolean
  readonly model?: string
  readonly error?: string
  readonly attempts: ReadonlyArray<{
    readonly model: string
    readonly outcome: string
    readonly skip?: string
    readonly reason?: string
  }>
}
interface SkipReply {
  /** When the client's model health first answered a skip. */
  readonly skippedAt?: number
  readonly state?: string
  /** The model's attempt in the request sent right after: a skip, and why. */
  readonly skip?: { readonly model: string; readonly outcome: string; readonly skip?: string }
  readonly timedOut?: boolean
  readonly polls: number
}
interface LoopStats {
  readonly ok: number
  readonly failed: number
  readonly errors: Record<string, number>
  readonly answeredBy: Record<string, number>
  readonly calls: Record<string, number>
}
interface Transition {
  readonly model: string
  readonly from: string
  readonly to: string
  readonly at: number
}

const run = uniquePrefix()
/** What the tests measured, printed at the end (the figures of the report). */
const figures: Record<string, string> = {}

let cluster: ClusterNode
let outage: RedisServer
let sim: Simulator.Simulator
let routers: ReadonlyArray<Router> = []
/** What a model answers a process (by its API key), when not the default success. */
const faults = new Map<string, (key: string) => Simulator.Reply | undefined>()

beforeAll(async () => {
  ;[cluster, outage, sim] = await Promise.all([
    startClusterNode(),
    startRedisServer(),
    Simulator.start({
      handler: (request) => {
        const key = (request.headers.authorization ?? "").replace(/^Bearer /, "")
        return faults.get(request.model ?? "")?.(key) ?? {}
      }
    })
  ])
  routers = await Promise.all(["A", "B", "C"].map(spawnRouter))
}, 60_000)

afterAll(async () => {
  for (const router of routers) router.kill()
  await Promise.all(routers.map((router) => router.exited))
  await Promise.all([cluster?.close(), outage?.close(), sim?.close()])
  console.log(`multi-process figures:\n${JSON.stringify(figures, null, 2)}`)
}, 30_000)

/** Makes client `name` in each of `on` over `url`, with `reliability` and store `options`. */
const clients = (
  on: ReadonlyArray<Router>,
  name: string,
  reliability: Record<string, unknown>,
  options: { readonly url?: string; readonly subscribe?: (router: Router) => boolean } & Record<string, unknown> = {}
) => {
  const { subscribe, url, ...rest } = options
  return Promise.all(
    on.map((router) =>
      router.send("client", {
        spec: {
          name,
          url: url ?? cluster.url,
          prefix: `${run}-${name}`,
          reliability,
          apiKey: router.key,
          baseURL: sim.openaiBaseUrl,
          ...(subscribe === undefined ? {} : { subscribe: subscribe(router) }),
          ...rest
        }
      })
    )
  )
}

/** `router`'s client `name` sends requests until `first` fails `times` times for it, its breaker then opens: when it saw it open. */
const openOn = async (router: Router, name: string, model: string, times = 3): Promise<number> => {
  for (let i = 0; i < times; i++) {
    const answer = await router.send<RequestReply>("request", { client: name })
    assert.strictEqual(answer.model, FALLBACK, `request ${i + 1} on ${router.name} fell back`)
    assert.deepStrictEqual(answer.attempts[0], { model, outcome: "failure", reason: "ServerError" })
  }
  const { transitions } = await router.send<{ transitions: ReadonlyArray<Transition> }>("transitions", { client: name })
  const opened = transitions.find((transition) => transition.model === model && transition.to === "open")
  assert.isDefined(opened, `${router.name} saw ${model} open`)
  return opened!.at
}

/** Every router answers once through `model` (it is healthy for all and the client has seen it). */
const warmUp = (on: ReadonlyArray<Router>, name: string, model: string) =>
  Promise.all(
    on.map(async (router) => {
      const answer = await router.send<RequestReply>("request", { client: name })
      assert.strictEqual(answer.model, model, `${router.name} warmed up on ${model}`)
    })
  )

/** Each of `on` asks its model health every millisecond until it skips `model`: when it first did. */
const watch = (on: ReadonlyArray<Router>, name: string, model: string) => {
  const all = Promise.all(
    on.map((router) => router.send<SkipReply>("until-skip", { client: name, model, timeoutMillis: 5_000 }))
  )
  // Awaited by the test once the model is opened; not left unhandled if opening it failed first.
  all.catch(() => {})
  return all
}

/** Each of `on` first skipped the model (in `state`) at most `bound` ms after `since`, and its router did too. */
const assertSkipped = (
  label: string,
  on: ReadonlyArray<Router>,
  seen: ReadonlyArray<SkipReply>,
  since: number,
  state: string,
  bound: number
) => {
  for (const [i, router] of on.entries()) {
    const skip = seen[i]!
    assert.strictEqual(skip.state, state, `${router.name}: ${JSON.stringify(skip)}`)
    // The request sent right after: the router skipped the model, for the same reason.
    assert.strictEqual(skip.skip?.outcome, "skipped", `${router.name}: ${JSON.stringify(skip)}`)
    assert.strictEqual(skip.skip?.skip, state)
    const latency = skip.skippedAt! - since
    figures[`${label} -> ${router.name}'s first skip`] = ms(latency)
    assert.isAtMost(latency, bound, `${router.name} skipped ${ms(latency)} after ${label}`)
  }
}

const closeAll = (on: ReadonlyArray<Router>, name: string) =>
  Promise.all(on.map((router) => router.send("close", { client: name })))

const ms = (millis: number) => `${millis.toFixed(1)} ms`

describe("three router processes over one Redis", { timeout: 20_000 }, () => {
  it("a model opened by A is skipped by B and C within 100 ms (pub/sub)", async () => {
    const [A, B, C] = routers as [Router, Router, Router]
    // The reconcile poll is 10 s here: whatever reaches B and C within a second came by pub/sub. Three trials,
    // each with a model of its own: the median is held to 100 ms, each trial to a second (on a busy machine
    // one trial can be slow for reasons that are not Redis's: four processes share the cores).
    const trials = [1, 2, 3]
    const latencies: Array<Array<number>> = [[], []]
    for (const trial of trials) {
      const name = `pubsub${trial}`
      const model = `openai/x${trial}`
      await clients(routers, name, chain(`x${trial}`), { reconcileMillis: 10_000 })
      await warmUp(routers, name, model)
      faults.set(`x${trial}`, (key) => (key === A.key ? { status: 500 } : undefined))
      // B and C ask their own model health, as their routers do on each attempt, until it skips the model.
      const watching = watch([B, C], name, model)
      await sleep(100)
      const openedAt = await openOn(A, name, model)
      const seen = await watching
      assertSkipped(`pub/sub, trial ${trial}: A's open`, [B, C], seen, openedAt, "open", 1_000)
      for (const [i, skip] of seen.entries()) latencies[i]!.push(skip.skippedAt! - openedAt)
      await closeAll(routers, name)
    }
    for (const [i, router] of [B, C].entries()) {
      const median = [...latencies[i]!].sort((a, b) => a - b)[1]!
      figures[`pub/sub: A's open -> ${router.name}'s first skip, median of 3`] = ms(median)
      assert.isAtMost(median, 100, `${router.name}: ${latencies[i]!.map(ms).join(", ")}`)
    }
  })

  it("with pub/sub cut, B and C skip it within one reconcile interval", async () => {
    const [A, B, C] = routers as [Router, Router, Router]
    const model = "openai/y2"
    const reconcileMillis = 1_000
    // `subscribe: false` (RedisHealth option, through RedisStore's `health`): B and C only poll.
    await clients(routers, "polled", chain("y2"), { reconcileMillis, subscribe: (router) => router === A })
    await warmUp(routers, "polled", model)
    faults.set("y2", (key) => (key === A.key ? { status: 500 } : undefined))
    const watching = watch([B, C], "polled", model)
    await sleep(100)
    const openedAt = await openOn(A, "polled", model)
    const seen = await watching
    // One interval, plus the poll's own round trip and this busy machine's scheduling.
    assertSkipped("poll only (1 s): A's open", [B, C], seen, openedAt, "open", reconcileMillis + 250)
    await closeAll(routers, "polled")
  })

  it("after the open period exactly one probe call reaches the model from the fleet, then all three call it again", async () => {
    const [A, B, C] = routers as [Router, Router, Router]
    const model = "openai/p"
    await clients(routers, "probe", chain("p", { health: { open_for: 1 } }))
    await warmUp(routers, "probe", model)
    faults.set("p", (key) => (key === A.key ? { status: 500 } : undefined))
    const openedAt = await openOn(A, "probe", model)
    for (const router of [B, C]) {
      const skip = await router.send<SkipReply>("until-skip", { client: "probe", model, timeoutMillis: 2_000 })
      assert.strictEqual(skip.skip?.skip, "open", `${router.name}: ${JSON.stringify(skip)}`)
    }
    // Healthy again for everyone; the first call takes 300 ms, so that a second probe would land while it is out.
    const probeMillis = 300
    let served = 0
    faults.set("p", () => (served++ === 0 ? { latency: probeMillis } : undefined))
    const mark = sim.requests.length
    // Two requests at a time in each process, every 5 ms, through the half-open period and past the probe.
    await Promise.all(routers.map((router) => router.send("loop-start", { client: "probe", concurrency: 2 })))
    const calls = () => sim.requests.slice(mark).filter((request) => request.model === "p")
    const deadline = Date.now() + 8_000
    const callersAfterProbe = () => {
      const probe = calls()[0]
      if (probe === undefined) return new Set<string>()
      return new Set(
        calls()
          .filter((request) => request.receivedAt >= probe.receivedAt + probeMillis)
          .map((request) => request.headers.authorization)
      )
    }
    while (callersAfterProbe().size < 3 && Date.now() < deadline) await sleep(20)
    const stats = await Promise.all(routers.map((router) => router.send<LoopStats>("loop-stop", { client: "probe" })))
    for (const [i, stat] of stats.entries())
      assert.strictEqual(stat.failed, 0, `${routers[i]!.name}: ${JSON.stringify(stat)}`)

    const probe = calls()[0]
    assert.isDefined(probe, "a probe reached the model")
    const whileProbing = calls().filter((request) => request.receivedAt < probe!.receivedAt + probeMillis)
    assert.strictEqual(whileProbing.length, 1, "one call while half-open")
    // The routers agree: one attempt in the fleet was a probe.
    const probes = await Promise.all(
      routers.map((router) =>
        router.send<{ probes: ReadonlyArray<{ model: string; outcome: string }> }>("probes", { client: "probe" })
      )
    )
    const fleetProbes = probes.flatMap((answer) => answer.probes).filter((each) => each.model === model)
    assert.deepStrictEqual(
      fleetProbes.map((each) => each.outcome),
      ["success"]
    )
    assert.deepStrictEqual(
      [...callersAfterProbe()].sort(),
      routers.map((router) => `Bearer ${router.key}`),
      "all three call the model again after the probe's success"
    )
    figures["probe: sent by"] = String(probe!.headers.authorization).replace("Bearer ", "")
    figures["probe: calls to the model while it was out"] = String(whileProbing.length)
    figures["probe: after A's open (open_for 1 s, jittered 0.8-1.2)"] = ms(
      probe!.receivedAt - (Date.now() - now() + openedAt)
    )
    figures["probe: calls during the run (A, B, C)"] = stats.map((stat) => stat.calls[model] ?? 0).join(", ")
    await closeAll(routers, "probe")
  })

  it("a 60 rpm budget across three processes admits 60 in all, not 180", async () => {
    const model = "openai/r"
    await clients(routers, "budget", {
      failover_chain: [{ model, max_retries: 0, timeout: 5 }],
      rate_limits: { [model]: { rpm: 60 } },
      // A spent budget fails the request at once, so that the three keep asking.
      health: { on_all_unavailable: "fail" }
    })
    const mark = sim.requests.length
    await Promise.all(
      routers.map((router) => router.send("loop-start", { client: "budget", concurrency: 4, pauseMillis: 2 }))
    )
    // Under a second: the bucket refills one request a second, continuously, from its first take.
    await sleep(800)
    const stats = await Promise.all(routers.map((router) => router.send<LoopStats>("loop-stop", { client: "budget" })))
    const admitted = sim.requests.slice(mark).filter((request) => request.model === "r").length
    const answered = stats.reduce((sum, stat) => sum + stat.ok, 0)
    figures["budget: admitted by A, B, C"] = stats.map((stat) => stat.ok).join(", ")
    figures["budget: admitted in all / refused"] = `${admitted} / ${stats.reduce((sum, stat) => sum + stat.failed, 0)}`
    assert.strictEqual(answered, admitted, "every admitted request reached the model and was answered")
    for (const stat of stats) {
      assert.isAbove(stat.failed, 0, "each process asked for more than it got")
      for (const error of Object.keys(stat.errors)) assert.match(error, /^NoModelAvailable/)
    }
    // ±1: a refill of the global bucket (1 a second) landing inside the window, or a lease token taken last and
    // not yet spent when the loops stopped (a lease holds at most 1 request at 60 rpm).
    assert.isAtLeast(admitted, 59)
    assert.isAtMost(admitted, 61)
    await closeAll(routers, "budget")
  })

  it("every key a model has is on that model's Cluster slot and has a TTL", async () => {
    const [A] = routers as [Router]
    const model = "openai/k"
    // One model with every part: an open breaker (health, reporters, the probe lease) and both budgets.
    await clients([A], "layout", chain("k", { rate_limits: { [model]: { rpm: 600, tpm: 1_000_000 } } }))
    // The first request finds no lease yet (the store takes one on first sight of the limit), and skips the model.
    await A.send("request", { client: "layout" })
    await sleep(50)
    faults.set("k", () => ({ status: 500 }))
    await openOn(A, "layout", model)
    await sleep(100)
    const keys: Array<string> = []
    for await (const batch of cluster.admin.scanIterator({ MATCH: `${run}-*`, COUNT: 1000 })) keys.push(...batch)
    const modelKeys = keys.filter((key) => key.startsWith(`${run}-layout:{${model}}:`)).sort()
    assert.deepStrictEqual(
      modelKeys.map((key) => key.slice(key.lastIndexOf(":") + 1)),
      ["health", "probe", "reporters", "rpm", "tpm"]
    )
    // Every key written in this run (all the tests so far, on the cluster node) has a TTL, and each model's keys
    // are on one slot: its hash tag's, as Redis Cluster computes it.
    const byModel = new Map<string, Array<number>>()
    for (const key of keys) {
      const ttl = Number(await cluster.admin.sendCommand(["PTTL", key]))
      assert.isAbove(ttl, 0, `${key} has a TTL`)
      const slot = Number(await cluster.admin.sendCommand(["CLUSTER", "KEYSLOT", key]))
      const tag = /\{([^}]+)\}/.exec(key)?.[1]
      assert.isDefined(tag, `${key} has a hash tag`)
      assert.strictEqual(slot, keySlot(`{${tag}}`))
      // `prefix:{model}`: one model of one test.
      const owner = key.slice(0, key.indexOf("}") + 1)
      byModel.set(owner, [...(byModel.get(owner) ?? []), slot])
    }
    for (const [each, slots] of byModel) assert.strictEqual(new Set(slots).size, 1, `${each}: ${slots.join(", ")}`)
    // On a Cluster node a script over two slots fails (CROSSSLOT): none failed, in any process.
    for (const router of routers) {
      const { errors } = await router.send<{ errors: number }>("errors")
      assert.strictEqual(errors, 0, `${router.name} counted Redis errors:\n${router.stderr()}`)
    }
    figures["layout: keys checked (models)"] = `${keys.length} (${byModel.size})`
    await closeAll([A], "layout")
  })

  it("Redis killed mid-run: no request fails; a hold made during the outage reaches B once Redis is back", async () => {
    const [A, B] = routers as [Router, Router]
    const model = "openai/h"
    const reconcileMillis = 1_000
    const maxReconnectMillis = 200
    await clients(
      [A, B],
      "outage",
      chain("h", { rate_limits: { [model]: { rpm: 100_000 }, [FALLBACK]: { rpm: 100_000 } } }),
      { url: outage.url, reconcileMillis, maxReconnectMillis }
    )
    await warmUp([A, B], "outage", model)
    const loop = { client: "outage", concurrency: 2, pauseMillis: 5 }
    await Promise.all([A, B].map((router) => router.send("loop-start", loop)))
    await sleep(300)
    await outage.stop()
    const killedAt = now()
    await sleep(500)
    const beforeKill = await Promise.all([A, B].map((router) => router.send<LoopStats>("loop-stop", loop)))
    // Redis is down from here until it is restarted.
    await Promise.all([A, B].map((router) => router.send("loop-start", loop)))
    // A meets a 429 with a long wait: it holds the model, and cannot tell Redis.
    faults.set("h", (key) => (key === A.key ? { status: 429, headers: { "retry-after": "30" } } : undefined))
    await sleep(700)
    const stateOf = async (router: Router) =>
      (
        await router.send<{ health: ReadonlyArray<{ model: string; state: string }> }>("health", { client: "outage" })
      ).health.find((status) => status.model === model)?.state
    assert.strictEqual(await stateOf(A), "held")
    assert.strictEqual(await stateOf(B), "healthy")
    const watching = B.send<SkipReply>("until-skip", { client: "outage", model, timeoutMillis: 8_000 })
    await outage.start()
    const restartedAt = now()
    const skip = await watching
    await sleep(200)
    const duringOutage = await Promise.all([A, B].map((router) => router.send<LoopStats>("loop-stop", loop)))
    for (const [i, stat] of [...beforeKill, ...duringOutage].entries()) {
      assert.strictEqual(stat.failed, 0, `${i % 2 === 0 ? "A" : "B"}: ${JSON.stringify(stat)}`)
      assert.isAbove(stat.ok, 0)
    }
    const answered = (stats: ReadonlyArray<LoopStats>) => stats.map((stat) => `${stat.ok} / ${stat.failed}`).join(", ")
    figures["outage: answered / failed (A, B), across the kill"] = answered(beforeKill)
    figures["outage: answered / failed (A, B), Redis down, then back"] = answered(duringOutage)
    figures["outage: Redis down for"] = ms(restartedAt - killedAt)
    // One reconcile interval once both have reconnected (at most maxReconnectDelay + 50 ms of jitter), and a margin.
    const bound = reconcileMillis + maxReconnectMillis + 50 + 250
    assertSkipped("outage: Redis back, A's hold", [B], [skip], restartedAt, "held", bound)
    for (const router of [A, B]) {
      assert.include(router.stderr(), "Redis is unreachable", `${router.name} warned on stderr`)
      const { errors } = await router.send<{ errors: number }>("errors")
      assert.isAbove(errors, 0, `${router.name} counted ironlabsai.redis.errors`)
    }
    await closeAll([A, B], "outage")
  })

  it("every router exits by itself once its clients are closed, and nothing is left running", async () => {
    const exits = await Promise.all(
      routers.map(async (router) => {
        await router.send("exit")
        return Promise.race([router.exited, sleep(10_000).then(() => undefined)])
      })
    )
    for (const [i, exit] of exits.entries()) {
      assert.deepStrictEqual(exit, { code: 0, signal: null }, `${routers[i]!.name} exited:\n${routers[i]!.stderr()}`)
    }
    const clusterPid = cluster.pid
    await cluster.close()
    await outage.close()
    for (const pid of [...routers.map((router) => router.pid), clusterPid]) {
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} is gone`)
    }
    assert.isFalse(outage.running())
  })
})
