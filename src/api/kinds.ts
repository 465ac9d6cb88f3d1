import type { KindDescriptor } from './descriptor.js';
import { serviceKind } from './service/service.js';

/** Every kind Weft serves, in the order `weft get all` and docs list them. */
export const ALL_KINDS: readonly KindDescriptor[] = [serviceKind as KindDescriptor];
