import { shortId } from '../ids.js';
import type { BuildEvent } from './index.js';

/**
 * Docker's classic builder's lines (`DOCKER_BUILDKIT=0 docker build`): `Step 1/5 : FROM busybox`,
 * ` ---> Using cache`, ` ---> Running in <container>` before a RUN's output and `Removing intermediate
 * container <container>` after it, ` ---> 1a2b3c4d5e6f`. Differences on purpose: no `Sending build context
 * to Docker daemon` line (there is no daemon to send it to), and metadata steps (ENV, CMD, ...) print no
 * container lines, since Berth commits them without a container where Docker creates one.
 */
export function buildLine(e: BuildEvent): string | undefined {
  switch (e.type) {
    case 'step': return `Step ${e.step}/${e.steps} : ${e.text}`;
    case 'cached': return ' ---> Using cache';
    case 'container': return e.action === 'run' ? ` ---> Running in ${shortId(e.id)}` : `Removing intermediate container ${shortId(e.id)}`;
    case 'stepDone': return ` ---> ${shortId(e.id)}`;
    case 'output': return e.line;
    case 'note': return e.message;
    case 'done': return [`Successfully built ${shortId(e.id)}`, ...e.tags.map((t) => `Successfully tagged ${withTag(t)}`)].join('\n');
  }
}

/** As Docker prints a tag it set: `app` is `app:latest`. */
function withTag(ref: string): string {
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  return last.includes(':') || last.includes('@') ? ref : `${ref}:latest`;
}
