/**
 * The transformers' JSON field operations, by dot path with array elements by index (`items.0.price`),
 * on a parsed body. Written here because the semantics are Kong's (add only when absent, replace only
 * when present, append turns a field into a list), which no JSON-patch library has.
 */
import { walk } from '../../../core/template.ts';

/** A compiled dot path: the container's path and the key inside it. */
export interface JsonPath {
  readonly text: string;
  readonly parent: readonly string[];
  readonly key: string;
}

/** Names that would reach an object's prototype instead of its own fields. */
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Parses `a.b.0`; a string is the reason it is not a path. */
export function parseJsonPath(text: string): JsonPath | string {
  const parts = text.split('.');
  if (parts.some((p) => p === '')) return `"${text}" is not a dot path (an empty segment)`;
  const bad = parts.find((p) => FORBIDDEN.has(p));
  if (bad !== undefined) return `"${bad}" may not be a segment of a JSON path`;
  return Object.freeze({ text, parent: Object.freeze(parts.slice(0, -1)), key: parts[parts.length - 1]! });
}

type Container = Record<string, unknown> | unknown[];

function isContainer(node: unknown): node is Container {
  return node !== null && typeof node === 'object';
}

/** The array index a key names, or -1. */
function indexOf(key: string): number {
  const n = Number(key);
  return Number.isInteger(n) && n >= 0 && key !== '' ? n : -1;
}

function has(c: Container, key: string): boolean {
  if (Array.isArray(c)) {
    const i = indexOf(key);
    return i !== -1 && i < c.length;
  }
  return Object.hasOwn(c, key);
}

function get(c: Container, key: string): unknown {
  return Array.isArray(c) ? c[indexOf(key)] : c[key];
}

/** Sets a field; an array takes an index up to its length (the length appends). False: not settable. */
function set(c: Container, key: string, value: unknown): boolean {
  if (!Array.isArray(c)) {
    c[key] = value;
    return true;
  }
  const i = indexOf(key);
  if (i === -1 || i > c.length) return false;
  c[i] = value;
  return true;
}

function del(c: Container, key: string): void {
  if (Array.isArray(c)) c.splice(indexOf(key), 1);
  else delete c[key];
}

/** The container at `parent`, creating missing objects on the way; undefined when a step is not a container. */
function reach(root: unknown, parent: readonly string[]): Container | undefined {
  let node = root;
  for (const key of parent) {
    if (!isContainer(node)) return undefined;
    let next = has(node, key) ? get(node, key) : undefined;
    if (next === undefined) {
      next = {};
      if (!set(node, key, next)) return undefined;
    }
    node = next;
  }
  return isContainer(node) ? node : undefined;
}

function existing(root: unknown, parent: readonly string[]): Container | undefined {
  const node = parent.length === 0 ? root : walk(root, parent);
  return isContainer(node) ? node : undefined;
}

/** Removes the field; true when it was there. */
export function removeField(root: unknown, path: JsonPath): boolean {
  const c = existing(root, path.parent);
  if (c === undefined || !has(c, path.key)) return false;
  del(c, path.key);
  return true;
}

/** Moves the field's value to `to` (replacing what is there); true when the field was there. */
export function renameField(root: unknown, from: JsonPath, to: JsonPath): boolean {
  const c = existing(root, from.parent);
  if (c === undefined || !has(c, from.key)) return false;
  const value = get(c, from.key);
  del(c, from.key);
  const target = reach(root, to.parent);
  if (target !== undefined) set(target, to.key, value);
  return true;
}

/** Sets the field only when it is there (its value may be null). */
export function replaceField(root: unknown, path: JsonPath, value: unknown): boolean {
  const c = existing(root, path.parent);
  return c !== undefined && has(c, path.key) && set(c, path.key, value);
}

/** Sets the field only when it is absent, creating the objects on its path. */
export function addField(root: unknown, path: JsonPath, value: unknown): boolean {
  const c = reach(root, path.parent);
  return c !== undefined && !has(c, path.key) && set(c, path.key, value);
}

/** Absent: `[value]`; a list: `value` pushed; anything else: `[old, value]`. */
export function appendField(root: unknown, path: JsonPath, value: unknown): boolean {
  const c = reach(root, path.parent);
  if (c === undefined) return false;
  if (!has(c, path.key)) return set(c, path.key, [value]);
  const current = get(c, path.key);
  if (Array.isArray(current)) current.push(value);
  else set(c, path.key, [current, value]);
  return true;
}
