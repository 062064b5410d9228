/**
 * The loopback simulator's HTTP server: routing, recording, scripted replies and
 * fault injection over `node:http`.
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Duration } from "effect"
import type * as Simulator from "../Simulator.js"
import * as Wire from "./simulatorWire.js"
import * as Zlib from "node:zlib"

type Mutable<A> = { -readonly [K in keyof A]: A[K] }

/** One request in flight: its record, its response, and the timers acting on it. */
interface Pending {
  readonly record: Mutable<Simulator.RecordedRequest>
  readonly request: Http.IncomingMessage
  readonly response: Http.ServerResponse
  readonly timers: Set<NodeJS.Timeout>
}

interface Waiter {
  /** Returns `true` when satisfied, an `Error` when it never can be, `false` otherwise. */
  readonly check: () => boolean | Error
  readonly settle: (result: true | Error) => void
}

/** @internal */
export const defaultMaxBodyBytes = 10 * 1024 * 1024

/** @internal */
export const defaultWaitMillis = 2000

/** What a request asks for: a chat (completion or message), the models list, or an unknown route. */
type Endpoint = "chat" | "models" | "unknown"

const routeOf = (
  method: string,
  pathname: string,
  headers: Readonly<Record<string, string>>
): readonly [Simulator.Wire, Endpoint] => {
  if (method === "POST" && pathname === "/v1/chat/completions") return ["openai", "chat"]
  if (method === "POST" && pathname === "/v1/messages") return ["anthropic", "chat"]
  if (method === "GET" && pathname === "/v1/models") {
    // Both APIs serve this path: the Anthropic client's headers tell them apart.
    const anthropic = headers["anthropic-version"] !== undefined || headers["x-api-key"] !== undefined
    return [anthropic ? "anthropic" : "openai", "models"]
  }
  return ["unknown", "unknown"]
}

const parseBody = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const flattenHeaders = (headers: Http.IncomingHttpHeaders): Record<string, string> => {
  const flat: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return flat
}

const authenticationFailure = (
  options: Simulator.Options,
  wire: Simulator.Wire,
  headers: Readonly<Record<string, string>>
): Simulator.Reply | undefined => {
  if (wire === "openai" && options.openaiApiKey !== undefined) {
    return headers["authorization"] === `Bearer ${options.openaiApiKey}`
      ? undefined
      : {
          status: 401,
          error: { type: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key provided." }
        }
  }
  if (wire === "anthropic" && options.anthropicApiKey !== undefined) {
    return headers["x-api-key"] === options.anthropicApiKey
      ? undefined
      : { status: 401, error: { type: "authentication_error", message: "invalid x-api-key" } }
  }
  return undefined
}

/** @internal */
export const start = (options: Simulator.Options = {}): Promise<Simulator.Simulator> => {
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes
  const requests: Array<Mutable<Simulator.RecordedRequest>> = []
  const queues = new Map<string, Array<Simulator.Reply>>()
  const inFlight = new Set<Pending>()
  const waiters = new Set<Waiter>()
  let nextId = 1
  let nextConnection = 1
  let closing: Promise<void> | undefined

  const find = (id: number): Simulator.RecordedRequest | undefined => requests.find((record) => record.id === id)

  const notify = (): void => {
    for (const waiter of [...waiters]) {
      const result = waiter.check()
      if (result !== false) waiter.settle(result)
    }
  }

  const waitFor = (timeoutMs: number, describe: () => string, check: () => boolean | Error): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const first = check()
      if (first === true) return resolve()
      if (first instanceof Error) return reject(first)
      if (closing !== undefined) return reject(new Error("The simulator is closed."))
      const waiter: Waiter = {
        check,
        settle: (result) => {
          clearTimeout(timer)
          waiters.delete(waiter)
          if (result === true) resolve()
          else reject(result)
        }
      }
      const timer = setTimeout(
        () => waiter.settle(new Error(`Timed out after ${timeoutMs} ms ${describe()}.`)),
        timeoutMs
      )
      waiters.add(waiter)
    })

  const settle = (pending: Pending, outcome: Simulator.Outcome): void => {
    if (pending.record.outcome !== "pending") return
    pending.record.outcome = outcome
    notify()
  }

  const clearTimers = (pending: Pending): void => {
    for (const timer of pending.timers) clearTimeout(timer)
    pending.timers.clear()
  }

  const after = (pending: Pending, millis: number, task: () => void): void => {
    if (millis <= 0) {
      task()
      return
    }
    const timer = setTimeout(() => {
      pending.timers.delete(timer)
      task()
    }, millis)
    pending.timers.add(timer)
  }

  const resetSocket = (pending: Pending): void => {
    settle(pending, "reset")
    pending.request.socket.destroy()
  }

  /** The ids `GET /v1/models` lists: the options', or the wire's own followed by the scripted models. */
  const modelIds = (wire: Wire.ServedWire): ReadonlyArray<string> => {
    if (options.models !== undefined) return options.models
    const scripted = [...queues].filter(([, queue]) => queue.length > 0).map(([model]) => model)
    return [...new Set([...Wire.defaultModels[wire], ...scripted])]
  }

  const choose = (record: Simulator.RecordedRequest, wire: Wire.ServedWire, endpoint: Endpoint): Simulator.Reply => {
    const denied = authenticationFailure(options, wire, record.headers)
    if (denied !== undefined) return denied
    if (endpoint === "models") return { body: Wire.modelList(wire, modelIds(wire)) }
    // A request the real API refuses never reaches the script.
    const invalid = options.validate === false ? undefined : Wire.invalidRequest(wire, record.body)
    if (invalid !== undefined) return { status: 400, error: invalid }
    const scripted = record.model === undefined ? undefined : queues.get(record.model)?.shift()
    if (scripted !== undefined) return scripted
    if (options.handler === undefined) return {}
    try {
      return options.handler(record)
    } catch (cause) {
      return { status: 500, error: { type: "simulator_error", message: `The simulator's handler threw: ${cause}` } }
    }
  }

  /** The reply to a recorded request, and the wire to render it in. */
  const replyTo = (
    record: Simulator.RecordedRequest,
    endpoint: Endpoint,
    tooLarge: boolean
  ): readonly [Simulator.Reply, Wire.ServedWire] => {
    if (tooLarge) {
      const message = `Request body exceeds ${maxBodyBytes} bytes.`
      return record.wire === "anthropic"
        ? [
            { status: 413, error: { type: "request_too_large", message }, headers: { connection: "close" } },
            "anthropic"
          ]
        : [
            { status: 413, error: { type: "invalid_request_error", message }, headers: { connection: "close" } },
            "openai"
          ]
    }
    if (record.wire === "unknown") {
      const message = `Unknown request URL: ${record.method} ${record.path}.`
      return [{ status: 404, error: { type: "invalid_request_error", code: "unknown_url", message } }, "openai"]
    }
    return [choose(record, record.wire, endpoint), record.wire]
  }

  const isOpen = (pending: Pending): boolean => !pending.response.destroyed && !pending.response.writableEnded

  /** Ends a body as its script says: close the response, keep the connection open, or destroy it. */
  const finish = (pending: Pending, ending: Wire.Ending): void => {
    if (!isOpen(pending)) return
    if (ending === "end") pending.response.end()
    else if (ending === "reset") resetSocket(pending)
  }

  /**
   * Writes `bytes` in pieces of `size` bytes (all at once without `size`). Each
   * piece waits until the last was flushed and a turn of the event loop has
   * passed, with Nagle off, so that a client in the same process reads them
   * one by one rather than coalesced.
   */
  const writePieces = (pending: Pending, bytes: Buffer, size: number | undefined, done: () => void): void => {
    const split = size !== undefined && size >= 1 && size < bytes.length
    const step = split ? Math.floor(size) : bytes.length
    if (split) pending.request.socket.setNoDelay(true)
    const write = (offset: number): void => {
      if (!isOpen(pending)) return
      if (offset >= bytes.length) {
        done()
        return
      }
      pending.response.write(bytes.subarray(offset, offset + step), (error) => {
        if (error !== undefined && error !== null) return
        if (split) setImmediate(() => write(offset + step))
        else write(offset + step)
      })
    }
    write(0)
  }

  const sendBody = (pending: Pending, reply: Simulator.Reply, script: Wire.BodyScript, stream: boolean): void => {
    const { response } = pending
    const pieces = script.events.map((event) =>
      typeof event === "string" ? Buffer.from(event) : Buffer.from(event.buffer, event.byteOffset, event.byteLength)
    )
    if (reply.reset === "mid-body") {
      const bytes = Buffer.concat(pieces)
      response.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => resetSocket(pending))
      return
    }
    if (reply.dripBytesPerSecond !== undefined && reply.dripBytesPerSecond > 0) {
      const bytes = Buffer.concat(pieces)
      const size = Math.max(1, Math.floor(reply.dripBytesPerSecond / 20))
      const interval = (size / reply.dripBytesPerSecond) * 1000
      const drip = (offset: number): void => {
        if (!isOpen(pending)) return
        const piece = bytes.subarray(offset, offset + size)
        if (offset + size >= bytes.length) {
          if (script.ending === "end") response.end(piece)
          else response.write(piece, () => finish(pending, script.ending))
        } else {
          response.write(piece)
          after(pending, interval, () => drip(offset + size))
        }
      }
      drip(0)
      return
    }
    const gap = stream && reply.chunkInterval !== undefined ? Duration.toMillis(reply.chunkInterval) : 0
    // Without pauses the events go out as one burst, so that `splitEvery` pieces straddle them.
    const bursts = gap > 0 ? pieces : [Buffer.concat(pieces)]
    if (bursts.length === 1 && reply.splitEvery === undefined && script.ending === "end") {
      response.end(bursts[0])
      return
    }
    const emit = (index: number): void => {
      const burst = bursts[index]
      if (burst === undefined) {
        finish(pending, script.ending)
        return
      }
      writePieces(pending, burst, reply.splitEvery, () => {
        if (index + 1 < bursts.length) after(pending, gap, () => emit(index + 1))
        else finish(pending, script.ending)
      })
    }
    emit(0)
  }

  /** Keep-alive pings at `interval` after the headers, and nothing else, until the connection closes. */
  const sendPings = (pending: Pending, reply: Simulator.Reply, wire: Wire.ServedWire, interval: number): void => {
    const exchange = { id: pending.record.id, wire, model: pending.record.model, body: pending.record.body }
    const ping = reply.crlf === true ? Wire.toCrlf(Wire.ping(wire)) : Wire.ping(wire)
    pending.response.writeHead(200, Wire.streamHeaders(exchange, reply))
    pending.response.flushHeaders()
    const loop = (): void => {
      if (!isOpen(pending)) return
      pending.response.write(ping, (error) => {
        if (error === undefined || error === null) after(pending, interval, loop)
      })
    }
    after(pending, interval, loop)
  }

  const answer = (pending: Pending, reply: Simulator.Reply, wire: Wire.ServedWire): void => {
    const latency = reply.latency === undefined ? 0 : Duration.toMillis(reply.latency)
    after(pending, latency, () => {
      if (reply.hang === true) return
      if (reply.reset === "before-headers") {
        resetSocket(pending)
        return
      }
      if (reply.pingOnly !== undefined) {
        sendPings(pending, reply, wire, Math.max(1, Duration.toMillis(reply.pingOnly)))
        return
      }
      const { record, response } = pending
      const rendered = Wire.render({ id: record.id, wire, model: record.model, body: record.body }, reply)
      let headers = rendered.headers
      let script: Wire.BodyScript
      if (reply.gzip === true && !rendered.stream) {
        const compressed = Zlib.gzipSync(rendered.preamble.join(""))
        headers = { ...headers, "content-encoding": "gzip", "content-length": String(compressed.length) }
        script = { events: [compressed], ending: "end" }
      } else {
        script = rendered.stream
          ? Wire.streamScript(wire, reply, rendered)
          : { events: rendered.preamble, ending: "end" }
      }
      response.writeHead(rendered.status, headers)
      const delay = reply.firstChunkDelay === undefined ? 0 : Duration.toMillis(reply.firstChunkDelay)
      if (delay > 0) {
        response.flushHeaders()
        after(pending, delay, () => sendBody(pending, reply, script, rendered.stream))
      } else {
        sendBody(pending, reply, script, rendered.stream)
      }
    })
  }

  const receive = (
    request: Http.IncomingMessage,
    response: Http.ServerResponse,
    connection: number,
    text: string | undefined
  ): void => {
    const method = request.method ?? "GET"
    const path = request.url ?? "/"
    const headers = flattenHeaders(request.headers)
    const [wire, endpoint] = routeOf(method, path.split("?")[0] ?? path, headers)
    const body = text === undefined ? undefined : parseBody(text)
    const model = Wire.isRecord(body) && typeof body["model"] === "string" ? body["model"] : undefined
    const record: Mutable<Simulator.RecordedRequest> = {
      id: nextId++,
      connection,
      wire,
      method,
      path,
      headers,
      body,
      model,
      receivedAt: Date.now(),
      outcome: "pending"
    }
    const pending: Pending = { record, request, response, timers: new Set() }
    requests.push(record)
    inFlight.add(pending)
    response.on("finish", () => settle(pending, "answered"))
    response.on("close", () => {
      clearTimers(pending)
      inFlight.delete(pending)
      settle(pending, response.writableFinished ? "answered" : "client-closed")
    })
    notify()
    const [reply, served] = replyTo(record, endpoint, text === undefined)
    answer(pending, reply, served)
  }

  const connections = new WeakMap<object, number>()
  const server = Http.createServer((request, response) => {
    const connection = connections.get(request.socket) ?? 0
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBodyBytes) chunks.push(chunk)
      else chunks.length = 0
    })
    request.on("end", () => {
      if (closing !== undefined) return void request.socket.destroy()
      receive(request, response, connection, size > maxBodyBytes ? undefined : Buffer.concat(chunks).toString("utf8"))
    })
    request.on("error", () => {
      // the client went away while sending its request: nothing to record
    })
  })
  server.on("connection", (socket) => {
    connections.set(socket, nextConnection++)
  })

  const close = (): Promise<void> => {
    if (closing !== undefined) return closing
    for (const pending of inFlight) {
      clearTimers(pending)
      settle(pending, "server-closed")
    }
    for (const waiter of [...waiters]) waiter.settle(new Error("The simulator was closed."))
    closing = new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    return closing
  }

  return new Promise<Simulator.Simulator>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject)
      const { port } = server.address() as AddressInfo
      const url = `http://127.0.0.1:${port}`
      resolve({
        url,
        openaiBaseUrl: `${url}/v1`,
        anthropicBaseUrl: url,
        get requests() {
          return requests
        },
        script: (model, ...replies) => {
          const queue = queues.get(model)
          if (queue === undefined) queues.set(model, [...replies])
          else queue.push(...replies)
        },
        scripted: (model) => queues.get(model)?.length ?? 0,
        reset: () => {
          queues.clear()
          requests.length = 0
          nextId = 1
        },
        openRequests: () => [...inFlight].filter((pending) => pending.record.outcome === "pending").length,
        waitForRequests: (count, timeoutMs = defaultWaitMillis) =>
          waitFor(
            timeoutMs,
            () => `for ${count} requests (received ${requests.length})`,
            () => requests.length >= count
          ),
        waitForClientClose: (id, timeoutMs = defaultWaitMillis) =>
          waitFor(
            timeoutMs,
            () => `for the client to close request ${id} (outcome: ${find(id)?.outcome ?? "not received"})`,
            () => {
              const outcome = find(id)?.outcome
              if (outcome === undefined || outcome === "pending") return false
              if (outcome === "client-closed") return true
              return new Error(`Request ${id} ended as "${outcome}", not closed by the client.`)
            }
          ),
        close
      })
    })
  })
}
