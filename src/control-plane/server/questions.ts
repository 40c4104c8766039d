/**
 * Questions the control plane asks every connected proxy over its push stream and waits for the
 * answers to (a request lookup, `meshgate explain`, a shadow config's set, report and clear). A proxy
 * answers on `POST /lookups`, quoting the question's id; the asker gets every answer that came before
 * all were in or the timeout passed, and how many proxies were asked.
 */
import { randomBytes } from 'node:crypto';
import type { LookupAnswer, ProxyIdentity } from '../../api/mesh.ts';
import { DEFAULT_LOOKUP_TIMEOUT_MS } from '../../core/defaults.ts';
import type { ControlPlane } from './control-plane.ts';

export interface Answers {
  answers: LookupAnswer[];
  asked: number;
  answered: number;
}

interface Pending {
  expected: Set<string>;
  answers: LookupAnswer[];
  finish: () => void;
}

export class ProxyQuestions {
  private readonly cp: ControlPlane;
  private readonly timeoutMs: number;
  private readonly pending = new Map<string, Pending>();

  constructor(cp: ControlPlane, timeoutMs = DEFAULT_LOOKUP_TIMEOUT_MS) {
    this.cp = cp;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Sends `event` to every connected proxy, with what `data` makes of its identity and the question's
   * id (undefined: that proxy is not asked); resolves when all asked answered or the timeout passed.
   */
  ask(
    event: string,
    data: (id: string, identity: ProxyIdentity) => object | undefined,
    timeoutMs = this.timeoutMs,
  ): Promise<Answers> {
    const id = randomBytes(8).toString('hex');
    return new Promise((resolve) => {
      const pending: Pending = {
        expected: new Set(),
        answers: [],
        finish: () => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve({ answers: pending.answers, asked, answered: pending.answers.length });
        },
      };
      this.pending.set(id, pending);
      const timer = setTimeout(() => pending.finish(), timeoutMs);
      timer.unref();
      const sent = this.cp.sendEach(event, (identity) => data(id, identity));
      const asked = sent.length;
      // Answers may not arrive before the sends return: each is sent after an await at the proxy.
      for (const p of sent) pending.expected.add(p);
      if (asked === 0) pending.finish();
    });
  }

  /** A proxy's answer; false when no question waits for it from that proxy. */
  answer(answer: LookupAnswer): boolean {
    const pending = this.pending.get(answer.id);
    if (pending === undefined || !pending.expected.delete(answer.proxy)) return false;
    pending.answers.push(answer);
    if (pending.expected.size === 0) pending.finish();
    return true;
  }
}
