// The dossier page's diagram: the procedure's BPMN in the bpmn-js NavigatedViewer (pan and zoom, no
// editing), with the dossier's completed, current and — while it is open — waiting user tasks marked.
// The outcome is left on the container (data-state, and window.diagramWarnings) for tests and for support.
async function showDiagram(container) {
  const markers = JSON.parse(container.dataset.markers || "{}");
  try {
    const response = await fetch(container.dataset.src, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const viewer = new BpmnJS({ container });
    const { warnings } = await viewer.importXML(await response.text());
    window.diagramWarnings = warnings.map((w) => w.message);
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    canvas.zoom("fit-viewport", "auto");
    const mark = (id, marker) => { if (registry.get(id)) canvas.addMarker(id, marker); };
    (markers.done || []).forEach((id) => mark(id, "done"));
    (markers.current || []).forEach((id) => mark(id, "current"));
    if (markers.open) {
      // Every user task not yet reached: what may still come (both branches of a decision included).
      const reached = new Set([...(markers.done || []), ...(markers.current || [])]);
      registry.filter((e) => e.type === "bpmn:UserTask" && !reached.has(e.id))
        .forEach((e) => canvas.addMarker(e.id, "waiting"));
    }
    container.dataset.state = "ready";
  } catch (error) {
    container.dataset.state = "error";
    const message = document.getElementById("diagram-error");
    if (message) {
      message.hidden = false;
      message.textContent += ` (${error.message})`;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const container = document.getElementById("diagram");
  if (container && window.BpmnJS) showDiagram(container);
});
