// Mermaid stateDiagram-v2 text of a statechart.
import type { VizGraph, VizNode } from './graph';

const mid = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');

export function toMermaid(graph: VizGraph): string {
  const lines = ['stateDiagram-v2'];
  const children = new Map<string | undefined, VizNode[]>();
  for (const n of graph.nodes) children.set(n.parent, [...(children.get(n.parent) ?? []), n]);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const emit = (parent: string | undefined, indent: string) => {
    const parallel = parent !== undefined && byId.get(parent)?.type === 'parallel';
    (children.get(parent) ?? []).forEach((n, i) => {
      // Mermaid's concurrency separator between the regions of a parallel state.
      if (parallel && i > 0) lines.push(`${indent}--`);
      lines.push(`${indent}state "${n.label}" as ${mid(n.id)}`);
      if (n.initial) lines.push(`${indent}[*] --> ${mid(n.id)}`);
      if (n.type === 'final') lines.push(`${indent}${mid(n.id)} --> [*]`);
      if (children.has(n.id)) {
        lines.push(`${indent}state ${mid(n.id)} {`);
        emit(n.id, indent + '  ');
        lines.push(`${indent}}`);
      }
      if (n.invokes.length) lines.push(`${indent}note right of ${mid(n.id)} : invokes ${n.invokes.join(', ')}`);
    });
  };
  emit(undefined, '  ');
  for (const e of graph.edges) lines.push(`  ${mid(e.source)} --> ${mid(e.target)} : ${e.label.replace(/[:;]/g, ' ')}`);
  return lines.join('\n') + '\n';
}
