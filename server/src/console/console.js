// The lab console's only script: the detail of a clicked mark on a timeline (zoom and
// pan are links the server answers). Every view works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".timeline-block").forEach((block) => {
    const svg = block.querySelector("svg.timeline");
    const detail = block.querySelector(".detail");
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
