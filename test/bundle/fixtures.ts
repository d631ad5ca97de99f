import type { HostFacts } from '../../src/host.js';
import type { CreateRequest } from '../../src/options.js';
import type { BundleInput } from '../../src/bundle/index.js';

/** A fixed host, so generated configs do not depend on the machine the tests run on. */
export const FAKE_HOST: HostFacts = {
  cgroupMode: 'hybrid',
  rlimitHard: { RLIMIT_NOFILE: 20000, RLIMIT_NPROC: 96364 },
  tools: { runc: '/usr/sbin/runc', conmon: '/usr/bin/conmon', catatonit: '/usr/bin/catatonit' },
  resolvConf: 'nameserver 10.0.2.3\n',
  cpus: 2,
};

export const FAKE_ID = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
export const FAKE_ROOTFS = '/var/lib/berth/snapshots/0123456789ab/merged';
export const FAKE_CONTAINER_DIR = '/var/lib/berth/containers/0123456789ab';

/** busybox's own files, plus a user with supplementary groups. */
export const BUSYBOX_USERDB = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n',
  group: 'root:x:0:\ndaemon:x:1:\nwheel:x:10:app\naudio:x:29:app,nobody\nnogroup:x:65534:\napp:x:1000:\n',
};

/** The config section of busybox's image config. */
export const BUSYBOX_IMAGE = { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] };

export function inputFor(request: Partial<CreateRequest>, over: Partial<BundleInput> = {}): BundleInput {
  return {
    id: FAKE_ID,
    rootfsPath: FAKE_ROOTFS,
    imageConfig: BUSYBOX_IMAGE,
    request: { image: 'busybox', ...request },
    host: FAKE_HOST,
    userDb: BUSYBOX_USERDB,
    namespaces: { network: { path: '/run/berth/netns/0123456789ab' } },
    files: {
      hostname: `${FAKE_CONTAINER_DIR}/hostname`,
      hosts: `${FAKE_CONTAINER_DIR}/hosts`,
      resolvConf: `${FAKE_CONTAINER_DIR}/resolv.conf`,
    },
    extraMounts: [],
    cgroupsPath: `/berth/${FAKE_ID}`,
    arch: 'x64',
    ...over,
  };
}

/** The requests behind bundles/ (see bundles/README.md). */
export const GOLDEN: Record<string, Partial<CreateRequest>> = {
  default: {},
  privileged: { privileged: true },
  resources: {
    resources: { memory: '64m', cpus: '0.5', pidsLimit: 50 },
    capDrop: ['ALL'],
    capAdd: ['NET_ADMIN'],
    readOnly: true,
    tmpfs: ['/run'],
  },
};
