export { machineGraph, activeStateIds, type VizGraph, type VizNode, type VizEdge } from './graph';
export { toMermaid } from './mermaid';
export { toSvg } from './svg';
export { toStatelyJson } from './stately';
