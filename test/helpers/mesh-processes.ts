/**
 * A mesh as a user runs it, for end-to-end tests: a `meshgate control-plane` process on a free port
 * with a model file, then `meshgate sidecar`s (each beside an app served by this process) and a
 * `meshgate gateway --control-plane`, all on 127.0.0.1; `stop` ends every process by its PID and
 * closes the apps.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { MeshgateProcess } from './process.ts';

export interface StartedSidecar {
  /** Its admin API, `http://127.0.0.1:PORT`. */
  admin: string;
  /** Its listeners' ports by name (`inbound`, `outbound`). */
  listeners: Record<string, number>;
}

export class MeshProcesses {
  readonly dir: string;
  readonly cpUrl: string;
  private readonly processes: MeshgateProcess[] = [];
  private readonly servers: Server[] = [];

  private constructor(dir: string, cpUrl: string) {
    this.dir = dir;
    this.cpUrl = cpUrl;
  }

  /** A control plane serving `model` (YAML), its state in a temporary directory. */
  static async start(model: string): Promise<MeshProcesses> {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-mesh-'));
    writeFileSync(join(dir, 'mesh.yaml'), model);
    const port = await freePort();
    const mesh = new MeshProcesses(dir, `http://127.0.0.1:${port}`);
    const cp = new MeshgateProcess([
      'control-plane',
      ...['--config', join(dir, 'mesh.yaml'), '--port', String(port), '--warmup', '0'],
      ...['--state-dir', join(dir, 'state')],
    ]);
    mesh.processes.push(cp);
    await cp.waitFor('control plane started');
    return mesh;
  }

  /** An app on a free port; `/healthz` is answered before `handler` sees anything. */
  async app(handler: RequestListener): Promise<string> {
    const server = createServer((req, res) => {
      if (req.url === '/healthz') res.end('ok');
      else handler(req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** A sidecar of `service` beside `app`, once it serves and its instance is registered. */
  async sidecar(o: { service: string; app: string; id: string; labels?: string }): Promise<StartedSidecar> {
    const p = new MeshgateProcess([
      'sidecar',
      ...['--service', o.service, '--app', o.app, '--control-plane', this.cpUrl, '--id', o.id],
      ...(o.labels === undefined ? [] : ['--labels', o.labels]),
      ...['--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0', '--drain', '1s'],
    ]);
    this.processes.push(p);
    const started = await p.waitFor('sidecar started', 30_000);
    await p.waitFor('instance registered', 30_000);
    return { admin: `http://127.0.0.1:${started.admin}`, listeners: started.listeners as Record<string, number> };
  }

  /** A gateway fed by the control plane, in one process, once it serves: its `public` listener and admin API. */
  async gateway(id = 'gateway'): Promise<{ url: string; admin: string }> {
    const p = new MeshgateProcess([
      'gateway',
      ...['--control-plane', this.cpUrl, '--id', id, '--workers', '0', '--admin-port', '0'],
    ]);
    this.processes.push(p);
    const started = await p.waitFor('gateway started', 30_000);
    return {
      url: `http://127.0.0.1:${(started.listeners as Record<string, number>).public}`,
      admin: `http://127.0.0.1:${started.admin}`,
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.reverse().map((p) => p.stop()));
    for (const s of this.servers) {
      s.closeAllConnections();
      s.close();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
