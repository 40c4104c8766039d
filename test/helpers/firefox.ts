/**
 * Debian's stock Firefox (`firefox-esr`), headless, driven over WebDriver BiDi, the W3C protocol Firefox
 * speaks natively on `--remote-debugging-port`.
 *
 * Hand-written on purpose: Playwright drives only its own patched Firefox build, and the libraries that
 * speak BiDi to a stock Firefox (puppeteer, WebdriverIO, selenium-webdriver) come with a browser
 * download or a driver binary and many dependencies. The part of the protocol a test needs is a
 * handful of JSON commands over one WebSocket (`ws`, already a dependency).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

export const FIREFOX_BIN = '/usr/bin/firefox-esr';

/**
 * From the start to an open session (the remote agent listening, then `session.new`, which waits for
 * the first tab): seconds when idle, half a minute and more on a busy machine.
 */
const LAUNCH_BUDGET_MS = 120_000;
const COMMAND_BUDGET_MS = 30_000;
const CLOSE_BUDGET_MS = 15_000;

/**
 * Beside the preferences the remote agent sets itself (`remote.prefs.recommended`: no updates, no
 * telemetry, no safe-browsing lists), the ones that keep a fresh profile from calling out at start.
 */
const PREFS: Record<string, string | number | boolean> = {
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage': 'about:blank',
  'browser.startup.page': 0,
  'browser.newtabpage.enabled': false,
  'browser.region.network.url': '',
  'datareporting.policy.dataSubmissionEnabled': false,
  'extensions.getAddons.cache.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/',
};

export function firefoxInstalled(): boolean {
  return existsSync(FIREFOX_BIN);
}

/** A BiDi event (`log.entryAdded`, `network.beforeRequestSent`, ...) with its parameters. */
export interface BidiEvent {
  method: string;
  params: Record<string, unknown>;
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class Firefox {
  readonly process: ChildProcess;
  /** The browser's own version, as `session.new` reports it (e.g. "140.12.0"). */
  version = '';
  /** Everything the browser wrote on stderr (for a failure's message). */
  stderr = '';
  private socket: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: ((event: BidiEvent) => void)[] = [];
  private readonly profile: string;
  private readonly exited: Promise<void>;

  private constructor() {
    this.profile = mkdtempSync(join(tmpdir(), 'meshgate-firefox-'));
    writeFileSync(
      join(this.profile, 'user.js'),
      Object.entries(PREFS)
        .map(([name, value]) => `user_pref(${JSON.stringify(name)}, ${JSON.stringify(value)});\n`)
        .join(''),
    );
    // Its own process group, so that a browser which does not close when asked goes with all its
    // content processes by the one id.
    this.process = spawn(
      FIREFOX_BIN,
      ['--headless', '--no-remote', '--remote-debugging-port=0', '--profile', this.profile, 'about:blank'],
      {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1' },
      },
    );
    this.process.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    // A binary that cannot start reports 'error' and never 'exit'.
    this.exited = new Promise((done) => {
      this.process.once('exit', () => done());
      this.process.once('error', (error) => {
        this.stderr += `${error.message}\n`;
        done();
      });
    });
  }

  /** Starts a fresh headless Firefox (a new temporary profile) and opens a BiDi session on it. */
  static async launch(): Promise<Firefox> {
    const firefox = new Firefox();
    try {
      const url = await firefox.listeningUrl();
      const socket = new WebSocket(`${url}/session`, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      firefox.attach(socket);
      const session = (await firefox.send('session.new', { capabilities: {} }, LAUNCH_BUDGET_MS)) as {
        capabilities: { browserVersion: string };
      };
      firefox.version = session.capabilities.browserVersion;
      return firefox;
    } catch (error) {
      await firefox.close();
      throw error;
    }
  }

  /** The BiDi address the browser prints once its remote agent listens (the port it picked). */
  private async listeningUrl(): Promise<string> {
    const deadline = performance.now() + LAUNCH_BUDGET_MS;
    for (;;) {
      const found = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(this.stderr);
      if (found) return found[1]!;
      if (this.process.pid === undefined) throw new Error(`${FIREFOX_BIN} could not be started`);
      if (this.process.exitCode !== null || this.process.signalCode !== null)
        throw new Error(`firefox exited (${this.process.exitCode ?? this.process.signalCode}):\n${this.stderr}`);
      if (performance.now() > deadline) throw new Error(`firefox's remote agent did not start:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private attach(socket: WebSocket): void {
    this.socket = socket;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as {
        type: 'success' | 'error' | 'event';
        id?: number;
        method?: string;
        params?: Record<string, unknown>;
        result?: unknown;
        error?: string;
        message?: string;
      };
      if (message.type === 'event') {
        const event = { method: message.method!, params: message.params ?? {} };
        for (const listener of this.listeners) listener(event);
        return;
      }
      const waiting = this.pending.get(message.id ?? -1);
      if (!waiting) return;
      this.pending.delete(message.id!);
      clearTimeout(waiting.timer);
      if (message.type === 'success') waiting.resolve(message.result);
      else waiting.reject(new Error(`${message.error}: ${message.message}`));
    });
    socket.on('close', () => {
      for (const [id, waiting] of this.pending) {
        clearTimeout(waiting.timer);
        waiting.reject(new Error(`the BiDi connection closed before command ${id} was answered`));
      }
      this.pending.clear();
      this.socket = null;
    });
  }

  /** One BiDi command; its result, or an error naming the protocol's error code. */
  send(method: string, params: Record<string, unknown> = {}, budgetMs = COMMAND_BUDGET_MS): Promise<unknown> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error(`${method}: no BiDi connection`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${budgetMs} ms`));
      }, budgetMs);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Calls `listener` for every event the session subscribed to (`session.subscribe`). */
  onEvent(listener: (event: BidiEvent) => void): void {
    this.listeners.push(listener);
  }

  /** The top-level tab the browser opened with. */
  async firstTab(): Promise<string> {
    const tree = (await this.send('browsingContext.getTree', { maxDepth: 0 })) as { contexts: { context: string }[] };
    const tab = tree.contexts[0];
    if (!tab) throw new Error('firefox has no open tab');
    return tab.context;
  }

  /** Loads `url` in `context` and waits for its load event. */
  async navigate(context: string, url: string): Promise<void> {
    await this.send('browsingContext.navigate', { context, url, wait: 'complete' });
  }

  /**
   * Evaluates `expression` in the page and returns its value through JSON (the expression's value is
   * passed through `JSON.stringify` in the page, which keeps BiDi's typed remote values out of tests).
   * Runs as the browser's own code, so the page's Content-Security-Policy does not apply to it.
   */
  async evaluate<T>(context: string, expression: string): Promise<T> {
    const reply = (await this.send('script.evaluate', {
      expression: `(async () => JSON.stringify(await (${expression})))()`,
      target: { context },
      awaitPromise: true,
      resultOwnership: 'none',
    })) as {
      type: 'success' | 'exception';
      result?: { type: string; value?: string };
      exceptionDetails?: { text: string };
    };
    if (reply.type === 'exception') throw new Error(`in the page: ${reply.exceptionDetails?.text}`);
    const value = reply.result?.value;
    return (value === undefined ? undefined : JSON.parse(value)) as T;
  }

  /** A PNG of the context's viewport. */
  async screenshot(context: string): Promise<Buffer> {
    const shot = (await this.send('browsingContext.captureScreenshot', { context })) as { data: string };
    return Buffer.from(shot.data, 'base64');
  }

  /**
   * Closes the browser (BiDi `browser.close`, which ends the session), waits for its process to exit,
   * and kills its process group if it does not; then removes the profile.
   */
  async close(): Promise<void> {
    const running = () =>
      this.process.pid !== undefined && this.process.exitCode === null && this.process.signalCode === null;
    if (running() && this.socket) await this.send('browser.close').catch(() => {});
    if (running()) {
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), CLOSE_BUDGET_MS).unref());
      if ((await Promise.race([this.exited, timeout])) === 'timeout') {
        try {
          process.kill(-this.process.pid!, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
        await this.exited;
      }
    }
    // A content process that outlived its parent would still be in the group.
    try {
      process.kill(-this.process.pid!, 'SIGKILL');
    } catch {
      // None left: the usual case.
    }
    this.socket?.terminate();
    rmSync(this.profile, { recursive: true, force: true });
  }
}
