/** Positions in test texts written as lists of lines. */

/** `line:col` (1-based) of the `nth` occurrence of `token` in `lines`. */
export function at(lines: readonly string[], token: string, nth = 1): string {
  let seen = 0;
  for (let i = 0; i < lines.length; i++) {
    let from = 0;
    for (;;) {
      const col = lines[i]!.indexOf(token, from);
      if (col === -1) break;
      if (++seen === nth) return `${i + 1}:${col + 1}`;
      from = col + 1;
    }
  }
  throw new Error(`no occurrence #${nth} of ${token}`);
}
