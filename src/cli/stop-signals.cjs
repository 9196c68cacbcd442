'use strict';
// SIGTERM and SIGINT for the long-running commands (agent, receive, metrics, sets apply), which
// stop cleanly on either. The one place this is written: bin/pgark.js holds a stop signal from
// its first lines (this file, copied to dist/src/cli/ by tsc, loads before the CLI), and
// src/cli/context.ts hands it to the command once the command can stop cleanly. Without the
// hold, a SIGTERM in the ~0.1-1 s while the command loads its modules (systemd stopping a unit
// that was just started; a DR script stopping the agent it started) killed the process by the
// signal (exit 143) instead of a clean stop with exit 0.

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'];
const HOLD = Symbol.for('pgark.heldStopSignal');

/** True when `argv` (process.argv) runs a command that stops cleanly on SIGTERM/SIGINT. */
function stopsOnSignals(argv) {
  const cmd = argv[2];
  return cmd === 'agent' || cmd === 'receive' || cmd === 'metrics' || (cmd === 'sets' && argv[3] === 'apply');
}

/**
 * From now on, the first SIGTERM or SIGINT to `proc` is held, not fatal, until onStopSignal takes
 * over; a second one before that ends the process as signals do by default (a start that hangs,
 * say on an unreachable repository, still stops on a second signal). Returns the hold (also kept
 * on `proc`).
 */
function holdStopSignals(proc) {
  const hold = { signal: undefined, listeners: [] };
  for (const sig of STOP_SIGNALS) {
    const listener = () => {
      if (hold.signal === undefined) {
        hold.signal = sig;
        return;
      }
      for (const [s, l] of hold.listeners) proc.removeListener(s, l);
      proc.kill(proc.pid, sig);
    };
    proc.on(sig, listener);
    hold.listeners.push([sig, listener]);
  }
  proc[HOLD] = hold;
  return hold;
}

/**
 * Calls `stop(signal)` on the first SIGTERM or SIGINT to `proc`, including one held since
 * holdStopSignals (delivered on the next turn of the event loop, as a signal arriving then would
 * be). A second signal after that one ends the process as signals do by default: a DBA's second
 * Ctrl-C, or a service manager's SIGTERM after a stop that hangs, is not ignored.
 */
function onStopSignal(proc, stop, defer = setImmediate) {
  const hold = proc[HOLD];
  delete proc[HOLD];
  let stopped = false;
  const listeners = [];
  const onSignal = (sig) => {
    for (const [s, l] of listeners) proc.removeListener(s, l);
    if (stopped) return;
    stopped = true;
    stop(sig);
  };
  for (const sig of STOP_SIGNALS) {
    const listener = () => onSignal(sig);
    proc.on(sig, listener);
    listeners.push([sig, listener]);
  }
  if (hold !== undefined) {
    for (const [s, l] of hold.listeners) proc.removeListener(s, l);
    if (hold.signal !== undefined) {
      const sig = hold.signal;
      defer(() => onSignal(sig));
    }
  }
}

module.exports = { STOP_SIGNALS, stopsOnSignals, holdStopSignals, onStopSignal };
