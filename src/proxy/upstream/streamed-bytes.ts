/**
 * Bounds the memory of streaming large bodies. Each chunk read from a socket is a fresh ArrayBuffer
 * that becomes garbage once written on; V8 collects it only when its young generation fills or ~64 MB
 * of such buffers pile up, so a proxy streaming at 1 GB/s sits on ~60 MB of dead buffers. Where the
 * worker runs with `--expose-gc` (cluster/primary.ts), a scavenge every few MB streamed frees them
 * early: it costs well under 1 ms per 8 MB, and requests with small bodies never trigger it.
 */
const STREAMED_BYTES_PER_MINOR_GC = 8 * 1024 * 1024;

const collect = (globalThis as { gc?: (options: { type: 'minor' }) => void }).gc;
let sinceLastCollection = 0;

export function noteStreamedBytes(bytes: number): void {
  if (collect === undefined) return;
  sinceLastCollection += bytes;
  if (sinceLastCollection >= STREAMED_BYTES_PER_MINOR_GC) {
    sinceLastCollection = 0;
    collect({ type: 'minor' });
  }
}
