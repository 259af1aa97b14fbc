// Parses Mermaid files with the real `mermaid` package, as a browser would before drawing.
//
//   node check.mjs FILE...
//
// mermaid.parse() runs Mermaid's own grammar; its sanitizer (DOMPurify) needs a DOM, so a
// jsdom window stands in for the browser. For each file one JSON line is printed:
// {"file", "ok", "error"} plus, when it parsed, the diagram type and the graph Mermaid
// would lay out ("nodes": id, label, description lines, parent, shape; "edges": start,
// end, label), so the tests can check that Mermaid read what the chart says.
// Exit status: 0 when every file parsed, 1 otherwise, 2 on a usage error.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check.mjs FILE...');
  process.exit(2);
}
const dom = new JSDOM('<!DOCTYPE html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, maxTextSize: 1000000 });

let failed = 0;
for (const file of files) {
  const out = { file, ok: false };
  try {
    const text = readFileSync(file, 'utf8');
    const parsed = await mermaid.parse(text);
    out.type = parsed.diagramType;
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    if (typeof diagram.db.getData === 'function') {
      const data = diagram.db.getData();
      out.nodes = data.nodes.map((n) => ({
        id: n.id, label: n.label, description: n.description ?? [],
        parent: n.parentId ?? null, shape: n.shape,
      }));
      out.edges = data.edges.map((e) => ({ start: e.start, end: e.end, label: e.label ?? '' }));
    }
    out.ok = true;
  } catch (e) {
    failed += 1;
    out.error = String(e?.message ?? e);
  }
  console.log(JSON.stringify(out));
}
process.exit(failed ? 1 : 0);
