/**
 * The one config pipeline. Every source of config (a file, a directory, the control plane's push
 * stream, the admin API's PUT) feeds one serialized loop per process:
 *
 *   read → parse → convert → validate → prepare → commit → report
 *
 * - read: the source's raw document, read when the change's turn comes (a burst of saves reads once).
 * - parse: text with positions and `${NAME}` substitution, or a JSON copy of an object (load.ts).
 * - convert: the converter hooks, in order (foreign formats become meshgate config here: src/compat/).
 * - validate: load.ts's validator, the only one.
 * - prepare: the target does everything that can fail (the data plane: every worker compiles,
 *   reads certificates, binds new listeners, builds telemetry) without changing what is in force.
 * - commit: only when prepare succeeded everywhere; otherwise discard, and the old config (and its
 *   access log and tracing settings) stays.
 * - report: a log line and the status record (`status()`), and the outcome to whoever submitted it.
 *
 * One change runs at a time. Changes with the same `key` are state of the world: a newer pending one
 * replaces an older pending one (which resolves `superseded`), so a burst ends on the last.
 */
import type { Config } from '../api/config.ts';
import type { Logger } from '../observability/logger.ts';
import { type ConfigIssue, formatIssue } from './issues.ts';
import {
  type ConfigText,
  type LoadedConfig,
  type LoadOptions,
  type ParsedConfig,
  parseObject,
  parseTexts,
  validateParsed,
} from './load.ts';
import { preloadPluginModules } from './plugins.ts';

/** A config as a source read it. */
export type RawConfig =
  /** Text(s) of one file or of a directory's files (merged in the order given). */
  | {
      kind: 'texts';
      texts: ConfigText[];
      /** A path, or `admin-api`. */
      source: string;
      /** For `${NAME}` substitution; null: the text is final (sent by API). */
      env: Record<string, string | undefined> | null;
    }
  /** An object (a config pushed by the control plane). */
  | { kind: 'object'; data: unknown; source: string }
  /** The source could not be read (file not found): the change is rejected with these issues. */
  | { kind: 'unreadable'; source: string; issues: ConfigIssue[] };

/**
 * A source that is read (pull): the pipeline reads it when a change's turn comes. Push sources (the
 * control plane's stream, the admin API) call `ConfigPipeline.submit` with what they were sent.
 */
export interface ConfigSource {
  /** `file`, `directory`…: for logs and the status record. */
  readonly kind: string;
  /** What it reads: an absolute path, a URL. */
  readonly location: string;
  read(): Promise<RawConfig>;
  /** Calls `onChange` when what `read` returns may have changed (debounced). */
  watch(onChange: () => void): Promise<void>;
  /** Stops watching. */
  close(): void;
}

/**
 * A foreign format's converter: returns the parsed config unchanged when it is not its format. It also
 * sees text that failed to parse as a meshgate document (`fatal`, with `texts`), since a foreign file
 * may not be one (src/compat/ re-reads such texts).
 */
export type ConfigConverter = (parsed: ParsedConfig) => ParsedConfig | Promise<ParsedConfig>;

/** A config that passed validation, on its way to the target. */
export interface ValidatedConfig {
  readonly loaded: LoadedConfig;
  /** The text(s) it was read from; empty for an object. */
  readonly texts: readonly ConfigText[];
  readonly trigger: string;
  /** The change request's `intent`, for the target. */
  readonly intent?: unknown;
}

/**
 * What a config is applied to: the data plane (a proxy), or the model store (the control plane).
 * `prepare` does all that can fail and changes nothing in force; `commit` puts it in force and must
 * not fail for a reason `prepare` could have found; `discard` drops a prepared change.
 */
export interface ConfigTarget<P, R extends object> {
  prepare(config: ValidatedConfig): Promise<P>;
  commit(prepared: P, config: ValidatedConfig): Promise<R>;
  discard(prepared: P): Promise<void>;
}

export interface ChangeRequest {
  /** What caused it: `file`, `SIGHUP`, `push`, `admin-api`… (logs, status). */
  trigger: string;
  /** Reads the raw config when the change's turn comes. */
  read: () => Promise<RawConfig>;
  /** Apply even when the validated config equals the one in force (SIGHUP re-reads certificate files). */
  force?: boolean;
  /** Pending changes with the same key: only the newest runs (the others resolve `superseded`). */
  key?: string;
  /** Fields added to this change's log lines (e.g. the control plane's version). */
  fields?: Record<string, unknown>;
  /** How the target should put it in force, opaque to the pipeline (the control plane: a guarded rollout). */
  intent?: unknown;
}

export type Outcome<R> =
  | { status: 'applied'; hash: string; report: R }
  /** Valid, and equal to the config in force: nothing to do. */
  | { status: 'unchanged'; hash: string }
  /** Not valid: nothing was prepared. */
  | { status: 'rejected'; issues: ConfigIssue[] }
  /** Valid, but the target refused it (a port in use, a certificate a worker could not load). */
  | { status: 'failed'; hash: string; error: Error }
  /** A newer change with the same key arrived before this one's turn. */
  | { status: 'superseded' };

export interface PipelineStatus {
  /** The config in force. */
  current: { hash: string; source: string; trigger: string; at: string } | null;
  /** The last change that was rejected or failed, with why; null if none since start. */
  lastRefusal: {
    status: 'rejected' | 'failed';
    source: string;
    trigger: string;
    at: string;
    issues?: ConfigIssue[];
    error?: string;
  } | null;
  counts: Record<Outcome<unknown>['status'], number>;
  /** Changes waiting for their turn. */
  pending: number;
}

export interface PipelineOptions<P, R extends object> {
  target: ConfigTarget<P, R>;
  log: Pick<Logger, 'info' | 'error'>;
  /** Plugins configs may name, and the caller's extra rules (the mesh's naming rules). */
  load?: Pick<LoadOptions, 'catalog' | 'extraChecks'>;
  converters?: readonly ConfigConverter[];
  /** Log messages; they are what operators search for, so each role keeps its own. */
  messages: { applied: string; rejected: string; failed: string };
  /** Turns a target's error into the reason logged and reported (e.g. a friendlier listen error). */
  describeError?: (error: unknown) => string;
}

export type Checked = { ok: true; value: ValidatedConfig } | { ok: false; issues: ConfigIssue[] };

/**
 * parse → convert → validate: what every change goes through before its target sees it, and what a
 * process checks its first config with.
 */
export async function checkConfig(
  raw: RawConfig,
  trigger: string,
  options: Pick<PipelineOptions<unknown, object>, 'load' | 'converters'> = {},
): Promise<Checked> {
  if (raw.kind === 'unreadable') return { ok: false, issues: raw.issues };
  const load = options.load ?? {};
  let parsed = raw.kind === 'texts' ? parseTexts(raw.texts, raw.source, raw.env) : parseObject(raw.data, raw.source);
  // Text that did not parse as one meshgate document may still be a foreign format (Istio's
  // multi-document YAML): converters see it too, and re-read the texts they recognise.
  for (const convert of options.converters ?? []) {
    if (parsed.fatal && parsed.texts.length === 0) break;
    parsed = await convert(parsed);
  }
  // Plugin modules named by `path` load asynchronously; the validator then finds them in the catalog.
  if (load.catalog && !parsed.fatal && parsed.data && typeof parsed.data === 'object')
    await preloadPluginModules(parsed.data as Config, load.catalog, parsed.baseDir).catch(() => {});
  const result = validateParsed(parsed, load);
  if (!result.ok) return result;
  return { ok: true, value: { loaded: result.value, texts: parsed.texts, trigger } };
}

interface Job<R> {
  request: ChangeRequest;
  resolve: (outcome: Outcome<R>) => void;
}

export class ConfigPipeline<P, R extends object> {
  private readonly options: PipelineOptions<P, R>;
  private readonly queue: Job<R>[] = [];
  private running = false;
  private readonly state: PipelineStatus = {
    current: null,
    lastRefusal: null,
    counts: { applied: 0, unchanged: 0, rejected: 0, failed: 0, superseded: 0 },
    pending: 0,
  };

  constructor(options: PipelineOptions<P, R>) {
    this.options = options;
  }

  /** The hash of the config in force, or null before the first. */
  get hash(): string | null {
    return this.state.current?.hash ?? null;
  }

  status(): PipelineStatus {
    return { ...this.state, counts: { ...this.state.counts }, pending: this.queue.length };
  }

  /** read → parse → convert → validate, with no effect: a process's first config, `meshgate validate`. */
  check(raw: RawConfig): Promise<Checked> {
    return this.validate(raw, 'start');
  }

  /** Records a config put in force outside the loop (the one a process started with). */
  started(config: ValidatedConfig): void {
    this.state.current = {
      hash: config.loaded.hash,
      source: config.loaded.source,
      trigger: config.trigger,
      at: new Date().toISOString(),
    };
  }

  /** Queues a change; resolves with its outcome once it has run (or been superseded). */
  submit(request: ChangeRequest): Promise<Outcome<R>> {
    return new Promise((resolve) => {
      if (request.key !== undefined) {
        const i = this.queue.findIndex((j) => j.request.key === request.key);
        if (i !== -1) {
          const [older] = this.queue.splice(i, 1);
          // A forced reload stays forced when a plain change to the same source overtakes it.
          if (older!.request.force) request = { ...request, force: true };
          this.state.counts.superseded++;
          older!.resolve({ status: 'superseded' });
        }
      }
      this.queue.push({ request, resolve: resolve as (o: Outcome<R>) => void });
      if (!this.running) void this.drain();
    });
  }

  /** A pull source's changes, as `key`ed changes (a burst reads the source once, at its end). */
  reload(source: ConfigSource, trigger: string, force = false): Promise<Outcome<R>> {
    return this.submit({ trigger, read: () => source.read(), force, key: source.location });
  }

  /** Reloads `source` whenever it changes. */
  follow(source: ConfigSource, trigger = source.kind): Promise<void> {
    return source.watch(() => void this.reload(source, trigger));
  }

  private async drain() {
    this.running = true;
    for (let job = this.queue.shift(); job !== undefined; job = this.queue.shift()) {
      let outcome: Outcome<R>;
      try {
        outcome = await this.run(job.request);
      } catch (e) {
        // A stage threw instead of reporting: the config in force stays, and the loop goes on.
        outcome = { status: 'failed', hash: '', error: e as Error };
        this.refused(job.request, 'unknown', outcome);
      }
      this.state.counts[outcome.status]++;
      job.resolve(outcome);
    }
    this.running = false;
  }

  private validate(raw: RawConfig, trigger: string): Promise<Checked> {
    return checkConfig(raw, trigger, { load: this.options.load, converters: this.options.converters });
  }

  private async run(request: ChangeRequest): Promise<Outcome<R>> {
    const { trigger, fields } = request;
    const raw = await request.read();
    const checked = await this.validate(raw, trigger);
    if (!checked.ok) {
      const outcome = { status: 'rejected' as const, issues: checked.issues };
      this.refused(request, raw.source, outcome);
      return outcome;
    }
    const config = request.intent === undefined ? checked.value : { ...checked.value, intent: request.intent };
    const { hash } = config.loaded;
    if (hash === this.hash && !request.force) return { status: 'unchanged', hash };
    const { target } = this.options;
    let prepared: P;
    try {
      prepared = await target.prepare(config);
    } catch (e) {
      const outcome = { status: 'failed' as const, hash, error: this.error(e) };
      this.refused(request, raw.source, outcome);
      return outcome;
    }
    let report: R;
    try {
      report = await target.commit(prepared, config);
    } catch (e) {
      await target.discard(prepared).catch(() => {});
      const outcome = { status: 'failed' as const, hash, error: this.error(e) };
      this.refused(request, raw.source, outcome);
      return outcome;
    }
    this.started(config);
    const logged: Record<string, unknown> = { trigger, ...report, ...fields };
    this.options.log.info(logged, this.options.messages.applied);
    return { status: 'applied', hash, report };
  }

  private error(e: unknown): Error {
    const describe = this.options.describeError;
    if (describe === undefined) return e instanceof Error ? e : new Error(String(e));
    return Object.assign(new Error(describe(e)), { cause: e });
  }

  private refused(
    request: ChangeRequest,
    source: string,
    outcome: Extract<Outcome<R>, { status: 'rejected' | 'failed' }>,
  ) {
    const at = new Date().toISOString();
    const { trigger, fields } = request;
    if (outcome.status === 'rejected') {
      this.state.lastRefusal = { status: 'rejected', source, trigger, at, issues: outcome.issues };
      this.options.log.error(
        { trigger, ...fields, issues: outcome.issues.map(formatIssue) },
        this.options.messages.rejected,
      );
    } else {
      this.state.lastRefusal = { status: 'failed', source, trigger, at, error: outcome.error.message };
      this.options.log.error({ trigger, ...fields, err: outcome.error.message }, this.options.messages.failed);
    }
  }
}
