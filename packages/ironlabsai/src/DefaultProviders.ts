/**
 * The default provider registry: `openai` and `anthropic`, configured from the
 * environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`,
 * `ANTHROPIC_BASE_URL`, as the official SDKs name them), with explicit options
 * taking precedence. Keys are `Redacted` from the moment they are read.
 *
 * @example
 * import { Layer } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { DefaultProviders } from "ironlabsai"
 *
 * const Providers = DefaultProviders.layer({ openai: { baseURL: "http://127.0.0.1:8080/v1" } }).pipe(
 *   Layer.provide(NodeHttpClient.layerUndici)
 * )
 *
 * @since 0.1.0
 */
import type { HttpClient } from "@effect/platform"
import { AnthropicProvider } from "@ironlabsai/anthropic"
import { Provider, Reliability } from "@ironlabsai/core"
import { Connection } from "@ironlabsai/http"
import { OpenAiProvider } from "@ironlabsai/openai"
import { type ConfigError, Effect, Either, Layer, Redacted, Schema } from "effect"

/**
 * Explicit settings of one provider; each one left out is read from env.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderOptions {
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  readonly baseURL?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly openai?: ProviderOptions | undefined
  readonly anthropic?: ProviderOptions | undefined
}

/**
 * The provider prefixes this registry serves.
 *
 * @since 0.1.0
 * @category constants
 */
export const prefixes: ReadonlyArray<string> = ["openai", "anthropic"]

/**
 * The connection options of each provider, once env and options are merged.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved {
  readonly openai: Connection.Options
  readonly anthropic: Connection.Options
}

/**
 * Provider settings that cannot be used: a key with a control character, a
 * base URL that is not http(s) or carries a password, or environment variables
 * that cannot be read. `issues` names each one by its path (`openai.baseURL`,
 * `env`); a key is never shown. Separate from `ReliabilityConfigError`, which
 * is about the reliability config.
 *
 * @since 0.2.0
 * @category errors
 */
export class ConnectionConfigError extends Schema.TaggedError<ConnectionConfigError>("ConnectionConfigError")(
  "ConnectionConfigError",
  { issues: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String })) }
) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Invalid provider settings:\n${this.issues.map((issue) => `  - ${issue.path}: ${issue.message}`).join("\n")}`
  }
}

/**
 * Reads what `options` leaves out from `Config`; explicit options win.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Options = {}): Effect.Effect<Resolved, ConfigError.ConfigError> =>
  Effect.all({
    openai: Effect.map(OpenAiProvider.config, (env) => merge(env, options.openai)),
    anthropic: Effect.map(AnthropicProvider.config, (env) => merge(env, options.anthropic))
  })

/**
 * Every unusable setting, with its path (`openai.apiKey`); a key is never shown.
 *
 * @since 0.1.0
 * @category validation
 */
export const problems = (resolved: Resolved): ReadonlyArray<{ readonly path: string; readonly message: string }> =>
  (["openai", "anthropic"] as const).flatMap((name) =>
    Connection.problems(resolved[name]).map((problem) => ({
      path: `${name}.${problem.field}`,
      message: problem.message
    }))
  )

/**
 * Settings from `options` and `Config`, checked: the resolved settings, or
 * every problem found (an unreadable environment is reported at `env`). Each
 * provider in `used` (the prefixes the config's models use) must have a key,
 * as `openai-node` requires one at construction: a missing key is a problem
 * naming the variable to set, not a failover on every request. A host that
 * needs no key (a local vLLM or Ollama) takes any, such as `"none"`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const resolveChecked = (
  options: Options = {},
  used: ReadonlyArray<string> = []
): Effect.Effect<Resolved, ConnectionConfigError> =>
  Effect.flatMap(Effect.either(resolve(options)), (resolved) => {
    if (Either.isLeft(resolved)) {
      return Effect.fail(new ConnectionConfigError({ issues: [{ path: "env", message: resolved.left.message }] }))
    }
    const issues = [...missingKeys(resolved.right, used), ...problems(resolved.right)]
    return issues.length > 0 ? Effect.fail(new ConnectionConfigError({ issues })) : Effect.succeed(resolved.right)
  })

/** The providers of `used` that have no key, each naming its variable. */
const missingKeys = (resolved: Resolved, used: ReadonlyArray<string>) =>
  (["openai", "anthropic"] as const)
    .filter((name) => used.includes(name) && resolved[name].apiKey === undefined)
    .map((name) => ({
      path: `${name}.apiKey`,
      message: `is not set, and the config has ${name}/ models: set ${name.toUpperCase()}_API_KEY or pass ${name}: { apiKey } (a host that needs no key takes any, such as "none")`
    }))

/**
 * The providers a reliability config's models use (`openai`, `anthropic`),
 * whose keys must be set; none when the config does not decode (its own
 * error says why).
 *
 * @since 0.3.0
 * @category utils
 */
export const usedBy = (reliability: Reliability.Input): ReadonlyArray<string> =>
  Either.match(Reliability.decode(reliability, { providers: prefixes }), {
    onLeft: () => [],
    onRight: (plan) => [...new Set(plan.models.map((m) => m.model.provider))]
  })

/**
 * The registry over settings already resolved and checked (by
 * `resolveChecked`): nothing is read again.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromResolved = (resolved: Resolved): Effect.Effect<Provider.Registry, never, HttpClient.HttpClient> =>
  Effect.map(
    Effect.all([OpenAiProvider.make(resolved.openai), AnthropicProvider.make(resolved.anthropic)]),
    ([openai, anthropic]) => Provider.registry({ openai, anthropic })
  )

/**
 * The registry, with settings from `options` and `Config`. Unusable settings
 * fail with `ConnectionConfigError`, naming each one, as does a missing key
 * of a provider in `used` (see `resolveChecked`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {},
  used: ReadonlyArray<string> = []
): Effect.Effect<Provider.Registry, ConnectionConfigError, HttpClient.HttpClient> =>
  Effect.flatMap(resolveChecked(options, used), fromResolved)

/**
 * The registry as the `Providers` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {},
  used: ReadonlyArray<string> = []
): Layer.Layer<Provider.Providers, ConnectionConfigError, HttpClient.HttpClient> =>
  Layer.effect(Provider.Providers, make(options, used))

const merge = (fromEnv: Connection.Options, explicit: ProviderOptions | undefined): Connection.Options => ({
  ...fromEnv,
  apiKey: toRedacted(explicit?.apiKey) ?? fromEnv.apiKey,
  baseURL: explicit?.baseURL ?? fromEnv.baseURL
})

const toRedacted = (key: string | Redacted.Redacted<string> | undefined) =>
  key === undefined || Redacted.isRedacted(key) ? key : Redacted.make(key)
