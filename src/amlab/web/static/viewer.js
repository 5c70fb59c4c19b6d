// amlab viewer: keyboard navigation, auto-submitting filters, sizes the CSP forbids inline.
// No dependencies, no network requests of its own.
"use strict";

function typing(event) {
  const t = event.target;
  return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName));
}

function follow(selector) {
  const link = document.querySelector(selector);
  if (link instanceof HTMLAnchorElement) { window.location.href = link.href; return true; }
  return false;
}

function setupRows() {
  const rows = Array.from(document.querySelectorAll("tr.trial-row"));
  let current = -1;
  const select = (i) => {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((row, n) => row.classList.toggle("selected", n === current));
    rows[current].scrollIntoView({ block: "nearest" });
  };
  rows.forEach((row, n) => row.addEventListener("click", (event) => {
    if (event.target instanceof HTMLAnchorElement) return;
    select(n);
    window.location.href = row.dataset.href;
  }));
  return {
    any: rows.length > 0,
    move: (step) => select(current < 0 ? (step > 0 ? 0 : rows.length - 1) : current + step),
    open: () => { if (current >= 0) window.location.href = rows[current].dataset.href; },
  };
}

function openDetailsAround(id) {
  const target = id && document.getElementById(id);
  if (!target) return;
  for (let node = target.parentElement; node; node = node.parentElement) {
    if (node.tagName === "DETAILS") node.open = true;
  }
  target.scrollIntoView({ block: "center" });
}

document.addEventListener("DOMContentLoaded", () => {
  const rows = setupRows();
  const onTrialPage = document.querySelector(".trial-layout") !== null;

  document.addEventListener("keydown", (event) => {
    if (typing(event) || event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key;
    if (onTrialPage) {
      if (key === "j" || key === "ArrowRight") { if (follow("a[rel=next]")) event.preventDefault(); }
      else if (key === "k" || key === "ArrowLeft") { if (follow("a[rel=prev]")) event.preventDefault(); }
      else if (key === "u") follow("a[rel=up]");
      return;
    }
    if (rows.any && (key === "j" || key === "ArrowDown")) { rows.move(1); event.preventDefault(); }
    else if (rows.any && (key === "k" || key === "ArrowUp")) { rows.move(-1); event.preventDefault(); }
    else if (rows.any && (key === "Enter" || key === "o")) rows.open();
    else if (key === "u") follow("a[rel=up]");
  });

  const form = document.getElementById("filters");
  if (form instanceof HTMLFormElement) {
    form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => form.requestSubmit()));
    // Empty choices would only clutter the URL.
    form.addEventListener("formdata", (event) => {
      const entries = Array.from(event.formData.entries());
      for (const name of new Set(entries.map(([n]) => n))) event.formData.delete(name);
      for (const [name, value] of entries) if (value !== "") event.formData.append(name, value);
    });
  }

  document.querySelectorAll(".bar .seg").forEach((seg) => {
    const share = Number(seg.dataset.count) / Math.max(1, Number(seg.dataset.total));
    seg.style.width = `${(share * 100).toFixed(2)}%`;
  });

  // An evidence link may point into a collapsed part of the transcript.
  document.querySelectorAll('a[href^="#"]').forEach((a) => a.addEventListener("click", () =>
    openDetailsAround(a.getAttribute("href").slice(1))));
  if (window.location.hash) openDetailsAround(decodeURIComponent(window.location.hash.slice(1)));
});
