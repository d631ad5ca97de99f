import { type Command, defineCommand } from '../command.js';

/**
 * podman's `healthcheck run`: one check now, recorded as the timer's are. Exit 0 healthy, 1 when the
 * check failed (and "unhealthy" printed, as podman), 125 when it cannot run (no healthcheck, not running).
 */
const run = defineCommand({
  name: 'run', group: 'healthcheck',
  usage: 'CONTAINER', summary: 'Run the healthcheck of a container now',
  options: [], minArgs: 1, maxArgs: 1,
  async action(ctx, _o, [ref]) {
    const res = await (await ctx.engine()).containers.healthcheck(ref!);
    if (res.healthy) return 0;
    ctx.print(res.status === 'starting' ? 'starting' : 'unhealthy');
    return 1;
  },
});

/**
 * The timer loop's check (runtime/healthtimer.ts): prints the seconds until the next check, or nothing
 * when the container no longer runs, which ends the loop.
 */
const tick = defineCommand({
  name: 'tick', group: 'healthcheck', hidden: true,
  usage: 'CONTAINER_ID', summary: "Run one check for a container's healthcheck timer",
  options: [], minArgs: 1, maxArgs: 1,
  async action(ctx, _o, [id]) {
    const { nextDelayMs } = await (await ctx.engine()).containers.healthcheck(id!, { timer: true });
    if (nextDelayMs !== undefined) ctx.print((Math.max(nextDelayMs, 1) / 1000).toFixed(3));
  },
});

export const healthcheckCommands: Command[] = [run, tick];
