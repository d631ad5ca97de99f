import { InvalidArgumentError } from '../errors.js';
import { run } from '../util/exec.js';
import type { ChainNames, FirewallRules } from './types.js';

/**
 * Berth's iptables state lives in chains of its own (`<PREFIX>-FORWARD`, `-ISOLATION-1/2`, `-DNAT`,
 * `-POSTROUTING`, and `-PREROUTING` in the raw table), reached from the built-in chains by jump rules carrying the comment `berth:<PREFIX>`.
 * Every apply rewrites our chains whole from the records, in one `iptables-restore --noflush`: a chain
 * declaration flushes only that chain, so built-in chains and other tools' rules are never touched, and
 * a rule can never outlive its owner's record. Per-container rules carry `berth:<ctrid>`.
 */

export const DEFAULT_CHAIN_PREFIX = 'BERTH';

export function validateChainPrefix(prefix: string): string {
  if (!/^BERTH[A-Z0-9_]{0,10}$/.test(prefix)) {
    throw new InvalidArgumentError('chainPrefix', `"${prefix}" must start with BERTH and have at most 15 of A-Z 0-9 _`);
  }
  return prefix;
}

export function chainNames(prefix: string): ChainNames {
  return {
    forward: `${prefix}-FORWARD`,
    isolation1: `${prefix}-ISOLATION-1`,
    isolation2: `${prefix}-ISOLATION-2`,
    ports: `${prefix}-PORTS`,
    dnat: `${prefix}-DNAT`,
    postrouting: `${prefix}-POSTROUTING`,
    raw: `${prefix}-PREROUTING`,
  };
}

export function comment(owner: string): string {
  return `-m comment --comment "berth:${owner}"`;
}

export type Table = 'filter' | 'nat' | 'raw';
const TABLES: readonly Table[] = ['filter', 'nat', 'raw'];
export type JumpFixes = Record<Table, string[]>;

interface Jump {
  table: Table;
  chain: string;
  /** the rule exactly as iptables-save prints it, without `-A CHAIN ` */
  spec: string;
  /** first in FORWARD (and raw PREROUTING), so a DROP policy or another tool's rules cannot shadow ours */
  insert: boolean;
}

function jumps(prefix: string): Jump[] {
  const c = chainNames(prefix);
  const tag = comment(prefix);
  // DNAT from OUTPUT too (Docker without userland proxy), and for 127.0.0.1: route_localnet + masquerade.
  const local = '-m addrtype --dst-type LOCAL';
  return [
    { table: 'filter', chain: 'FORWARD', spec: `${tag} -j ${c.forward}`, insert: true },
    { table: 'nat', chain: 'PREROUTING', spec: `${local} ${tag} -j ${c.dnat}`, insert: false },
    { table: 'nat', chain: 'OUTPUT', spec: `${local} ${tag} -j ${c.dnat}`, insert: false },
    { table: 'nat', chain: 'POSTROUTING', spec: `${tag} -j ${c.postrouting}`, insert: false },
    { table: 'raw', chain: 'PREROUTING', spec: `${tag} -j ${c.raw}`, insert: true },
  ];
}

/** Lines that bring the jump rules to exactly one copy each, judged from `iptables-save` output. */
export function jumpFixes(saveText: string, prefix: string): JumpFixes {
  const have = new Map<string, number>();
  let table = '';
  for (const line of saveText.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith('-A ')) have.set(`${table} ${line.slice(3)}`, (have.get(`${table} ${line.slice(3)}`) ?? 0) + 1);
  }
  const fixes: JumpFixes = { filter: [], nat: [], raw: [] };
  for (const j of jumps(prefix)) {
    const n = have.get(`${j.table} ${j.chain} ${j.spec}`) ?? 0;
    if (n === 0) fixes[j.table].push(j.insert ? `-I ${j.chain} 1 ${j.spec}` : `-A ${j.chain} ${j.spec}`);
    for (let i = 1; i < n; i++) fixes[j.table].push(`-D ${j.chain} ${j.spec}`);
  }
  return fixes;
}

/** The whole restore text: our chains rewritten from `rules`, plus whatever jump fixes are due. */
export function renderRestore(prefix: string, rules: FirewallRules, fixes: JumpFixes): string {
  const c = chainNames(prefix);
  return render(prefix, rules, fixes, {
    // Published ports in a chain of their own, reached before any network's rules: renderAppend adds them
    // at the end of it, and a network's last rule is a DROP that must not come before them.
    filter: [
      `:${c.forward} - [0:0]`, `:${c.isolation1} - [0:0]`, `:${c.isolation2} - [0:0]`, `:${c.ports} - [0:0]`,
      `-A ${c.forward} ${comment(prefix)} -j ${c.isolation1}`, `-A ${c.forward} ${comment(prefix)} -j ${c.ports}`,
    ],
    nat: [`:${c.dnat} - [0:0]`, `:${c.postrouting} - [0:0]`],
    raw: [`:${c.raw} - [0:0]`],
  });
}

/**
 * Restore text that appends `rules` to our existing chains and leaves every rule already there alone.
 * Adding is cheap on nf_tables; a commit that deletes rules (a rewrite flushes our chains) waits for an
 * RCU grace period, ~12 ms per table here.
 */
export function renderAppend(prefix: string, rules: FirewallRules, fixes: JumpFixes): string {
  return render(prefix, rules, fixes, { filter: [], nat: [], raw: [] });
}

function render(prefix: string, rules: FirewallRules, fixes: JumpFixes, head: Record<Table, string[]>): string {
  const c = chainNames(prefix);
  const add = (chain: string, bodies: readonly string[] = []) => bodies.map((b) => `-A ${chain} ${b}`);
  return [
    '*filter',
    ...head.filter,
    ...add(c.forward, rules.forward), ...add(c.isolation1, rules.isolation1), ...add(c.isolation2, rules.isolation2), ...add(c.ports, rules.ports),
    ...fixes.filter,
    'COMMIT',
    '*nat',
    ...head.nat,
    ...add(c.dnat, rules.dnat), ...add(c.postrouting, rules.postrouting),
    ...fixes.nat,
    'COMMIT',
    '*raw',
    ...head.raw,
    ...add(c.raw, rules.raw),
    ...fixes.raw,
    'COMMIT',
    '',
  ].join('\n');
}

/** Whether `iptables-save` output declares all of our chains (a firewall flush with -X deletes them). */
export function chainsPresent(saveText: string, prefix: string): boolean {
  const declared = declaredChains(saveText);
  return Object.values(chainNames(prefix)).every((chain) => declared.has(chain));
}

function declaredChains(saveText: string): Set<string | undefined> {
  return new Set(saveText.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]));
}

/** Only the rules carrying `berth:<owner>`: one container's share of a rule set. */
export function rulesOwnedBy(rules: FirewallRules, owner: string): FirewallRules {
  const tag = comment(owner);
  const out: FirewallRules = {};
  for (const [k, v] of Object.entries(rules) as [keyof FirewallRules, string[] | undefined][]) out[k] = (v ?? []).filter((r) => r.includes(tag));
  return out;
}

/** Removes the jump rules (every copy) and our chains; nothing else. */
export function renderRemoval(saveText: string, prefix: string): string {
  const c = chainNames(prefix);
  const present = declaredChains(saveText);
  const out: string[] = [];
  for (const table of TABLES) {
    out.push(`*${table}`);
    for (const j of jumps(prefix).filter((x) => x.table === table)) {
      const copies = saveText.split('\n').filter((l) => l === `-A ${j.chain} ${j.spec}`).length;
      for (let i = 0; i < copies; i++) out.push(`-D ${j.chain} ${j.spec}`);
    }
    const mine = { filter: [c.forward, c.isolation1, c.isolation2, c.ports], nat: [c.dnat, c.postrouting], raw: [c.raw] }[table];
    for (const chain of mine.filter((x) => present.has(x))) out.push(`-F ${chain}`);
    for (const chain of mine.filter((x) => present.has(x))) out.push(`-X ${chain}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/** Container ids named by `berth:<64 hex>` comments in our chains. */
export function ownersInSave(saveText: string, prefix: string): Set<string> {
  const owners = new Set<string>();
  for (const line of saveText.split('\n')) {
    if (!line.startsWith(`-A ${prefix}-`)) continue;
    const m = /--comment "?berth:([0-9a-f]{64})"?/.exec(line);
    if (m?.[1]) owners.add(m[1]);
  }
  return owners;
}

const TIMEOUT = 20_000;

/** 4: iptables, 6: ip6tables. Both families use the same chain names, jumps and text. */
export type IpFamily = 4 | 6;

const tool = (family: IpFamily, what: 'save' | 'restore') => `${family === 6 ? 'ip6tables' : 'iptables'}-${what}`;

export async function iptablesSave(family: IpFamily = 4): Promise<string> {
  const saved = await Promise.all(TABLES.map((t) => run(tool(family, 'save'), ['-t', t], { timeout: TIMEOUT })));
  return saved.map((r) => r.stdout).join('');
}

export async function iptablesRestore(text: string, family: IpFamily = 4): Promise<void> {
  await run(tool(family, 'restore'), ['--noflush', '-w', '5'], { input: text, timeout: TIMEOUT });
}

/** Whether a save holds anything of ours: a chain or a jump (what a removal would have to delete). */
export function anythingOurs(saveText: string, prefix: string): boolean {
  return saveText.split('\n').some((l) => l.startsWith(`:${prefix}-`) || l.includes(`berth:${prefix}"`));
}
