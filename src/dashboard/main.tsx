/**
 * The dashboard's page (docs/dashboard.md): one live view of the mesh, from its server's event stream.
 * Views by the location's hash: #/topology, #/service/NAME, #/proxies, #/changes, #/canary,
 * #/requests/ID.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import {
  type ChangeRecord,
  follow,
  getJson,
  type Info,
  type Live,
  type Overview,
  type ProxyRow,
  setToken,
  token,
  Unauthorized,
} from './api.ts';
import { CanaryView } from './views/canary.tsx';
import { ChangesView } from './views/changes.tsx';
import { ProxiesView } from './views/proxies.tsx';
import { RequestsView } from './views/requests.tsx';
import { ServiceView } from './views/service.tsx';
import { TopologyView } from './views/topology.tsx';

function useHash(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'topology').split('/').map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parts;
}

function TokenForm(props: { onDone: () => void; failed: boolean }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        props.onDone();
      }}
    >
      <h2>Operator token</h2>
      <p>
        {props.failed && token() ? 'That token was refused. ' : ''}This server asks for an operator token
        (docs/security.md). It is kept in this tab only.
      </p>
      <input
        type="password"
        autocomplete="off"
        aria-label="operator token"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Sign in</button>
    </form>
  );
}

const TABS = [
  ['topology', 'Topology'],
  ['service', 'Services'],
  ['proxies', 'Proxies'],
  ['changes', 'Changes'],
  ['canary', 'Canary'],
  ['requests', 'Requests'],
] as const;

function App() {
  const route = useHash();
  const [live, setLive] = useState<Live | null>(null);
  const [stream, setStream] = useState<'connecting' | 'live' | 'reconnecting' | 'unauthorized'>('connecting');
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let stopped = false;
    let handle: { stop(): void } | null = null;
    getJson<Info>('/info').then(
      (info) => {
        if (stopped) return;
        setLive((l) => ({ overview: null, proxies: [], changes: [], ...l, info }));
        handle = follow({
          onState: (s) => setStream(s),
          onEvent: (event, data) => {
            if (event === 'overview') setLive((l) => l && { ...l, overview: data as Overview });
            else if (event === 'proxies') setLive((l) => l && { ...l, proxies: data as ProxyRow[] });
            else if (event === 'changes') setLive((l) => l && { ...l, changes: data as ChangeRecord[] });
          },
        });
      },
      (e: Error) => setStream(e instanceof Unauthorized ? 'unauthorized' : 'reconnecting'),
    );
    return () => {
      stopped = true;
      handle?.stop();
    };
  }, [attempt]);

  if (stream === 'unauthorized')
    return (
      <TokenForm
        failed={token() !== null}
        onDone={() => {
          setStream('connecting');
          setAttempt((a) => a + 1);
        }}
      />
    );

  const [view, ...rest] = route;
  const current = view === 'service' ? 'service' : view;
  let body = <p class="muted">Connecting…</p>;
  if (live)
    switch (view) {
      case 'service':
        body = <ServiceView live={live} name={rest[0] ?? null} />;
        break;
      case 'proxies':
        body = <ProxiesView live={live} />;
        break;
      case 'changes':
        body = <ChangesView live={live} open={rest[0] ?? null} />;
        break;
      case 'canary':
        body = <CanaryView live={live} />;
        break;
      case 'requests':
        body = <RequestsView id={rest[0] ?? ''} />;
        break;
      default:
        body = <TopologyView live={live} />;
    }
  return (
    <>
      <header>
        <h1>meshgate</h1>
        <span class="where">{live?.info.kind === 'gateway' ? 'gateway' : 'mesh'}</span>
        <nav>
          {TABS.map(([id, label]) => (
            <a key={id} href={`#/${id}`} class={current === id ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span class={`stream ${stream}`} title="the live event stream">
          {stream === 'live' ? '● live' : stream}
        </span>
      </header>
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
