/** What the networks, volumes and compose tests of the service share. */
import { execFileSync } from 'node:child_process';

/** Their slot (test engines and subnets), offset by pid so that two runs at once seldom meet. */
export const SLOT = 4220 + (process.pid % 20);
/** The third octet of this file's own subnets (10.238.K.0/24, 10.239.K.0/24: test/network keeps 10.231-10.237). */
export const OCTET = SLOT & 255;

/** Whether the host has a network interface of that name (a bridge a test made, or leaked). */
export function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
