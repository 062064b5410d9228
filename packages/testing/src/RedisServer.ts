/**
 * Real `redis-server` processes for tests and benchmarks: found on this
 * machine (or installed with apt-get when running as root on Debian or
 * Ubuntu), started on a free loopback port with no persistence, and stopped
 * or restarted on the same port to test outages.
 *
 * @example
 * import { RedisServer } from "@ironlabsai/testing"
 *
 * const server = await RedisServer.startRedisServer()
 * console.log(server.url) // redis://127.0.0.1:<a free port>
 * await server.stop() // an outage: SIGKILL
 * await server.start() // back on the same port, empty
 * await server.close()
 *
 * @since 0.4.0
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"

const candidates = (): ReadonlyArray<string> => [
  ...(process.env.PATH ?? "").split(delimiter).filter((dir) => dir !== ""),
  "/usr/bin",
  "/usr/sbin",
  "/usr/local/bin",
  "/opt/homebrew/bin"
]

const lookup = (): string | undefined => {
  for (const dir of candidates()) {
    const path = join(dir, "redis-server")
    if (existsSync(path)) return path
  }
  return undefined
}

const howToInstall =
  "redis-server was not found (looked in PATH, /usr/bin, /usr/sbin, /usr/local/bin). The @ironlabsai/redis tests run " +
  "against a real Redis: install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`; macOS: `brew install redis`) " +
  "and run the tests again."

/**
 * The `redis-server` binary: found, or installed with apt-get when this is root on Debian/Ubuntu, or an error saying how to get it.
 *
 * @since 0.4.0
 * @category utils
 */
export const findRedisServer = (): string => {
  const found = lookup()
  if (found !== undefined) return found
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0
  if (isRoot && existsSync("/usr/bin/apt-get")) {
    console.log("redis-server is missing: installing it with `apt-get update && apt-get install -y redis-server`")
    try {
      execFileSync("apt-get", ["update"], { stdio: "inherit" })
      execFileSync("apt-get", ["install", "-y", "redis-server"], {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
      })
    } catch (cause) {
      throw new Error(`Installing redis-server with apt-get failed. ${howToInstall}`, { cause })
    }
    const installed = lookup()
    if (installed !== undefined) return installed
  }
  throw new Error(howToInstall)
}

/**
 * A free TCP port on the loopback interface.
 *
 * @since 0.4.0
 * @category utils
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** Whether a Redis answers PING on `port`. */
const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    let reply = ""
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk) => {
      reply += chunk.toString()
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"))
    })
  })

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/**
 * A redis-server child process on a fixed port, which can be stopped and started again.
 *
 * @since 0.4.0
 * @category utils
 */
export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Whether it is running. */
  readonly running: () => boolean
  /** Stops it (SIGKILL unless `graceful`) and waits for it to exit. */
  readonly stop: (options?: { readonly graceful?: boolean }) => Promise<void>
  /** Starts it again on the same port (empty: no persistence) and waits for PING. */
  readonly start: () => Promise<void>
  /** Stops it for good. */
  readonly close: () => Promise<void>
}

/**
 * Starts a redis-server on a free loopback port (or `port`) with no persistence, and waits until it answers PING.
 *
 * @since 0.4.0
 * @category utils
 */
export const startRedisServer = async (options?: { readonly port?: number }): Promise<RedisServer> => {
  const binary = findRedisServer()
  const port = options?.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), "ironlabsai-redis-"))
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let output = ""

  const start = async (): Promise<void> => {
    if (child !== undefined) return
    output = ""
    const spawned = spawn(
      binary,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    child = spawned
    spawned.stdout?.on("data", (chunk) => {
      output += chunk.toString()
    })
    spawned.stderr?.on("data", (chunk) => {
      output += chunk.toString()
    })
    exited = new Promise((resolve) =>
      spawned.once("exit", () => {
        if (child === spawned) child = undefined
        resolve()
      })
    )
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (child === undefined) throw new Error(`redis-server on port ${port} exited at start:\n${output}`)
      if (await ping(port)) return
      await sleep(25)
    }
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${output}`)
  }

  const stop = async (stopOptions?: { readonly graceful?: boolean }): Promise<void> => {
    const running = child
    if (running === undefined) return
    running.kill(stopOptions?.graceful === true ? "SIGTERM" : "SIGKILL")
    await exited
  }

  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    running: () => child !== undefined,
    stop,
    start,
    close: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
