/**
 * Where the copy lanes of a backup spent their time (pure: the caller passes the clock readings).
 * A lane is busy from the start of a task to its end; it is idle before its first task, between
 * tasks, and after its last one until the last lane finishes. The idle time after a lane's last
 * task is the cost of uneven lanes (the tail); it depends less on the machine's load than the
 * wall time does, so the timeline bench (bench/backup-timeline.mjs) reports it.
 */

export interface LaneStats {
  lane: number;
  tasks: number;
  bytes: number;
  /** ms since the copy began. */
  firstStart: number | undefined;
  lastEnd: number | undefined;
  busy: number;
}

export interface LaneSummary {
  /** ms from the copy's beginning to its last task's end. */
  span: number;
  lanes: LaneStats[];
  /** Σ over lanes of the time not busy within the span. */
  idle: number;
  /** Σ over lanes of the idle time after their last task (the tail). */
  tail: number;
}

export class LaneClock {
  private readonly lanes: LaneStats[];
  private readonly free: number[];
  private readonly running = new Map<number, { lane: number; start: number }>();
  private nextTicket = 0;

  constructor(count: number, private readonly t0: number) {
    this.lanes = Array.from({ length: Math.max(1, count) }, (_, lane) => ({ lane, tasks: 0, bytes: 0, firstStart: undefined, lastEnd: undefined, busy: 0 }));
    this.free = this.lanes.map((l) => l.lane);
  }

  /** A task begins at `now`: a ticket for end(). Its lane is the lowest free one. */
  start(now: number): number {
    const lane = this.free.length > 0 ? this.free.splice(this.free.indexOf(Math.min(...this.free)), 1)[0]! : this.lanes.length - 1;
    const l = this.lanes[lane]!;
    l.firstStart ??= now - this.t0;
    const ticket = this.nextTicket++;
    this.running.set(ticket, { lane, start: now });
    return ticket;
  }

  end(ticket: number, now: number, bytes: number): void {
    const r = this.running.get(ticket);
    if (!r) return;
    this.running.delete(ticket);
    const l = this.lanes[r.lane]!;
    l.tasks++;
    l.bytes += bytes;
    l.busy += now - r.start;
    l.lastEnd = now - this.t0;
    this.free.push(r.lane);
  }

  summary(): LaneSummary {
    const span = Math.max(0, ...this.lanes.map((l) => l.lastEnd ?? 0));
    let idle = 0;
    let tail = 0;
    for (const l of this.lanes) {
      idle += span - l.busy;
      tail += span - (l.lastEnd ?? 0);
    }
    return { span, lanes: this.lanes.map((l) => ({ ...l })), idle, tail };
  }
}

/** One line for the debug log. */
export function describeLanes(s: LaneSummary): string {
  const sec = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(3));
  const lanes = s.lanes.map((l) => `lane ${l.lane + 1}: ${l.tasks} objects, ${l.bytes} bytes, busy ${sec(l.busy)}s, first start +${sec(l.firstStart)}s, last end +${sec(l.lastEnd)}s`);
  return `copy lanes: span ${sec(s.span)}s, idle ${sec(s.idle)}s (of which after their last object ${sec(s.tail)}s); ${lanes.join('; ')}`;
}
