/**
 * Log rotation as Docker's json-file driver does it (--log-opt max-size, max-file): past max-size the log
 * becomes `<log>.1`, the older ones move up (`.1` → `.2`...), and those past max-file - 1 are dropped.
 *
 * conmon 2.1 keeps one file: its own --log-size-max replaces the log by a new empty one and the old
 * lines are gone, also for a client that is reading them. Berth uses it for max-file 1 only, where it is
 * exact (the new file starts with the record that did not fit). For more files, a shell loop
 * (loops.ts) beside conmon checks the log's size once a second and rotates it by renaming: conmon keeps
 * writing into the renamed file through its open descriptor, until the loop asks it (REOPEN_LOGS_EVENT,
 * "2 0 0" on its control fifo) to start a new file under the log's name. No line is lost in between,
 * and a reader holding the old file reads it to its end (logs.ts follows the renames).
 * The cost of the second's granularity: a file can pass max-size by what the container writes in a second.
 * The loop ends by itself when conmon is gone; the container's teardown stops it anyway.
 */
import type { StoreLayout } from '../paths.js';
import { createLoops, type LoopKind } from './loops.js';

/**
 * $1 conmon's pid, $2 the log, $3 max-size in bytes, $4 max-file (2 or more), $5 conmon's control fifo.
 * `find -size +Nc` is true past N bytes. The fifo is written under `timeout`: with conmon gone between
 * the check and the write, opening it would wait forever for a reader.
 */
export const LOGROTATE_LOOP = [
  'pid=$1 log=$2 max=$3 keep=$4 ctl=$5',
  'while kill -0 "$pid" 2>/dev/null && nap 1; do',
  '  [ -n "$(find "$log" -size +"$max"c 2>/dev/null)" ] || continue',
  '  i=$((keep - 1)); while [ "$i" -gt 1 ]; do mv -f "$log.$((i - 1))" "$log.$i" 2>/dev/null; i=$((i - 1)); done',
  '  mv -f "$log" "$log.1" || continue',
  '  timeout 5 /bin/sh -c \'printf "2 0 0\\n" > "$1"\' reopen "$ctl"',
  'done',
].join('\n');

export const LOGROTATE_LOOP_NAME = 'berth-logrotate';

export const ROTATE: LoopKind = { suffix: 'logs', name: LOGROTATE_LOOP_NAME, script: LOGROTATE_LOOP };

export interface LogRotation {
  /** conmon's pid: the loop ends when it does */
  monitorPid: number;
  logPath: string;
  maxSize: number;
  /** 2 or more */
  maxFiles: number;
  /** conmon's control fifo (`<bundle>/ctl`) */
  ctl: string;
}

export interface LogRotator {
  start(id: string, r: LogRotation): Promise<void>;
  stop(id: string): Promise<void>;
  list(): Promise<string[]>;
}

export function createLogRotator(layout: StoreLayout, busybox?: string): LogRotator {
  const loops = createLoops(layout, ROTATE, busybox);
  return {
    start: (id, r) => loops.start(id, [String(r.monitorPid), r.logPath, String(r.maxSize), String(r.maxFiles), r.ctl]),
    stop: (id) => loops.stop(id),
    list: () => loops.list(),
  };
}
