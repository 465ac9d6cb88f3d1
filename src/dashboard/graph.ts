// The service graph: cytoscape (served from the installed package as
// /ui/vendor/cytoscape.min.js, a classic script that defines `cytoscape`) drawing
// services as nodes and live traffic as edges. The instance lives as long as the
// page: updates change element data in place, and the layout runs again only
// when the set of nodes or edges changes, so the picture does not jump every 2 s.
import { win, type El } from './dom.js';
import type { GraphEdge, GraphNode } from './telemetry-model.js';

interface CyCollection {
  readonly length: number;
  forEach(fn: (e: CyElement) => void): void;
  remove(): void;
}
interface CyElement {
  id(): string;
  data(key: string, value?: unknown): unknown;
  isNode(): boolean;
}
interface Cy {
  add(elements: { group: 'nodes' | 'edges'; data: Record<string, unknown> }[]): void;
  getElementById(id: string): CyCollection & CyElement;
  elements(): CyCollection;
  layout(options: Record<string, unknown>): { run(): void };
  resize(): void;
  fit(eles?: unknown, padding?: number): void;
  on(event: string, selector: string, fn: (e: { target: CyElement }) => void): void;
  style(sheet: Record<string, unknown>[]): void;
}
type CytoscapeFactory = (options: Record<string, unknown>) => Cy;

function palette(dark: boolean): Record<string, string> {
  return dark
    ? { ink: '#e6e9f0', muted: '#8d96a8', line: '#5b6478', ok: '#37b24d', warn: '#f08c00', bad: '#f03e3e', idle: '#5c6680', halo: '#151a24' }
    : { ink: '#1d2330', muted: '#6b7385', line: '#9aa3b5', ok: '#2f9e44', warn: '#e8590c', bad: '#e03131', idle: '#adb5c7', halo: '#ffffff' };
}

function sheet(dark: boolean): Record<string, unknown>[] {
  const c = palette(dark);
  return [
    { selector: 'node', style: { label: 'data(label)', 'font-size': 11, color: c.ink, 'text-valign': 'bottom', 'text-margin-y': 6, 'text-outline-color': c.halo, 'text-outline-width': 2, width: 30, height: 30, 'background-color': c.idle, 'border-width': 2, 'border-color': c.halo } },
    { selector: 'node[tone = "ok"]', style: { 'background-color': c.ok } },
    { selector: 'node[tone = "warn"]', style: { 'background-color': c.warn } },
    { selector: 'node[tone = "bad"]', style: { 'background-color': c.bad } },
    { selector: 'node[?unknown]', style: { shape: 'round-rectangle', 'border-style': 'dashed', 'border-color': c.muted } },
    { selector: 'node:selected', style: { 'border-color': c.ink, 'border-width': 3 } },
    { selector: 'edge', style: { width: 'data(width)', 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', 'line-color': c.line, 'target-arrow-color': c.line, label: 'data(label)', 'font-size': 10, color: c.muted, 'text-background-color': c.halo, 'text-background-opacity': 0.9, 'text-background-padding': 2, 'text-background-shape': 'roundrectangle' } },
    // Plain text is dashed: the lock in the label and a solid line mean mTLS.
    { selector: 'edge[!mtls]', style: { 'line-style': 'dashed' } },
    { selector: 'edge[tone = "warn"]', style: { 'line-color': c.warn, 'target-arrow-color': c.warn } },
    { selector: 'edge[tone = "bad"]', style: { 'line-color': c.bad, 'target-arrow-color': c.bad } },
  ];
}

export interface ServiceGraph {
  update(nodes: readonly GraphNode[], edges: readonly GraphEdge[]): void;
  /** After the container was re-attached or resized. */
  resize(): void;
}

/** Undefined when the library did not load (the page then shows the tables only). */
export function createServiceGraph(container: El, onOpen: (nodeId: string) => void): ServiceGraph | undefined {
  const factory = (globalThis as unknown as { cytoscape?: CytoscapeFactory }).cytoscape;
  if (factory === undefined) return undefined;
  const media = win.matchMedia('(prefers-color-scheme: dark)');
  const cy = factory({ container, elements: [], layout: { name: 'preset' }, style: sheet(media.matches), minZoom: 0.2, maxZoom: 3, boxSelectionEnabled: false });
  media.addEventListener('change', () => cy.style(sheet(media.matches)));
  cy.on('tap', 'node', (e) => onOpen(e.target.id()));
  let shape = '';

  return {
    update(nodes, edges) {
      const want = new Map<string, { group: 'nodes' | 'edges'; data: Record<string, unknown> }>();
      for (const n of nodes) {
        want.set(n.id, { group: 'nodes', data: { id: n.id, label: n.namespace === 'default' ? n.name : `${n.name}.${n.namespace}`, tone: n.tone, unknown: n.unknown } });
      }
      for (const e of edges) {
        // Width grows with the log of the rate: 1 rps and 1000 rps stay readable side by side.
        want.set(e.id, { group: 'edges', data: { id: e.id, source: e.source, target: e.target, label: e.label, tone: e.tone, mtls: e.mtls, width: Math.min(8, 1.5 + Math.log10(1 + e.rps) * 2) } });
      }
      cy.elements().forEach((el) => {
        if (!want.has(el.id())) cy.getElementById(el.id()).remove();
      });
      const added: { group: 'nodes' | 'edges'; data: Record<string, unknown> }[] = [];
      for (const [id, el] of want) {
        const have = cy.getElementById(id);
        if (have.length === 0) added.push(el);
        else for (const [k, v] of Object.entries(el.data)) if (k !== 'id' && k !== 'source' && k !== 'target' && have.data(k) !== v) have.data(k, v);
      }
      // Nodes before the edges that reference them.
      added.sort((a, b) => (a.group === b.group ? 0 : a.group === 'nodes' ? -1 : 1));
      if (added.length > 0) cy.add(added);
      container.dataset.nodes = String(nodes.length);
      container.dataset.edges = String(edges.length);
      const now = [...want.keys()].sort().join('|');
      if (now !== shape) {
        shape = now;
        cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.3, padding: 30, animate: false }).run();
        cy.fit(undefined, 30);
      }
    },
    resize() {
      cy.resize();
    },
  };
}
