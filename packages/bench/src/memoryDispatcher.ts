/**
 * An undici dispatcher that answers every request from memory on the next
 * loop turn: the client side of a request with no network, for raw
 * `undici.request` (undici's older handler interface) and UndiciHttpClient
 * (the newer one) alike.
 */
import { Dispatcher } from "undici"

const controller: Dispatcher.DispatchController = {
  aborted: false,
  paused: false,
  reason: null,
  abort() {},
  pause() {},
  resume() {}
}

type AnyHandler = Dispatcher.DispatchHandler & {
  onConnect?: (abort: () => void) => void
  onHeaders?: (status: number, headers: Array<Buffer>, resume: () => void, statusText: string) => boolean
  onData?: (chunk: Buffer) => boolean
  onComplete?: (trailers: Array<Buffer>) => void
}

export class MemoryDispatcher extends Dispatcher {
  private readonly rawHeaders: Array<Buffer>
  private readonly headers: Record<string, string>

  constructor(private readonly body: Buffer) {
    super()
    this.headers = { "content-type": "application/json", "content-length": String(body.byteLength) }
    this.rawHeaders = Object.entries(this.headers).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)])
  }

  override dispatch(_options: Dispatcher.DispatchOptions, handler: AnyHandler): boolean {
    setImmediate(() => {
      if (handler.onRequestStart !== undefined) {
        handler.onRequestStart(controller, {})
        handler.onResponseStart?.(controller, 200, this.headers, "OK")
        handler.onResponseData?.(controller, this.body)
        handler.onResponseEnd?.(controller, {})
      } else {
        handler.onConnect?.(() => {})
        handler.onHeaders?.(200, this.rawHeaders, () => {}, "OK")
        handler.onData?.(this.body)
        handler.onComplete?.([])
      }
    })
    return true
  }
}
