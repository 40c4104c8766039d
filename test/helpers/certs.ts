/** Test certificates made with the openssl CLI: a CA, and leaves it signs, in a temporary directory. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'meshgate-pki-'));
  readonly ca: CertFiles;

  constructor(name = 'test-ca') {
    this.ca = { cert: join(this.dir, `${name}.pem`), key: join(this.dir, `${name}.key`) };
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      this.ca.key,
      '-out',
      this.ca.cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }

  /** A workload certificate (an X509-SVID): its one URI SAN is `spiffeId`, its CN the file name. */
  workload(file: string, spiffeId: string): CertFiles {
    return this.leaf(file, [`URI:${spiffeId}`], file);
  }

  /**
   * A leaf signed by this CA with these DNS names (the first is also its CN, unless `cn` is given);
   * `IP:…` entries are IP addresses, `URI:…` entries URIs.
   */
  leaf(file: string, dnsNames: string[], cn = dnsNames[0]): CertFiles {
    const out = { cert: join(this.dir, `${file}.pem`), key: join(this.dir, `${file}.key`) };
    const csr = join(this.dir, `${file}.csr`);
    const ext = join(this.dir, `${file}.ext`);
    writeFileSync(
      ext,
      `subjectAltName=${dnsNames.map((n) => (n.startsWith('IP:') || n.startsWith('URI:') ? n : `DNS:${n}`)).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
    openssl([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      out.key,
      '-out',
      csr,
      '-subj',
      `/CN=${cn}`,
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.ca.cert,
      '-CAkey',
      this.ca.key,
      '-CAcreateserial',
      '-out',
      out.cert,
      '-days',
      '1',
      '-extfile',
      ext,
    ]);
    return out;
  }

  caPem(): Buffer {
    return readFileSync(this.ca.cert);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 15_000 }).toString();
}
