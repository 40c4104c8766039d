/**
 * A config file parsed with positions: YAML (JSON is a subset) → a document whose nodes know their
 * line and column, so every later issue can point into the file.
 */
import { createRequire } from 'node:module';
import type { Document, LineCounter, Node } from 'yaml';
import { type ConfigIssue, formatPath } from './issues.ts';

export type Path = (string | number)[];

let yamlLib: typeof import('yaml') | undefined;
/** The YAML library, loaded by the first config read as text: a proxy fed objects by its control plane never loads it. */
export function yaml(): typeof import('yaml') {
  return (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));
}

/** Finds where a value is written, so an issue can point at it. */
export interface Locator {
  position(path: Path, key?: string): { file: string; line: number; column: number };
  /** A path of the data as the file at its position writes it (files merged into one config differ). */
  localPath?(path: string): string;
}

export class SourceDocument implements Locator {
  readonly file: string;
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  /** `parsed`: one document of a multi-document text (`SourceDocument.all`), sharing its line counter. */
  constructor(file: string, text: string, parsed?: { doc: Document.Parsed; lines: LineCounter }) {
    this.file = file;
    this.lines = parsed?.lines ?? new (yaml().LineCounter)();
    this.doc =
      parsed?.doc ?? yaml().parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }

  /**
   * Every document of a `---`-separated text (foreign formats such as Istio's resources), each with
   * positions in the whole text. An empty document (a trailing `---`) is left out.
   */
  static all(file: string, text: string): SourceDocument[] {
    const y = yaml();
    const lines = new y.LineCounter();
    const docs = y.parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [];
    return list
      .filter(
        (doc) =>
          doc.errors.length > 0 ||
          !(doc.contents === null || (y.isScalar(doc.contents) && doc.contents.value === null)),
      )
      .map((doc) => new SourceDocument(file, text, { doc, lines }));
  }

  /** YAML syntax errors (and duplicate keys, aliases without an anchor), located. */
  syntaxIssues(): ConfigIssue[] {
    const issues: ConfigIssue[] = this.doc.errors.map((e) => {
      const pos = this.lines.linePos(e.pos[0]);
      return { file: this.file, line: pos.line, column: pos.col, path: '', message: e.message.split('\n')[0]! };
    });
    // yaml reports these only by throwing from toJS(), without a position.
    yaml().visit(this.doc, {
      Alias: (_key, node) => {
        if (node.resolve(this.doc) === undefined)
          issues.push({
            ...this.locate(node),
            path: '',
            message: `alias *${node.source} has no anchor &${node.source} before it`,
            hint: 'quote the value if the * is meant literally, e.g. "*.example.com"',
          });
      },
    });
    return issues;
  }

  /**
   * Replaces `${NAME}` in every string scalar with the environment's value, so secrets stay out of files.
   * `$${` escapes a literal `${`. An unset variable is an issue at the scalar's position.
   */
  substituteEnv(env: Record<string, string | undefined>): ConfigIssue[] {
    const issues: ConfigIssue[] = [];
    yaml().visit(this.doc, {
      Scalar: (_key, node, ancestry) => {
        if (typeof node.value !== 'string' || !node.value.includes('${')) return;
        node.value = node.value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole: string, name: string) => {
          if (whole.startsWith('$$')) return whole.slice(1);
          const value = env[name];
          if (value === undefined) {
            issues.push({
              ...this.locate(node),
              path: formatPath(pathOf(ancestry, node)),
              message: `environment variable ${name} is not set`,
              hint: `export ${name}=... before starting, or write the value in the file`,
            });
            return '';
          }
          return value;
        });
      },
    });
    return issues;
  }

  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 100 });
  }

  /**
   * Position of the value at `path`, or of the nearest ancestor that exists.
   * With `key`, the position of that key inside the map at `path` (for unknown fields).
   */
  position(path: Path, key?: string): { file: string; line: number; column: number } {
    let node: unknown = this.doc.contents;
    let found: unknown = node;
    for (const part of key === undefined ? path : [...path, key]) {
      if (yaml().isMap(node)) {
        const pair = node.items.find((p) => yaml().isScalar(p.key) && String(p.key.value) === String(part));
        if (!pair) break;
        found = part === key && key !== undefined ? pair.key : pair.value;
        node = pair.value;
      } else if (yaml().isSeq(node) && typeof part === 'number') {
        node = node.items[part];
        if (node === undefined) break;
        found = node;
      } else break;
    }
    return this.locate(found as Node | null);
  }

  private locate(node: Node | null | undefined): { file: string; line: number; column: number } {
    const offset = node?.range?.[0] ?? 0;
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, column: pos.col };
  }
}

function pathOf(ancestry: readonly unknown[], leaf: unknown): Path {
  const path: Path = [];
  let child: unknown = leaf;
  for (let i = ancestry.length - 1; i >= 0; i--) {
    const parent = ancestry[i];
    if (yaml().isPair(parent)) {
      if (parent.value === child && yaml().isScalar(parent.key)) path.unshift(String(parent.key.value));
    } else if (yaml().isSeq(parent)) {
      path.unshift(parent.items.indexOf(child as never));
    }
    child = parent;
  }
  return path;
}
