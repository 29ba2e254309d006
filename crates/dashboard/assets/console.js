// Progressive enhancement only: every page works without this script.
"use strict";

// Live app log: the server renders the recent lines; this appends new ones as they happen.
function followLog(list) {
  const source = new EventSource(list.dataset.stream);
  source.onmessage = (event) => {
    const entry = JSON.parse(event.data);
    const item = document.createElement("li");
    item.className = entry.level || "info";
    item.textContent = `${entry.time.slice(11, 19)} ${entry.level} ${entry.message}`;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.append(item);
    while (list.children.length > 500) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  };
  const state = document.getElementById("log-state");
  source.onopen = () => { if (state) state.textContent = "live"; };
  source.onerror = () => { if (state) state.textContent = "reconnecting…"; };
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("ol.log[data-stream]").forEach(followLog);
  // Destructive buttons ask first.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Tab in the editor indents instead of leaving the text area.
  document.querySelectorAll("textarea.code").forEach((area) => {
    area.addEventListener("keydown", (event) => {
      if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
      if (area.dataset.tabLeaves === "yes") return;
      event.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
    });
    // Escape, then Tab, leaves the text area (keyboard users are never trapped).
    area.addEventListener("keyup", (event) => { area.dataset.tabLeaves = event.key === "Escape" ? "yes" : "no"; });
  });
});
