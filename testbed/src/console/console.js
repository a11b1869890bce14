// The lab console's only script: the timeline's zoom and the detail of a clicked mark.
// Every view works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const svg = document.getElementById("timeline");
  if (!svg) return;
  const zoom = document.getElementById("zoom");
  const detail = document.getElementById("detail");
  // 1 shows the whole span; 200 shows about 1/200 of it (a week down to under an hour).
  zoom.addEventListener("input", () => {
    svg.style.width = (100 * Number(zoom.value)) + "%";
  });
  svg.addEventListener("click", (event) => {
    const mark = event.target.closest("[data-detail]");
    if (!mark) return;
    svg.querySelectorAll(".selected").forEach((m) => m.classList.remove("selected"));
    mark.classList.add("selected");
    detail.textContent = mark.dataset.detail;
  });
});
