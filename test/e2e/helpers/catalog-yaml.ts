// The demo catalog the whole-mesh and HA end-to-end tests apply: Services catalog,
// catalog-v1 (targetPort p1) and catalog-v2 (p2, registered by hand as a Workload,
// like Istio's WorkloadEntry), and an HTTPRoute splitting catalog between them.

export function services(p1: number, p2: number): string {
  const svc = (name: string, selector: string, targetPort: number): string => `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: ${selector}
  ports:
  - {name: http, port: 80, targetPort: ${targetPort}, protocol: http}
`;
  return [
    svc('catalog', '{app: catalog}', 8080),
    svc('catalog-v1', '{app: catalog, version: v1}', p1),
    svc('catalog-v2', '{app: catalog, version: v2}', p2),
    // v2 runs without a sidecar: registered by hand, as Istio's WorkloadEntry.
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog-v2-0, namespace: default, labels: {app: catalog, version: v2}}
spec:
  address: 127.0.0.1
  ports: [{port: ${p2}}]
`,
  ].join('---\n');
}

export function route(w1: number, w2: number): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: catalog, port: 80}]
  rules:
  - backendRefs:
    - {name: catalog-v1, port: 80, weight: ${w1}}
    - {name: catalog-v2, port: 80, weight: ${w2}}
`;
}
