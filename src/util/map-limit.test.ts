import { describe, expect, it } from 'vitest';
import { mapLimit } from './map-limit.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('mapLimit', () => {
  it('keeps order and never exceeds the limit', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick();
      inFlight--;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(peak).toBe(3);
  });

  it('stops taking new items after a failure and aborts the others', async () => {
    const started: number[] = [];
    let abortedSeen = false;
    await expect(
      mapLimit([1, 2, 3, 4, 5, 6], 2, async (n, signal) => {
        started.push(n);
        if (n === 2) throw new Error('boom');
        await tick();
        abortedSeen ||= signal.aborted;
        return n;
      }),
    ).rejects.toThrow('boom');
    expect(abortedSeen).toBe(true);
    expect(started.length).toBeLessThan(6);
  });

  it('handles an empty list', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
});
