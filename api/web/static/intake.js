// The intake page's behaviours. The procedure finder is a combobox: typing asks htmx for the options,
// ↑ ↓ move through them, Enter (or a click) chooses one. Choosing fills the hidden procedure_code, whose
// "change" makes htmx load the checklist and the appointment. The citizen ID's live check marks the field
// invalid or not. On the receipt page, the print button prints the embedded PDF.
(() => {
  const byId = (id) => document.getElementById(id);

  function options() {
    const list = byId("procedure-options");
    return list ? [...list.querySelectorAll('[role="option"]:not([aria-disabled="true"])')] : [];
  }

  function show(open) {
    const list = byId("procedure-options");
    list.hidden = !open;
    byId("procedure-search").setAttribute("aria-expanded", String(open));
  }

  function activate(option) {
    const input = byId("procedure-search");
    for (const o of options()) o.setAttribute("aria-selected", String(o === option));
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function choose(option) {
    const code = byId("procedure-code");
    byId("procedure-search").value = option.dataset.name;
    show(false);
    activate(null);
    code.value = option.dataset.code;
    code.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.id !== "procedure-search") return;
    const list = byId("procedure-options");
    const all = options();
    const current = all.findIndex((o) => o.getAttribute("aria-selected") === "true");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!all.length) return;
      show(true);
      const next = event.key === "ArrowDown" ? Math.min(current + 1, all.length - 1) : Math.max(current - 1, 0);
      activate(all[next]);
    } else if (event.key === "Enter") {
      event.preventDefault();                 // never submits the intake from the search box
      if (!list.hidden && all.length) choose(all[Math.max(current, 0)]);
    } else if (event.key === "Escape") {
      show(false);
      activate(null);
    }
  });

  // mousedown, not click: the input keeps the focus, so the list is still there when the choice lands.
  document.addEventListener("mousedown", (event) => {
    const option = event.target.closest && event.target.closest('#procedure-options [role="option"]');
    if (option && option.getAttribute("aria-disabled") !== "true") {
      event.preventDefault();
      choose(option);
    }
  });

  document.addEventListener("focusout", (event) => {
    if (event.target.id === "procedure-search") show(false);
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target.id === "procedure-options") {
      show(target.children.length > 0 && document.activeElement === byId("procedure-search"));
      activate(null);
    }
  });

  // The live check swaps the message next to the field; the field says whether it is invalid.
  document.addEventListener("htmx:afterSettle", () => {
    const input = byId("citizen_id");
    const message = byId("citizen_id-error");
    if (input && message) input.setAttribute("aria-invalid", String(!message.hidden));
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#print-receipt");
    if (!button) return;
    const frame = byId(button.dataset.frame);
    try {
      frame.contentWindow.focus();
      frame.contentWindow.print();
    } catch (e) {
      window.open(frame.src, "_blank", "noopener");
    }
  });
})();
