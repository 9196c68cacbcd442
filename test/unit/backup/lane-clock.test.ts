import { describe, expect, it } from 'vitest';
import { describeLanes, LaneClock } from '../../../src/backup/lane-clock.js';

describe('LaneClock', () => {
  it('two lanes: busy time, first start, last end, idle and the tail after each lane\'s last task', () => {
    const c = new LaneClock(2, 1000);
    const a = c.start(1000); // lane 0
    const b = c.start(1001); // lane 1
    c.end(b, 1201, 200); // lane 1 free at +201
    const d = c.start(1201); // lane 1 again
    c.end(a, 1500, 500); // lane 0 done at +500
    c.end(d, 1301, 100); // lane 1 done at +301
    const s = c.summary();
    expect(s.span).toBe(500);
    expect(s.lanes).toEqual([
      { lane: 0, tasks: 1, bytes: 500, firstStart: 0, lastEnd: 500, busy: 500 },
      { lane: 1, tasks: 2, bytes: 300, firstStart: 1, lastEnd: 301, busy: 300 },
    ]);
    expect(s.idle).toBe(200); // lane 1: 500 - 300
    expect(s.tail).toBe(199); // lane 1 after +301
    expect(describeLanes(s)).toBe('copy lanes: span 0.500s, idle 0.200s (of which after their last object 0.199s); ' +
      'lane 1: 1 objects, 500 bytes, busy 0.500s, first start +0.000s, last end +0.500s; lane 2: 2 objects, 300 bytes, busy 0.300s, first start +0.001s, last end +0.301s');
  });

  it('a task takes the lowest free lane; a lane that never ran counts idle for the whole span', () => {
    const c = new LaneClock(3, 0);
    const a = c.start(0);
    c.end(a, 10, 1);
    const b = c.start(10); // lane 0 again: the lowest free
    c.end(b, 40, 1);
    const s = c.summary();
    expect(s.lanes.map((l) => l.tasks)).toEqual([2, 0, 0]);
    expect(s.span).toBe(40);
    expect(s.idle).toBe(80);
    expect(s.tail).toBe(80);
    expect(s.lanes[1]!.firstStart).toBeUndefined();
  });

  it('no tasks: nothing busy, nothing idle', () => {
    expect(new LaneClock(0, 5).summary()).toEqual({ span: 0, lanes: [{ lane: 0, tasks: 0, bytes: 0, firstStart: undefined, lastEnd: undefined, busy: 0 }], idle: 0, tail: 0 });
  });
});
