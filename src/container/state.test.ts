import { describe, expect, it } from 'vitest';
import { BadStateError } from '../errors.js';
import { checkTransition, dockerStatus, eventOf, TRANSITIONS, type ContainerState } from './state.js';

describe('container state machine', () => {
  it('lets a container live its whole life: create, start, pause, exit, restart, remove', () => {
    const path: ContainerState[] = ['creating', 'created', 'starting', 'running', 'paused', 'running', 'exited', 'restarting', 'starting', 'running', 'exited', 'removing'];
    for (let i = 1; i < path.length; i++) expect(() => checkTransition(path[i - 1]!, path[i]!, 'c')).not.toThrow();
  });

  it('refuses what no command does', () => {
    expect(() => checkTransition('created', 'running', 'c')).toThrow(BadStateError);
    expect(() => checkTransition('running', 'removing', 'c')).toThrow('container c cannot go from running to removing');
    expect(TRANSITIONS.removing).toEqual([]);
  });

  it('names the event of each transition as Docker does', () => {
    expect(eventOf('creating', 'created')).toBe('create');
    expect(eventOf('starting', 'running')).toBe('start');
    expect(eventOf('paused', 'running')).toBe('unpause');
    expect(eventOf('running', 'paused')).toBe('pause');
    expect(eventOf('running', 'exited')).toBe('die');
    expect(eventOf('created', 'starting')).toBeUndefined();
  });

  it("shows Docker's words, in-progress states as what they were", () => {
    expect(dockerStatus('creating', false)).toBe('created');
    expect(dockerStatus('starting', false)).toBe('created');
    expect(dockerStatus('starting', true)).toBe('exited');
    expect(dockerStatus('restarting', true)).toBe('restarting');
  });
});
