// The few browser APIs the dashboard uses, typed here instead of through
// `/// <reference lib="dom" />`: a lib reference is global to the whole tsc
// program and would retype Node code elsewhere in the project (BufferSource and
// friends differ between the DOM and Node libs). These are plain structural types
// over the real browser objects; only browser modules import this file.

export interface DomNode {
  readonly nodeType: number;
}

export interface DomEvent {
  preventDefault(): void;
}

export interface El extends DomNode {
  setAttribute(name: string, value: string): void;
  append(...nodes: (DomNode | string)[]): void;
  replaceChildren(...nodes: (DomNode | string)[]): void;
  addEventListener(type: string, listener: (e: DomEvent) => void): void;
  readonly classList: { toggle(token: string, force?: boolean): boolean };
  readonly dataset: Record<string, string | undefined>;
  /** CSSOM: allowed under a CSP without 'unsafe-inline' (unlike style attributes). */
  readonly style: Record<string, string>;
  textContent: string | null;
  hidden: boolean;
  className: string;
  title: string;
  readonly isConnected: boolean;
}

export interface InputEl extends El {
  value: string;
  disabled: boolean;
}

export interface TableSectionEl extends El {
  readonly rows: { readonly length: number };
  readonly lastElementChild: El | null;
  prepend(...nodes: (DomNode | string)[]): void;
  removeChild(node: DomNode): void;
}

interface Doc {
  createElement(tag: string): El;
  createTextNode(text: string): DomNode;
  getElementById(id: string): El | null;
  querySelectorAll(selector: string): Iterable<El>;
  readonly hidden: boolean;
}

interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

interface Win {
  readonly document: Doc;
  readonly location: { hash: string; hostname: string };
  readonly sessionStorage: StorageLike;
  readonly scrollY: number;
  scrollTo(x: number, y: number): void;
  addEventListener(type: string, listener: () => void): void;
  requestAnimationFrame(cb: () => void): number;
  matchMedia(query: string): MediaQuery;
}

interface MediaQuery {
  readonly matches: boolean;
  addEventListener(type: 'change', listener: () => void): void;
}

/** The page's window; only touch it from code that runs in a browser. */
export const win = globalThis as unknown as Win;
