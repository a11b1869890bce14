// The lab console's only script: each timeline's zoom and the detail of a clicked mark.
// Every view works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".timeline-block").forEach((block) => {
    const svg = block.querySelector("svg.timeline");
    const zoom = block.querySelector("input.zoom");
    const detail = block.querySelector(".detail");
    // 1 shows the whole span; 200 shows about 1/200 of it (a week down to under an hour).
    zoom.addEventListener("input", () => {
      svg.style.width = (100 * Number(zoom.value)) + "%";
    });
    svg.addEventListener("click", (event) => {
      const mark = event.target.closest("[data-detail]");
      if (!mark) return;
      svg.querySelectorAll(".selected").forEach((m) => m.classList.remove("selected"));
      mark.classList.add("selected");
      detail.textContent = mark.dataset.detail + " ";
      if (mark.dataset.log) {
        const link = document.createElement("a");
        link.href = mark.dataset.log;
        link.className = "to-log";
        link.textContent = "Show in the log";
        detail.appendChild(link);
      }
    });
  });
});
