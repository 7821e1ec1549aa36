// Mermaid stateDiagram-v2 text of a statechart.
import type { VizGraph, VizNode } from './graph';

const mid = (id: string) => id.replace(/[^A-Za-z0-9_]/g, '_');

export function toMermaid(graph: VizGraph): string {
  const lines = ['stateDiagram-v2'];
  const children = new Map<string | undefined, VizNode[]>();
  for (const n of graph.nodes) children.set(n.parent, [...(children.get(n.parent) ?? []), n]);
  const emit = (parent: string | undefined, indent: string) => {
    for (const n of children.get(parent) ?? []) {
      lines.push(`${indent}state "${n.label}" as ${mid(n.id)}`);
      if (n.initial) lines.push(`${indent}[*] --> ${mid(n.id)}`);
      if (n.type === 'final') lines.push(`${indent}${mid(n.id)} --> [*]`);
      if (children.has(n.id)) {
        lines.push(`${indent}state ${mid(n.id)} {`);
        emit(n.id, indent + '  ');
        lines.push(`${indent}}`);
      }
      if (n.invokes.length) lines.push(`${indent}note right of ${mid(n.id)} : invokes ${n.invokes.join(', ')}`);
    }
  };
  emit(undefined, '  ');
  for (const e of graph.edges) lines.push(`  ${mid(e.source)} --> ${mid(e.target)} : ${e.label.replace(/[:;]/g, ' ')}`);
  return lines.join('\n') + '\n';
}
