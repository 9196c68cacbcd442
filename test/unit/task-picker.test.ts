/**
 * TaskPicker (src/common/task-picker.ts): tasks in their order, except that a task whose key a
 * running task holds waits (restore: two lanes never write into one file at once).
 */
import { describe, expect, it } from 'vitest';
import { TaskPicker } from '../../src/common/task-picker.js';

type T = { id: string; key?: string };
const t = (id: string, key?: string): T => ({ id, key });
const keyOf = (x: T) => x.key;

/** Runs a script of steps: 'take' (the id taken, 'wait' or 'none'), or 'done:<id>'. */
function play(tasks: T[], steps: string[]): string[] {
  const p = new TaskPicker(tasks, keyOf);
  const running = new Map<string, T>();
  return steps.map((s) => {
    if (s.startsWith('done:')) {
      p.done(running.get(s.slice(5))!);
      return s;
    }
    const got = p.take();
    if (got === 'wait') return 'wait';
    if (got === undefined) return 'none';
    running.set(got.id, got);
    return got.id;
  });
}

describe('TaskPicker', () => {
  it.each<[string, T[], string[], string[]]>([
    ['no keys: the given order', [t('a'), t('b'), t('c')], ['take', 'take', 'take', 'take'], ['a', 'b', 'c', 'none']],
    ['a part of a file being written is passed over for the next free task', [t('A0', 'A'), t('A1', 'A'), t('B0', 'B'), t('x')], ['take', 'take', 'take', 'done:A0', 'take'], ['A0', 'B0', 'x', 'done:A0', 'A1']],
    ['only parts of a file being written left: wait, then the next part', [t('A0', 'A'), t('A1', 'A'), t('A2', 'A')], ['take', 'take', 'done:A0', 'take', 'take', 'done:A1', 'take', 'take'], ['A0', 'wait', 'done:A0', 'A1', 'wait', 'done:A1', 'A2', 'none']],
    ['a task without a key never waits', [t('A0', 'A'), t('A1', 'A'), t('y')], ['take', 'take', 'take'], ['A0', 'y', 'wait']],
    ['two files: each written by one lane at a time, in order', [t('A0', 'A'), t('B0', 'B'), t('A1', 'A'), t('B1', 'B')], ['take', 'take', 'done:B0', 'take', 'done:A0', 'take'], ['A0', 'B0', 'done:B0', 'B1', 'done:A0', 'A1']],
  ])('%s', (_name, tasks, steps, want) => {
    expect(play(tasks, steps)).toEqual(want);
  });

  it('remaining counts the tasks not taken', () => {
    const p = new TaskPicker([t('A0', 'A'), t('A1', 'A')], keyOf);
    expect(p.remaining).toBe(2);
    p.take();
    expect(p.take()).toBe('wait');
    expect(p.remaining).toBe(1);
  });
});
