/**
 * Wiring of the module identity reconciler to the module runtime: a component module `created` event adds
 * its hub identity, `removed` deletes it (`updated` keeps the name, hence the identity and its keys).
 */
import type { RuntimeEvent } from '../../runtime/events.js';
import type { ModuleIdentityReconciler } from './reconciler.js';

/** Subscribe (e.g. with `runtime.onEvent`); returns the unsubscribe function. */
export function followRuntimeEvents(
  reconciler: Pick<ModuleIdentityReconciler, 'moduleAdded' | 'moduleRemoved'>,
  subscribe: (listener: (e: RuntimeEvent) => void) => () => void,
): () => void {
  return subscribe((e) => {
    if (e.kind === 'created') void reconciler.moduleAdded(e.module);
    else if (e.kind === 'removed') void reconciler.moduleRemoved(e.module);
  });
}
