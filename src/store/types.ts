import type { Resource, ResourceKey } from '../api/types.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  type: WatchEventType;
  /** The object after the change (for DELETED: as it was, with the deleting revision as resourceVersion). */
  object: Resource;
  /** Store revision of this change. */
  revision: number;
}

export interface ListResult {
  items: Resource[];
  /** Store revision the list reflects; watch from it to miss nothing. */
  revision: number;
}

export interface ListOptions {
  kind?: string;
  /** '' or undefined: every namespace. */
  namespace?: string;
}

export interface PutOptions {
  /**
   * Optimistic concurrency. A string: the object must exist with exactly this
   * resourceVersion. '0' or null: the object must not exist yet (create).
   * undefined: last writer wins (apply).
   */
  expectedResourceVersion?: string | null;
}

export interface DeleteOptions {
  expectedResourceVersion?: string;
}

export interface WatchOptions extends ListOptions {
  /**
   * Deliver every change after this revision (exclusive), then live changes.
   * Undefined: live changes only. Too old (compacted): throws WEFT_ERR_GONE.
   */
  fromRevision?: number;
}

export interface Watch {
  /** Stop delivering; idempotent. */
  close(): void;
}

/**
 * The store every backend implements (embedded files, etcd). Objects arrive
 * already validated; the store owns metadata.resourceVersion, generation,
 * creationTimestamp and uid.
 *
 * Errors: WEFT_ERR_CONFLICT (precondition failed), WEFT_ERR_NOT_FOUND (delete of
 * a missing object with a precondition), WEFT_ERR_GONE (watch too far back),
 * WEFT_ERR_STORE (I/O).
 */
export interface ConfigStore {
  get(key: ResourceKey): Promise<Resource | undefined>;
  list(opts?: ListOptions): Promise<ListResult>;
  /** Create or update. Returns the stored object with store-owned metadata set. */
  put(resource: Resource, opts?: PutOptions): Promise<Resource>;
  /**
   * All-or-nothing for preconditions: every precondition is checked before any
   * object is written, so a conflict changes nothing.
   */
  putMany(resources: readonly Resource[], opts?: { expectedResourceVersions?: readonly (string | null | undefined)[] }): Promise<Resource[]>;
  /** Returns the deleted object, or undefined when it did not exist. */
  delete(key: ResourceKey, opts?: DeleteOptions): Promise<Resource | undefined>;
  watch(opts: WatchOptions, onEvent: (e: WatchEvent) => void): Watch;
  /** Current revision (the last write's). */
  revision(): Promise<number>;
  close(): Promise<void>;
}
