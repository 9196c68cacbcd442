/** `pgark sets status` verdicts (pure). */
import { describe, expect, it } from 'vitest';
import type { Subscriber } from '../../src/logical/set-meta.js';
import { judgeSubscriber, worst, type SubscriberFacts } from '../../src/logical/sets-status.js';
import type { SlotInfo } from '../../src/logical/slots.js';

const native: Subscriber = { name: 'reports', mode: 'native', slot: 'pgark_s_reports', target: 'host=t', createdAt: '' };
const agent: Subscriber = { ...native, name: 'ag', mode: 'agent', slot: 'pgark_s_ag' };
const slot: SlotInfo = {
  slot: 'pgark_s_reports', type: 'logical', plugin: 'pgoutput', database: 'db', active: true, activePid: 42, retainedBytes: 100,
  lagBytes: 0, walStatus: 'reserved', restartLsn: '0/1', confirmedFlushLsn: '0/1', temporary: false,
};
const sub = { exists: true, enabled: true, workerRunning: true, applyErrors: 0, syncErrors: 0 };
const facts = (f: Partial<SubscriberFacts>): SubscriberFacts => ({ slot, subscription: sub, tables: [], lagSeconds: 0, lastError: null, ...f });
const GB = 1024 ** 3;

describe('judgeSubscriber', () => {
  it.each<[string, Subscriber, SubscriberFacts, string, RegExp | null]>([
    ['healthy native', native, facts({}), 'ok', null],
    ['slot missing', native, facts({ slot: undefined }), 'unhealthy', /slot pgark_s_reports is missing/],
    ['slot lost', native, facts({ slot: { ...slot, walStatus: 'lost' } }), 'unhealthy', /lost WAL/],
    ['unreserved', native, facts({ slot: { ...slot, walStatus: 'unreserved' } }), 'warning', /unreserved/],
    ['inactive, little WAL', native, facts({ slot: { ...slot, active: false, activePid: null } }), 'ok', null],
    ['inactive, much WAL', native, facts({ slot: { ...slot, active: false, activePid: null, retainedBytes: 2 * GB } }), 'warning', /retains 2.0 GB/],
    ['active, much WAL', native, facts({ slot: { ...slot, retainedBytes: 2 * GB } }), 'ok', null],
    ['disabled', native, facts({ subscription: { ...sub, enabled: false } }), 'unhealthy', /disabled/],
    ['no subscription', native, facts({ subscription: { ...sub, exists: false } }), 'unhealthy', /does not exist on the target/],
    ['errors, worker running', native, facts({ subscription: { ...sub, applyErrors: 2 } }), 'warning', /2 apply and 0 sync/],
    ['errors, worker down', native, facts({ subscription: { ...sub, syncErrors: 1, workerRunning: false } }), 'unhealthy', /not running/],
    ['target unreachable', native, facts({ targetError: 'refused' }), 'unhealthy', /target unreachable: refused/],
    ['agent healthy', agent, facts({ subscription: undefined }), 'ok', null],
    ['agent error, active', agent, facts({ subscription: undefined, lastError: 'boom' }), 'warning', /apply worker error: boom/],
    ['agent error, stopped', agent, facts({ subscription: undefined, lastError: 'boom', slot: { ...slot, active: false } }), 'unhealthy', /boom/],
  ])('%s', (_name, s, f, health, re) => {
    const v = judgeSubscriber(s, f, { retainWarnBytes: GB });
    expect(v.health).toBe(health);
    if (re) expect(v.problems.join('\n')).toMatch(re);
    else expect(v.problems).toEqual([]);
  });
  it('worst', () => {
    expect(worst('ok', 'warning')).toBe('warning');
    expect(worst('unhealthy', 'warning')).toBe('unhealthy');
  });
});
